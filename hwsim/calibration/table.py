"""The calibration set: published measurements replayed on the machines that model them.

``calibration/measurements.csv`` holds one measurement per row: what ran (``replay``), how
it was timed (``harness``), the published ``value`` and ``unit``, the hwsim machine that
models the hardware, and whether the row is used to fit constants (``use = fit``), held out
to check them (``check``) or kept for the record but not replayed (``excluded``, with the
reason in ``notes``). :func:`replay` predicts every replayable row; :func:`summarize` gives
the median absolute error and the bias per category.

Error is measured as *speed*: ``speed = predicted speed / measured speed`` (the predicted
throughput over the measured one, or the measured time over the predicted one), so
``speed > 1`` means hwsim is faster than the hardware, and ``error = speed - 1``.
"""

from __future__ import annotations

import csv
import functools
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from hwsim.calibration.cases import HARNESSES, LOOP_LAUNCHES, Case, parse_replay
from hwsim.components.host import HostClock
from hwsim.config.catalog import machine_path, shipped_root
from hwsim.config.machine import MachineConfig, load_arch
from hwsim.engine.analytic import op_durations
from hwsim.engine.costs import batch_costs
from hwsim.engine.machine import Machine
from hwsim.errors import ConfigError
from hwsim.results import simulate
from hwsim.trace import Trace

#: The shipped calibration set (relative to the shipped files' root, see hwsim.config.catalog).
MEASUREMENTS = Path("calibration") / "measurements.csv"
COLUMNS = ("id", "category", "machine", "replay", "harness", "metric", "value", "unit", "use",
           "hardware", "workload", "source", "notes")
USES = ("fit", "check", "excluded")
#: Published units and what one of them is in base units (seconds, FLOP/s, bytes/s).
UNITS = {"TFLOP/s": ("flops", 1e12), "GFLOP/s": ("flops", 1e9), "TB/s": ("bytes", 1e12),
         "GB/s": ("bytes", 1e9), "MB/s": ("bytes", 1e6), "s": ("time", 1.0), "ms": ("time", 1e-3),
         "us": ("time", 1e-6), "tokens/s": ("work", 1.0), "Kt/s": ("work", 1e3), "frames/s": ("work", 1.0)}


@dataclass(frozen=True, eq=False)
class Measurement:
    """One validated row of the calibration set."""

    id: str
    category: str
    machine: str
    replay: str
    harness: str
    value: float
    unit: str
    use: str
    source: str
    case: Case | None

    @functools.cached_property
    def trace(self) -> Trace:
        """The trace its harness replays (built once: machines change, the trace does not)."""
        return self.case.trace(self.harness)


def default_measurements() -> Path:
    """The calibration set hwsim ships."""
    return shipped_root() / MEASUREMENTS


def read_measurements(path: str | Path | None = None) -> list[Measurement]:
    """Every row of a calibration CSV (default: the shipped set), validated. ConfigError names
    the file, row and column."""
    path = Path(path) if path is not None else default_measurements()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: cannot read the calibration set ({err})") from None
    reader = csv.DictReader(text.splitlines())
    missing = [c for c in COLUMNS if c not in (reader.fieldnames or ())]
    if missing:
        raise ConfigError(f"{path}: missing column {missing[0]!r} (columns: {', '.join(COLUMNS)})")
    rows, seen = [], set()
    for number, row in enumerate(reader, start=2):
        where = f"{path}: row {number} ({row['id']})"
        if row["id"] in seen:
            raise ConfigError(f"{where}, column 'id': duplicate id")
        seen.add(row["id"])
        if row["use"] not in USES:
            raise ConfigError(f"{where}, column 'use': {row['use']!r} is not one of {', '.join(USES)}")
        case = None
        if row["use"] != "excluded":
            if row["harness"] not in HARNESSES:
                raise ConfigError(f"{where}, column 'harness': {row['harness']!r} is not one of "
                                  f"{', '.join(HARNESSES)}")
            if row["unit"] not in UNITS:
                raise ConfigError(f"{where}, column 'unit': {row['unit']!r} is not one of {', '.join(UNITS)}")
            case = parse_replay(row["replay"], f"{where}, column 'replay'")
            dimension = UNITS[row["unit"]][0]
            workload = case.whole
            if (dimension == "flops" and not case.flops) or (dimension == "bytes" and not case.bytes) or \
                    (dimension == "work" and not workload) or (workload and dimension not in ("work", "time")):
                raise ConfigError(f"{where}, column 'unit': a {case.kind} case cannot be measured in {row['unit']}")
        try:
            value = float(row["value"])
        except ValueError:
            raise ConfigError(f"{where}, column 'value': {row['value']!r} is not a number") from None
        if not (math.isfinite(value) and value > 0):
            raise ConfigError(f"{where}, column 'value': must be a finite number > 0, got {row['value']!r}")
        rows.append(Measurement(row["id"], row["category"], row["machine"], row["replay"], row["harness"],
                                value, row["unit"], row["use"], row["source"], case))
    return rows


def machine_file(name: str) -> Path:
    """The shipped machine file of ``name``; ConfigError listing the shipped ones if none."""
    return machine_path(name)


