"""``hwsim report``: render a run or comparison folder as one self-contained HTML page."""

from __future__ import annotations

import argparse

from hwsim.errors import HwsimError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report", help="write index.html, summary.md and a timeline for a results folder",
        description="Render a run folder (from 'hwsim run') or a comparison folder (from "
                    "'hwsim compare') as a self-contained index.html with figures, tables, "
                    "energy provenance and the resolved configs; also writes summary.md and "
                    "the timeline for https://ui.perfetto.dev (gzipped JSON, or Perfetto's "
                    "protobuf format for runs with more ops than the JSON keeps).")
    p.add_argument("folder", help="run, comparison or sweep folder")
    p.add_argument("--max-events", type=int, default=None, metavar="N",
                   help="cap the timeline's op slices (default 100000; the longest ops per "
                        "track are kept); 0 keeps all")
    p.add_argument("--window", default=None, metavar="START:END",
                   help="timeline window in cycles, e.g. 0:2000000 (either side may be empty)")
    p.add_argument("--timeline-format", choices=("auto", "json", "proto"), default="auto",
                   help="timeline file: json (timeline.json.gz), proto (timeline.pftrace.gz, every op) "
                        "or auto (proto when the run has more ops than --max-events allows)")
    p.set_defaults(handler=run)


def parse_window(text: str | None) -> tuple[int | None, int | None] | None:
    """``"A:B"`` -> ``(A, B)`` cycles (an empty side is open); raises HwsimError if malformed."""
    if text is None:
        return None
    lo, sep, hi = text.partition(":")
    try:
        if not sep:
            raise ValueError
        window = (int(lo) if lo.strip() else None, int(hi) if hi.strip() else None)
    except ValueError:
        raise HwsimError(f"--window {text!r}: expected START:END in cycles, e.g. 0:2000000") from None
    if (window[0] is not None and window[0] < 0) or (None not in window and window[1] < window[0]):
        raise HwsimError(f"--window {text!r}: expected 0 <= START <= END")
    return window


def timeline_options(args: argparse.Namespace) -> dict:
    """Timeline keyword arguments from ``--max-events`` and ``--window``."""
    options: dict = {}
    if args.max_events is not None:
        if args.max_events < 0:
            raise HwsimError(f"--max-events {args.max_events}: must be >= 0")
        options["max_events"] = args.max_events or None
    window = parse_window(args.window)
    if window is not None:
        options["window"] = window
    if getattr(args, "timeline_format", "auto") != "auto":
        options["timeline_format"] = args.timeline_format
    return options


def run(args: argparse.Namespace) -> int:
    from hwsim.reports.html import write_report
    from hwsim.reports.timeline import HOW_TO_OPEN

    index = write_report(args.folder, **timeline_options(args))
    print(f"report   -> {index}")
    if (index.parent / "summary.md").is_file():
        print(f"summary  -> {index.parent / 'summary.md'}")
    timelines = sorted(p.name for p in index.parent.glob("timeline*.gz"))
    if timelines:
        shown = timelines[0] if len(timelines) == 1 else "timeline*.gz"
        print(f"timeline -> {index.parent / shown}: {HOW_TO_OPEN}")
    return 0
