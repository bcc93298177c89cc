"""``hwsim run``: replay a trace on a machine and write the run folder."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from hwsim.cli.output import input_context, summary_lines
from hwsim.config.machine import load_arch
from hwsim.engine.analytic import gap_by_kind
from hwsim.errors import HwsimError
from hwsim.progress import Progress
from hwsim.results import GAP_BY_KIND, check_run_output, simulate, write_run
from hwsim.trace.io import read_trace


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="replay a trace on a machine",
                       description="Replay a trace on a machine; write records, summary and inputs.")
    p.add_argument("--arch", required=True, help="machine YAML (arch_configs/*.yaml)")
    p.add_argument("--trace", required=True, help="trace file (.csv or .parquet)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE",
                   help="override a machine key, e.g. components.hbm.bandwidth='4 TB/s' (repeatable)")
    p.add_argument("--csv", action="store_true", help="also write records.csv")
    p.add_argument("--allow-overflow", action="store_true",
                   help="report runs whose working set exceeds a tier instead of failing")
    p.add_argument("--fidelity", choices=("event", "roofline"), default="event",
                   help="event (SimPy replay, default) or roofline (contention-free analytical pass)")
    p.add_argument("--gap", action="store_true",
                   help="with the event level: also run the roofline level and write gap_by_kind.csv, "
                        "the cycles contention adds per op kind")
    p.add_argument("--quiet", action="store_true", help="print only the output folder")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.gap and args.fidelity != "event":
        raise HwsimError("--gap: compares the event level with the roofline; use it with --fidelity event")
    check_run_output(args.out)    # before any work: a bad --out fails in a moment, not after the run
    machine = load_arch(args.arch, overrides=args.overrides)
    trace = read_trace(args.trace)
    # Records go to a file beside the run folder as the run goes (memory stays bounded);
    # writing the run folder moves them in.
    out_path = Path(args.out)
    records = out_path.parent / f".{out_path.name}.records-{os.getpid()}.parquet"
    try:
        with input_context(args.trace, args.arch):
            with Progress(trace.num_ops, "ops loaded", quiet=args.quiet or args.fidelity != "event") as bar:
                result = simulate(machine, trace, fidelity=args.fidelity, allow_overflow=args.allow_overflow,
                                  on_batch=lambda rows: bar.advance(rows), records=records)
            gap = None
            if args.gap:
                roofline = simulate(machine, trace, fidelity="roofline", allow_overflow=True)
                gap = gap_by_kind(result.records, roofline.records)
        out = write_run(result, args.out, csv=args.csv,
                        extra={GAP_BY_KIND: gap.to_csv()} if gap is not None else None)
    finally:
        records.unlink(missing_ok=True)
    if not args.quiet:
        print("\n".join(summary_lines(result.summary, str(args.trace))))
    if gap is not None and not args.quiet:
        shown = gap[["ops", "roofline_cycles", "event_cycles", "gap_cycles", "gap_ratio", "gap_share"]]
        print("  contention per op kind (event minus roofline cycles):")
        print("\n".join("    " + line for line in shown.to_string(float_format="{:.3f}".format).splitlines()))
    print(f"  results  -> {out}/")
    return 0
