"""``hwsim sweep``: run every point of a sweep file and write one tidy results table.

Exit status: 0 when every run has a result (failed points included), 1 when runs were lost
with their workers (rerun with ``--resume``), 2 for a bad sweep file or option.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import pandas as pd

from hwsim.atomic import check_output_folder
from hwsim.errors import HwsimError
from hwsim.inputs import SMALL_MAX_BYTES, read_text
from hwsim.sweep.runner import plan, point_error, run_sweep
from hwsim.sweep.spec import FIDELITIES, SweepSpec, load_sweep


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sweep", help="run an architecture sweep (Dask)",
                       description="Run every design point of a sweep file on every trace and write "
                                   "DIR/results.parquet (one row per point x trace).")
    p.add_argument("sweep", help="sweep file (YAML): base machine, traces, axes, constraints")
    p.add_argument("--out", help="output folder (runs.jsonl, results.parquet); required unless --dry-run")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, default=None, metavar="N",
                       help="local worker processes (default: one per core; 0 = in this process, no Dask)")
    where.add_argument("--scheduler", metavar="ADDRESS",
                       help="an existing Dask scheduler, e.g. tcp://host:8786")
    p.add_argument("--fidelity", choices=FIDELITIES, default=None,
                   help="event (SimPy replay) or roofline (contention-free, fast); default: the sweep file's")
    p.add_argument("--resume", action="store_true", help="keep saved runs of an interrupted sweep; run the rest")
    p.add_argument("--retry-failed", action="store_true", help="with --resume: also rerun failed points")
    p.add_argument("--quiet", action="store_true", help="no progress line; print only the table path")
    p.add_argument("--points", metavar="IDS",
                   help="run only these points: ids separated by commas (p0003,p0017) or @FILE, e.g. "
                        "the pareto_points.txt that hwsim report writes for a roofline sweep")
    p.add_argument("--dry-run", action="store_true",
                   help="list the design points (after constraints) and check every point's machine; run nothing")
    p.set_defaults(handler=run)


#: What ``--scheduler`` takes: a Dask address with its protocol, host and optional port.
SCHEDULER = re.compile(r"(tcp|tls|ws|wss|ucx|inproc)://[A-Za-z0-9_.\-\[\]:/]+")


def run(args: argparse.Namespace) -> int:
    if args.workers is not None and args.workers < 0:
        raise HwsimError(f"--workers {args.workers}: expected 0 or more")
    if args.retry_failed and not args.resume:
        raise HwsimError("--retry-failed: only with --resume")
    if args.scheduler is not None and not SCHEDULER.fullmatch(args.scheduler):
        raise HwsimError(f"--scheduler {args.scheduler!r}: expected a Dask scheduler address such as "
                         "tcp://host:8786 (tcp, tls, ws, wss, ucx or inproc)")
    spec = load_sweep(args.sweep)
    only = _point_ids(args.points) if args.points is not None else None
    if args.dry_run:
        return _dry_run(spec, args.fidelity, only)
    if not args.out:
        raise HwsimError("--out: required (the folder for the sweep's results)")
    check_output_folder(args.out, "sweep folder")
    outcome = run_sweep(spec, args.out, workers=args.workers, scheduler=args.scheduler,
                        fidelity=args.fidelity, resume=args.resume, retry_failed=args.retry_failed,
                        quiet=args.quiet, only=only)
    if not args.quiet:
        print(f"  runs     {outcome.runs} ({outcome.reused} reused, {outcome.ran} run, "
              f"{outcome.failed} failed, {outcome.missing} missing)")
        for line in _best_lines(outcome.table, {a.key: a.dimension for a in spec.axes}):
            print(line)
    print(f"  results  -> {outcome.table}")
    if outcome.missing:
        print(f"  {outcome.missing} runs were lost with their workers; rerun with --resume")
        return 1
    return 0


def _best_lines(table_path: Path, axes: dict[str, str]) -> list[str]:
    """Per trace: the point with the highest throughput and the one with the lowest energy
    per work unit, with their axis values (``hwsim report`` draws the whole front)."""
    from hwsim.sweep.table import read_results

    table, _ = read_results(table_path.parent)
    ok = table[table["status"] == "ok"]
    lines = []
    for _, rows in ok.groupby("trace_index", sort=True):
        fast = rows.loc[rows["throughput"].idxmax()]
        frugal = rows.loc[rows["energy_per_work_unit_j"].idxmin()]
        lines.append(f"  {rows['trace'].iat[0]}:")
        for label, row in (("fastest", fast), ("least energy", frugal)):
            values = ", ".join(f"{key}={_axis_value(row[key], dim)}" for key, dim in axes.items())
            lines.append(f"    {label:<13}{row['point_id']}  {row['throughput']:.4g} {row['throughput_unit']}, "
                         f"{row['energy_per_work_unit_j']:.4g} J/{row['work_unit']}  ({values})")
    return lines


def _axis_value(value, dimension: str) -> str:
    """An axis value for people: a range's base-unit float in its unit, a listed value as written."""
    from hwsim.reports.sweep import tick_label

    return tick_label(value, dimension) if isinstance(value, float) else str(value)


def _point_ids(text: str) -> list[str]:
    """Point ids from ``--points``: ``p0003,p0017`` or ``@FILE`` (ids separated by commas,
    spaces or lines)."""
    if text.startswith("@"):
        text = read_text(Path(text[1:]), "--points file", SMALL_MAX_BYTES, allow_empty=True)
    return [item for item in re.split(r"[\s,]+", text) if item]


def _dry_run(spec: SweepSpec, fidelity: str | None, only: list[str] | None = None) -> int:
    """Print every point with its values (and any invalid machine); 2 when a point is invalid."""
    runs = [run for run in plan(spec, fidelity, only) if run.trace_index == 0]
    errors = [point_error(run) for run in runs]
    total = len(runs)
    dimensions = {a.key: a.dimension for a in spec.axes}
    rows = [{"point": run.point_id, **{k: _axis_value(v, dimensions[k]) for k, v in run.values.items()},
             "machine": "ok" if not error else f"invalid: {error}"} for run, error in zip(runs, errors, strict=True)]
    print(f"sweep {spec.name}: {total} points ({spec.combine}; {spec.combinations()} before constraints) x "
          f"{len(spec.traces)} traces = {total * len(spec.traces)} runs, {fidelity or spec.fidelity}")
    if rows:
        print(pd.DataFrame(rows).to_string(index=False))
    invalid = sum(bool(error) for error in errors)
    if invalid:
        print(f"{invalid} of {total} points have an invalid machine; they would be recorded as failed")
        print(f"hwsim: error: {spec.source}: {invalid} of {total} points have an invalid machine (listed above)",
              file=sys.stderr)
    return 2 if invalid else 0
