"""``hwsim compare``: run one trace on several machines (or several traces on one machine)
and put the results side by side; existing run folders can join with ``--run``."""

from __future__ import annotations

import argparse

from hwsim.errors import HwsimError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compare", help="compare machines or traces side by side",
        description="Simulate every --trace on every --arch (writing OUT/<label>/ run folders), "
                    "add any existing --run folders, and write comparison.parquet/.csv/.md and "
                    "comparison.png with ratios against the first run.")
    p.add_argument("--trace", dest="traces", action="append", default=[], metavar="TRACE",
                   help="trace file (.csv or .parquet); repeat to compare traces")
    p.add_argument("--arch", dest="archs", action="append", default=[], metavar="ARCH",
                   help="machine YAML; repeat to compare machines")
    p.add_argument("--run", dest="runs", action="append", default=[], metavar="DIR",
                   help="an existing run folder to include (repeatable)")
    p.add_argument("--label", dest="labels", action="append", default=None, metavar="NAME",
                   help="label of each run in order (default: machine names or trace names)")
    p.add_argument("--out", required=True, help="comparison folder")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE",
                   help="override a key of every machine, e.g. components.hbm.bandwidth='4 TB/s'")
    p.add_argument("--allow-overflow", action="store_true",
                   help="report runs whose working set exceeds a tier instead of failing")
    p.add_argument("--csv", action="store_true", help="also write records.csv in each run folder")
    p.add_argument("--report", action="store_true", help="also write index.html (as 'hwsim report')")
    p.add_argument("--quiet", action="store_true", help="no progress line, print only the folder")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from hwsim.reports.compare import RunData, compare_runs
    from hwsim.runs import simulate_runs

    if bool(args.traces) != bool(args.archs):
        missing = "--arch" if args.traces else "--trace"
        raise HwsimError(f"compare: {missing} is missing (give traces and machines, or --run folders)")
    total = len(args.traces) * len(args.archs) + len(args.runs)
    if total < 2:
        raise HwsimError(f"compare: needs at least two runs, got {total} "
                         "(repeat --arch or --trace, or add --run folders)")
    labels = args.labels
    if labels is not None and len(labels) != total:
        raise HwsimError(f"compare: {len(labels)} --label values for {total} runs")
    from hwsim.atomic import check_output_folder

    check_output_folder(args.out, "comparison folder")
    simulated = len(args.traces) * len(args.archs)
    runs = []
    if simulated:
        runs += simulate_runs(args.traces, args.archs, args.out, overrides=args.overrides,
                              allow_overflow=args.allow_overflow, csv=args.csv, quiet=args.quiet,
                              labels=labels[:simulated] if labels else None)
    for i, folder in enumerate(args.runs):
        runs.append(RunData.load(folder, labels[simulated + i] if labels else None))
    out = compare_runs(runs, args.out)
    if not args.quiet:
        print((out / "comparison.md").read_text(), end="")
    if args.report:
        from hwsim.reports.html import write_report

        print(f"  report      -> {write_report(out)}")
    print(f"  comparison  -> {out}/")
    return 0
