"""``hwsim demo``: the main job on built-in defaults (what ``make run`` runs)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the main job: WorldKV, GDN-2 and HRM-Text on the shipped machines",
                       description="Generate the workloads' traces, replay them on the shipped machines "
                                   "and write an HTML report with the key ratios.")
    p.add_argument("--out", default="reports/demo", help="output folder (default: reports/demo)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--reports", action="store_true",
                   help="also write every run's own report (index.html, timeline), linked from the "
                        "demo's table (about 5 s per run)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from hwsim.atomic import atomic_write_text
    from hwsim.calibration.table import read_measurements, replay
    from hwsim.demo.main_job import run_all
    from hwsim.demo.page import key_ratios, summary_lines, write_page
    from hwsim.demo.showcase import showcase_sections
    from hwsim.reports.calibration import calibration_section

    out = Path(args.out)
    table = run_all(out, quiet=args.quiet)
    sections = showcase_sections(out, table)
    calibration = replay(read_measurements())
    atomic_write_text(out / "calibration.csv", calibration.to_csv(index=False))
    sections["How far to trust these numbers: published measurements against hwsim"] = \
        calibration_section(calibration)
    if args.reports:
        from hwsim.progress import Progress
        from hwsim.reports.html import write_report

        with Progress(len(table), "run reports", quiet=args.quiet) as bar:
            for folder in table["folder"]:
                write_report(out / folder)
                bar.advance()
    index = write_page(out, table, sections)
    print("hwsim demo: key ratios")
    print("\n".join(summary_lines(key_ratios(table))))
    print(f"report   -> {index}")
    print(f"results  -> {out / 'results.parquet'} ({len(table)} runs under {out / 'runs'}/)")
    return 0
