"""``hwsim regress``: run pinned cases, compare cycles, energy and bytes with a baseline CSV."""

from __future__ import annotations

import argparse

from hwsim.atomic import check_output_file
from hwsim.regress import regress
from hwsim.regress.baseline import parse_tolerance
from hwsim.regress.report import headline, junit_xml, markdown, text_table, write_text


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("regress", help="compare pinned cycle counts with a baseline (CI)",
                       description="Run every case of the cases file(s) and compare total cycles, energy "
                                   "and bytes per tier with the baseline CSV. Exit status 1 when a case "
                                   "moved beyond the tolerance, is missing or is extra.")
    p.add_argument("--cases", action="append", required=True, metavar="FILE",
                   help="cases file (YAML); repeatable")
    p.add_argument("--baseline", required=True, metavar="CSV", help="pinned baseline (case,metric,value)")
    p.add_argument("--tolerance", default="0.5%",
                   help="largest relative change that passes, e.g. 0.5%% or 0.005 (default 0.5%%)")
    p.add_argument("--update", action="store_true", help="re-pin the baseline from this run and print the diff")
    p.add_argument("--junit", metavar="FILE", help="also write JUnit XML (one testcase per case)")
    p.add_argument("--markdown", metavar="FILE", help="also write a Markdown report (for a PR comment)")
    p.add_argument("--quiet", action="store_true", help="print only the result line and failures")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    tolerance = parse_tolerance(args.tolerance)
    for option, path in (("--junit", args.junit), ("--markdown", args.markdown),
                         ("--baseline", args.baseline if args.update else None)):
        if path is not None:
            check_output_file(path, f"{option} file")    # before any case runs

    def announce(case) -> None:
        if not args.quiet:
            print(f"  {case.name}", flush=True)

    outcome = regress(args.cases, args.baseline, tolerance=tolerance, update=args.update, on_case=announce)
    if args.junit:
        write_text(args.junit, junit_xml(outcome.cases, outcome.changes, tolerance))
    if args.markdown:
        write_text(args.markdown, markdown(outcome.cases, outcome.changes, tolerance))
    if args.update:
        if outcome.errors:
            print(text_table([c for c in outcome.changes if c.kind == "error"]))
            print(f"hwsim regress: baseline not updated: {len(outcome.errors)} case(s) did not run")
            return 1
        if outcome.changes:
            print(text_table(outcome.changes))
        print(f"hwsim regress: re-pinned {len(outcome.cases)} cases in {args.baseline} "
              f"({len(outcome.changes)} values changed)")
        return 0
    failing = [c for c in outcome.changes if c.failed]
    if failing:
        print(text_table(failing))
    within = len(outcome.changes) - len(failing)
    suffix = f"; {within} changes within tolerance" if within else ""
    print(headline(outcome.cases, outcome.changes, tolerance) + suffix)
    return 1 if failing else 0
