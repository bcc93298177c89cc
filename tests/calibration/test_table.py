"""The calibration set: its file format, the replay of its rows, and today's errors pinned."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import hwsim
from hwsim.calibration.table import (
    COLUMNS,
    LOOP_LAUNCHES,
    default_measurements,
    predicted_seconds,
    read_measurements,
    summarize,
)
from hwsim.engine.machine import Machine

PINNED = Path(__file__).with_name("pinned_errors.csv")


def write_set(path, rows):
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({c: row.get(c, "") for c in COLUMNS})
    return path


GOOD = {"id": "g", "category": "gemm", "machine": "h100-sxm", "replay": "gemm m=4096 n=4096 k=4096",
        "harness": "isolated", "metric": "achieved throughput", "value": "786", "unit": "TFLOP/s", "use": "fit"}


@pytest.mark.parametrize(("change", "message"), [
    ({"use": "train"}, "row 2 \\(g\\), column 'use': 'train' is not one of fit, check, excluded"),
    ({"harness": "warm"}, "row 2 \\(g\\), column 'harness': 'warm' is not one of isolated, loop, kernel"),
    ({"unit": "TFLOPS"}, "row 2 \\(g\\), column 'unit': 'TFLOPS' is not one of"),
    ({"value": "nan"}, "row 2 \\(g\\), column 'value': must be a finite number > 0"),
    ({"value": "-3"}, "row 2 \\(g\\), column 'value': must be a finite number > 0"),
    ({"unit": "GB/s"}, "row 2 \\(g\\), column 'unit': a gemm case cannot be measured in GB/s"),
    ({"replay": "gemm m=1"}, "row 2 \\(g\\), column 'replay': missing n="),
])
def test_a_bad_row_names_the_file_row_and_column(tmp_path, change, message):
    path = write_set(tmp_path / "set.csv", [{**GOOD, **change}])
    with pytest.raises(hwsim.ConfigError, match=f"{path}: {message}"):
        read_measurements(path)


def test_duplicate_ids_and_missing_columns_are_refused(tmp_path):
    with pytest.raises(hwsim.ConfigError, match="row 3 \\(g\\), column 'id': duplicate id"):
        read_measurements(write_set(tmp_path / "twice.csv", [GOOD, GOOD]))
    (tmp_path / "short.csv").write_text("id,category\n")
    with pytest.raises(hwsim.ConfigError, match="missing column 'machine'"):
        read_measurements(tmp_path / "short.csv")


def test_excluded_rows_say_why_and_are_not_replayed(measurements, table):
    excluded = [m for m in measurements if m.use == "excluded"]
    assert excluded and all(m.case is None for m in excluded)
    assert not set(table["id"]) & {m.id for m in excluded}
    with open(default_measurements()) as f:
        notes = {row["id"]: row["notes"] for row in csv.DictReader(f)}
    assert all(notes[m.id] for m in excluded)


def test_every_replayable_row_has_a_source(measurements):
    assert all(m.source for m in measurements)


def test_the_fast_replay_times_each_harness_exactly_as_the_event_engine(measurements):
    # predicted_seconds skips records and summaries; simulate() must agree to the cycle.
    sample = {}
    for m in measurements:
        if m.case is not None and not m.case.whole and (m.harness, m.case.kind) not in sample:
            sample[(m.harness, m.case.kind)] = m
    assert len(sample) >= 5
    for m in sample.values():
        machine = Machine(hwsim.load_arch(_machine(m.machine)))
        fast = predicted_seconds(machine, [m])[0]
        result = hwsim.simulate(machine, m.trace, allow_overflow=True)
        ends = result.records["end_cycle"].to_numpy()
        if m.harness == "isolated":
            slow = result.summary["total_cycles"] / machine.clock_hz
        elif m.harness == "kernel":
            slow = (ends - result.records["start_cycle"].to_numpy()).sum() / machine.clock_hz
        else:
            per_launch = ends.reshape(LOOP_LAUNCHES, -1).max(axis=1)
            slow = (per_launch[-1] - per_launch[LOOP_LAUNCHES // 2 - 1]) / (LOOP_LAUNCHES // 2) / machine.clock_hz
        assert fast == pytest.approx(slow, rel=1e-12), m.id


def _machine(name):
    from hwsim.calibration.table import machine_file
    return machine_file(name)


def test_summary_is_the_median_error_and_the_geometric_mean_speed():
    table = pd.DataFrame({"id": list("abcd"), "category": ["x", "x", "x", "y"],
                          "speed": [2.0, 0.5, 1.1, 1.0]})
    table["error"] = table["speed"] - 1
    out = summarize(table).set_index("category")
    assert out.loc["x", "rows"] == 3
    assert out.loc["x", "median_abs_error"] == pytest.approx(0.5)     # |1.0|, |-0.5|, |0.1|
    assert out.loc["x", "speed_geomean"] == pytest.approx(1.1 ** (1 / 3))
    assert out.loc["y", "max_abs_error"] == 0


def test_todays_errors_are_pinned_and_may_only_improve(table):
    """A model change that makes a category's median error worse, or biases it, fails here.
    Re-pin with the reason when a change improves it: see calibration/README.md."""
    pinned = pd.read_csv(PINNED).set_index("category")
    now = summarize(table).set_index("category")
    assert set(now.index) == set(pinned.index)
    for category, row in pinned.iterrows():
        got = now.loc[category]
        assert got["rows"] == row["rows"], f"{category}: the set changed; re-pin"
        assert got["median_abs_error"] <= row["median_abs_error"] + 0.005, category
        assert abs(math.log(got["speed_geomean"])) <= max(abs(math.log(row["speed_geomean"])) + 0.01,
                                                          math.log(1.1)), category


def test_the_kernel_level_targets_hold_on_the_set(table):
    # 10% median error per category and no bias beyond 0.9-1.1 (the calibration targets).
    summary = summarize(table).set_index("category")
    for category in ("gemm", "attention", "memory_bandwidth", "host_link"):
        assert summary.loc[category, "median_abs_error"] <= 0.10, category
        assert 0.9 <= summary.loc[category, "speed_geomean"] <= 1.1, category
    assert np.isfinite(table["predicted"]).all() and (table["predicted"] > 0).all()