def predicted_seconds(machine: Machine, measurements: list[Measurement]) -> np.ndarray:
    """What each benchmark would time on ``machine`` under its harness, in seconds.

    A case is one stream of independent ops, so nothing contends and the event replay
    reduces to ``end_i = max(end_(i-1), issue_i) + duration_i`` with ``issue`` the host's
    launch times (the roofline pass). This computes exactly that for all the cases at once,
    from one batch of per-op costs and without records or summaries (a fit replays the set
    hundreds of times); ``simulate`` gives the same times (tested).
    """
    if not measurements:
        return np.zeros(0)
    if any(m.case.whole for m in measurements):
        raise ValueError("predicted_seconds times one-stream cases; replay() runs workloads whole")
    frames = [m.trace.to_frame() for m in measurements]
    case = np.repeat(np.arange(len(frames)), [len(f) for f in frames])
    frame = pd.concat(frames, ignore_index=True)
    costs = batch_costs(machine, frame, "calibration set", 1)
    duration = op_durations(costs)
    kernels = costs.kernel
    issue = np.concatenate([HostClock(machine.host).issue_times(kernels[case == i], np.full((case == i).sum(), -1))
                            for i in range(len(frames))])
    # Per case: end_i = S_i + max over j <= i of (issue_j - S_(j-1)), S the running sum.
    first = np.r_[True, case[1:] != case[:-1]]
    run = np.cumsum(duration)
    base = np.maximum.accumulate(np.where(first, run - duration, 0))
    inclusive = run - base
    floor = pd.Series(issue - (inclusive - duration)).groupby(case).cummax().to_numpy()
    end = inclusive + np.maximum(floor, 0)
    start = end - duration
    out = np.empty(len(frames))
    clock = machine.clock_hz
    for i, m in enumerate(measurements):
        rows = case == i
        if m.harness == "isolated":
            out[i] = end[rows].max() / clock
        elif m.harness == "kernel":
            out[i] = (end[rows] - start[rows]).sum() / clock
        else:
            per_launch = end[rows].reshape(LOOP_LAUNCHES, len(m.case.ops)).max(axis=1)
            half = LOOP_LAUNCHES // 2
            out[i] = (per_launch[-1] - per_launch[half - 1]) / (LOOP_LAUNCHES - half) / clock
    return out


def replay(measurements: Iterable[Measurement], machines: dict[str, MachineConfig | Machine] | None = None,
           overrides: list[str] | dict | None = None) -> pd.DataFrame:
    """Predict every replayable measurement; one row each with the published and predicted
    values in the published unit, ``speed`` and ``error`` (see the module docstring).

    ``machines`` maps machine names to configs (default: the shipped files, with ``overrides``).
    """
    replayable = [m for m in measurements if m.case is not None]
    seconds: dict[int, float] = {}
    work: dict[int, float] = {}
    for name in dict.fromkeys(m.machine for m in replayable):
        group = [m for m in replayable if m.machine == name]
        config = (machines or {}).get(name) or load_arch(machine_file(name), overrides)
        machine = config if isinstance(config, Machine) else Machine(config)
        kernels = [m for m in group if not m.case.whole and m.case.streams == 1]
        for m in group:
            if m.case.streams > 1:   # ops of one launch at once, on several streams
                if m.harness != "isolated":
                    raise ConfigError(f"{m.id}: a case of several streams is timed isolated only")
                seconds[id(m)] = simulate(machine, m.trace, allow_overflow=True).summary["seconds"]
        seconds.update(zip(map(id, kernels), predicted_seconds(machine, kernels).tolist(), strict=True))
        for m in group:
            if m.case.whole:
                summaries = [simulate(machine, trace, allow_overflow=True).summary for trace in m.case.traces()]
                seconds[id(m)] = sum(s["seconds"] for s in summaries)
                work[id(m)] = float(summaries[-1]["work_units"])
    rows = []
    for m in replayable:
        dimension, scale = UNITS[m.unit]
        if dimension == "time":
            predicted = seconds[id(m)] / scale
            speed = m.value / predicted
        else:
            amount = {"flops": m.case.flops, "bytes": m.case.bytes}.get(dimension) or work.get(id(m), 0.0)
            predicted = amount / seconds[id(m)] / scale
            speed = predicted / m.value
        rows.append({"id": m.id, "category": m.category, "machine": m.machine, "use": m.use,
                     "published": m.value, "predicted": predicted, "unit": m.unit,
                     "speed": speed, "error": speed - 1.0, "source": m.source})
    return pd.DataFrame(rows, columns=["id", "category", "machine", "use", "published", "predicted",
                                       "unit", "speed", "error", "source"])


def summarize(table: pd.DataFrame, by: tuple[str, ...] = ("category",)) -> pd.DataFrame:
    """Per group: rows, median |error|, geometric-mean speed (bias) and the worst |error|."""
    if table.empty:
        return pd.DataFrame(columns=[*by, "rows", "median_abs_error", "speed_geomean", "max_abs_error"])
    grouped = table.assign(abs_error=table["error"].abs(), log_speed=np.log(table["speed"])).groupby(
        list(by), sort=True)
    out = grouped.agg(rows=("id", "size"), median_abs_error=("abs_error", "median"),
                      log_speed=("log_speed", "mean"), max_abs_error=("abs_error", "max")).reset_index()
    out["speed_geomean"] = np.exp(out.pop("log_speed"))
    return out[[*by, "rows", "median_abs_error", "speed_geomean", "max_abs_error"]]
