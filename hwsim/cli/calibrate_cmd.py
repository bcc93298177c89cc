"""``hwsim calibrate``: published measurements against hwsim's predictions, and fitting.

Three uses::

    hwsim calibrate                                     # every row of the calibration set
    hwsim calibrate --machine h100-sxm --category gemm --fit fitted.yaml
    hwsim calibrate --profile trace.json --arch h100-sxm.yaml [--fit fitted.yaml]

The first prints published, predicted and error per row and the median error and bias per
category; the second fits the machine's constants to the set's ``fit`` rows and writes
them as an overlay machine (``extends:`` the base); the third does both for the kernels
of a PyTorch profiler trace of the user's own machine.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import pandas as pd

from hwsim.atomic import atomic_write_text
from hwsim.calibration import kineto
from hwsim.calibration.fit import fit, overlay
from hwsim.calibration.parameters import CATALOGUE, for_machine, parse_parameter
from hwsim.calibration.table import machine_file, read_measurements, replay, summarize
from hwsim.config.machine import load_arch
from hwsim.engine.machine import Machine
from hwsim.errors import ConfigError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("calibrate", help="compare predictions with published measurements; fit constants",
                       description="Replay published measurements of real machines and print published, "
                                   "predicted and error per row and per category; optionally fit a "
                                   "machine's constants to them (or to a PyTorch profiler trace).")
    p.add_argument("--measurements", default=None, metavar="CSV",
                   help="calibration set (default: the shipped calibration/measurements.csv)")
    p.add_argument("--machine", action="append", default=[], metavar="NAME",
                   help="only the rows of this machine (repeatable)")
    p.add_argument("--category", action="append", default=[], metavar="NAME",
                   help="only this category (repeatable): " + ", ".join(CATALOGUE))
    p.add_argument("--use", choices=("fit", "check", "all"), default="all",
                   help="rows used to fit, rows held out to check, or both (default)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE",
                   help="override a machine parameter for every machine")
    p.add_argument("--summary-only", action="store_true", help="print only the per-category table")
    p.add_argument("--csv", metavar="FILE", help="also write the per-row table as CSV")
    p.add_argument("--out", metavar="DIR", help="also write DIR/index.html (the tables) and DIR/calibration.csv")
    p.add_argument("--fit", metavar="OUT.yaml", help="fit constants and write an overlay machine")
    p.add_argument("--param", action="append", default=[], metavar="KEY=LOW:HIGH[:UNIT]",
                   help="a constant to fit (default: the catalogue for the categories)")
    p.add_argument("--profile", metavar="TRACE.json",
                   help="a PyTorch profiler (Kineto / Chrome JSON) trace of a real run")
    p.add_argument("--arch", metavar="MACHINE.yaml", help="the machine the profile is compared with")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.profile:
        return _profile(args)
    if args.arch:
        raise ConfigError("--arch is for --profile; the calibration set names its machines (use --machine)")
    rows = read_measurements(args.measurements)
    if args.machine:
        unknown = sorted(set(args.machine) - {m.machine for m in rows})
        if unknown:
            raise ConfigError(f"--machine {unknown[0]}: no rows of that machine in "
                              f"{args.measurements or 'the shipped calibration set'}")
        rows = [m for m in rows if m.machine in args.machine]
    if args.category:
        unknown = sorted(set(args.category) - {m.category for m in rows})
        if unknown:
            raise ConfigError(f"--category {unknown[0]}: no rows of that category "
                              f"(categories: {', '.join(sorted({m.category for m in rows}))})")
        rows = [m for m in rows if m.category in args.category]
    if args.fit:
        return _fit_set(args, rows)
    if args.use != "all":
        rows = [m for m in rows if m.use == args.use]
    table = replay(rows, overrides=args.overrides)
    if args.csv:
        atomic_write_text(args.csv, table.to_csv(index=False))
    if args.out:
        _write_page(Path(args.out), table)
    if not args.summary_only:
        print(format_rows(table))
        print()
    print(format_summary(summarize(table)))
    return 0


def _write_page(out: Path, table: pd.DataFrame) -> None:
    """The calibration tables as a self-contained page, beside the CSV of every row."""
    from hwsim.reports.calibration import calibration_section
    from hwsim.reports.page import html_page

    atomic_write_text(out / "calibration.csv", table.to_csv(index=False))
    atomic_write_text(out / "index.html", html_page("hwsim calibrate: published measurements against hwsim",
                                                    calibration_section(table)))


def format_rows(table: pd.DataFrame) -> str:
    """The per-row table: id, machine, use, published, predicted (unit), error."""
    lines = [f"{'measurement':<40} {'machine':<9} {'use':<6} {'published':>11} {'predicted':>11} "
             f"{'unit':<8} {'error':>7}"]
    for r in table.itertuples():
        lines.append(f"{r.id:<40} {r.machine:<9} {r.use:<6} {r.published:>11.4g} {r.predicted:>11.4g} "
                     f"{r.unit:<8} {100 * r.error:>+6.1f}%")
    return "\n".join(lines)


def format_summary(summary: pd.DataFrame) -> str:
    """Per category: rows, median |error|, bias (geometric-mean speed) and the worst row."""
    lines = [f"{'category':<18} {'rows':>5} {'median |error|':>15} {'speed (bias)':>13} {'worst':>8}"]
    for r in summary.itertuples():
        lines.append(f"{r.category:<18} {r.rows:>5} {100 * r.median_abs_error:>14.1f}% "
                     f"{r.speed_geomean:>12.3f}x {100 * r.max_abs_error:>7.0f}%")
    lines.append("error = predicted speed / measured speed - 1 (positive: hwsim is faster than the hardware)")
    return "\n".join(lines)


def _fit_set(args: argparse.Namespace, rows) -> int:
    if len(args.machine) != 1:
        raise ConfigError("--fit needs exactly one --machine (the constants of one machine are fitted)")
    name = args.machine[0]
    fitted_rows = [m for m in rows if m.use == "fit" and m.case is not None]
    if not fitted_rows:
        raise ConfigError(f"--fit: no 'fit' rows of machine {name!r} in the selection")
    path = machine_file(name)
    parameters = [parse_parameter(p) for p in args.param] or for_machine(
        sorted({m.category for m in fitted_rows}), load_arch(path).to_dict())
    if not parameters:
        raise ConfigError(f"--fit: nothing to fit for these categories on {name!r}; name constants with --param")

    def speeds(machine: Machine) -> np.ndarray:
        return replay(fitted_rows, machines={name: machine})["speed"].to_numpy()


    result = fit(path, parameters, speeds, overrides=args.overrides)
    header = (f"Constants of {name} fitted by `hwsim calibrate --fit` to {len(fitted_rows)} measurements "
              f"({', '.join(sorted({m.category for m in fitted_rows}))}) of {args.measurements or 'the shipped calibration set'}.\n"
              f"Loss (mean |log speed| + bias) {result.loss_before:.4f} -> {result.loss_after:.4f} "
              f"after {result.evaluations} evaluations.")
    base = os.path.relpath(path, Path(args.fit).resolve().parent)
    atomic_write_text(args.fit, overlay(base, result.values, parameters, header))
    for p in parameters:
        print(f"{p.key:<60} {p.format(result.values[p.key])}")
    print(f"loss {result.loss_before:.4f} -> {result.loss_after:.4f}; wrote {args.fit}")
    return 0


def _profile(args: argparse.Namespace) -> int:
    if not args.arch:
        raise ConfigError("--profile needs --arch (the machine to compare the profile with)")
    profile = kineto.read_profile(args.profile)
    machine = Machine(load_arch(args.arch, overrides=args.overrides))
    table = kineto.compare(profile, machine)
    print(kineto.format_comparison(table, profile))
    if args.fit:
        parameters = [parse_parameter(p) for p in args.param] or kineto.parameters_for(profile, machine)
        result = kineto.fit_profile(profile, args.arch, parameters, args.overrides)
        header = (f"Constants fitted by `hwsim calibrate --profile {args.profile}` to its "
                  f"{len(profile.kernels)} matched kernels.\n"
                  f"Loss (mean |log speed| + bias) {result.loss_before:.4f} -> {result.loss_after:.4f}.")
        base = os.path.relpath(Path(args.arch).resolve(), Path(args.fit).resolve().parent)
        atomic_write_text(args.fit, overlay(base, result.values, parameters, header))
        for p in parameters:
            print(f"{p.key:<60} {p.format(result.values[p.key])}")
        print(f"loss {result.loss_before:.4f} -> {result.loss_after:.4f}; wrote {args.fit}")
    return 0
