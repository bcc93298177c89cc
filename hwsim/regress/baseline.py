"""Pinned baselines (CSV) and their comparison with fresh results.

The baseline file has one row per (case, metric), sorted, with deterministic formatting
(whole numbers as ``repr(int)``, other numbers with 12 significant digits)::

    case,metric,value
    tiny/gemm,bytes_hbm,41943040
    tiny/gemm,energy_j,0.00778462822400
    tiny/gemm,total_cycles,6291456
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

from hwsim.atomic import atomic_write_text
from hwsim.errors import ConfigError, shown
from hwsim.inputs import CSV_MAX_BYTES, read_text

Metrics = dict[str, dict[str, int | float]]   # case -> metric -> value
_INT = re.compile(r"^[-+]?\d+$")
_TOLERANCE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?\d+)?)\s*(%?)\s*$")


def format_value(value: int | float) -> str:
    """Baseline text of a metric value: ``repr`` of an int, 12 significant digits otherwise."""
    if isinstance(value, int) and not isinstance(value, bool):
        return repr(value)
    return f"{float(value):.12g}"


def parse_tolerance(text: str) -> float:
    """``"0.5%" -> 0.005``, ``"0.001" -> 0.001`` (a relative change); ConfigError otherwise."""
    match = _TOLERANCE.match(str(text))
    if not match:
        raise ConfigError(f"--tolerance {text!r}: expected a relative change such as 0.5% or 0.005")
    value = float(match.group(1))
    value = value / 100 if match.group(2) else value
    if not math.isfinite(value):
        raise ConfigError(f"--tolerance {text!r}: must be a finite number")
    return value


def read_baseline(path: str | os.PathLike) -> Metrics:
    """The pinned metrics of a baseline CSV; ConfigError names the file and row of every
    problem (a value that is not a finite number, a (case, metric) pinned twice, ...)."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: no such baseline file (create it with --update)")
    out: Metrics = {}
    reader = csv.reader(io.StringIO(read_text(path, "baseline file", CSV_MAX_BYTES, ConfigError)))
    header = next(reader, None)
    if header != ["case", "metric", "value"]:
        raise ConfigError(f"{path}: row 1: expected the header case,metric,value, got {shown(header)}")
    problems: list[str] = []
    first_row: dict[tuple[str, str], int] = {}
    try:
        for number, row in enumerate(reader, start=2):
            if len(row) != 3:
                problems.append(f"{path}: row {number}: expected 3 fields (case, metric, value), got {len(row)}")
                continue
            case, metric, text = row
            try:
                value: int | float = int(text) if _INT.match(text) else float(text)
            except ValueError:
                problems.append(f"{path}: row {number}, column 'value': {shown(text)} is not a number")
                continue
            if not math.isfinite(value) or (isinstance(value, int) and abs(value) >= 2**63):
                problems.append(f"{path}: row {number}, column 'value': {shown(text)} is not a finite number "
                                "that fits int64 (a pinned value must be one a run can produce)")
                continue
            if (case, metric) in first_row:
                problems.append(f"{path}: row {number}: {case} {metric} is pinned twice (first on row "
                                f"{first_row[case, metric]})")
                continue
            first_row[case, metric] = number
            out.setdefault(case, {})[metric] = value
    except csv.Error as err:
        problems.append(f"{path}: row {reader.line_num}: not valid CSV ({err})")
    if problems:
        raise ConfigError(problems[:50])
    return out


def baseline_text(metrics: Metrics) -> str:
    """The CSV text of ``metrics``: sorted rows, deterministic number formatting."""
    lines = ["case,metric,value"]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for case in sorted(metrics):
        for metric in sorted(metrics[case]):
            writer.writerow([case, metric, format_value(metrics[case][metric])])
    return "\n".join(lines) + "\n" + buffer.getvalue()


def write_baseline(path: str | os.PathLike, metrics: Metrics) -> Path:
    """Write ``metrics`` to ``path`` atomically."""
    return atomic_write_text(path, baseline_text(metrics))


@dataclass(frozen=True)
class Change:
    """One (case, metric) whose value differs between the baseline and now.

    ``kind``: ``changed`` (both present), ``missing case`` / ``extra case`` (the case is
    only in the baseline / only in the cases), ``missing metric`` / ``extra metric``, or
    ``error`` (the case did not run; ``new`` holds the message).
    """

    case: str
    metric: str
    old: int | float | None
    new: int | float | str | None
    kind: str
    relative: float | None     # (new - old) / |old| for numbers
    failed: bool


def relative_change(old: float, new: float) -> float:
    """(new - old) / |old|; 0 when both are 0 and infinite when only old is 0."""
    if old == new:
        return 0.0
    return (new - old) / abs(old) if old else math.copysign(math.inf, new)


def compare(baseline: Metrics, current: Metrics, errors: dict[str, str], tolerance: float) -> list[Change]:
    """Every difference between ``baseline`` and ``current`` (case -> metric -> value).

    A change fails when its relative size exceeds ``tolerance``; a missing or extra case
    or metric, and a case that raised (``errors``: case -> message), always fail. Values are
    compared as they would be written to the baseline (12 significant digits).
    """
    changes = []
    for case in sorted(set(baseline) | set(current) | set(errors)):
        if case in errors:
            changes.append(Change(case, "error", None, errors[case], "error", None, True))
            continue
        old_case, new_case = baseline.get(case), current.get(case)
        if old_case is None or new_case is None:
            kind = "extra case" if old_case is None else "missing case"
            for metric, value in sorted((new_case or old_case).items()):
                old, new = (None, value) if old_case is None else (value, None)
                changes.append(Change(case, metric, old, new, kind, None, True))
            continue
        for metric in sorted(set(old_case) | set(new_case)):
            old, new = old_case.get(metric), new_case.get(metric)
            if old is None or new is None:
                kind = "extra metric" if old is None else "missing metric"
                changes.append(Change(case, metric, old, new, kind, None, True))
                continue
            old_v, new_v = float(format_value(old)), float(format_value(new))
            if old_v != new_v:
                rel = relative_change(old_v, new_v)
                changes.append(Change(case, metric, old, new, "changed", rel, abs(rel) > tolerance))
    return changes
