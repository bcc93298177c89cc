from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import hwsim
from hwsim.engine.machine import Machine
from hwsim.reports import roofline

from ..conftest import ARCH
from .conftest import is_png


def test_compute_ceilings_follow_each_unit_kind_formula(offload_tiny, two_streams_systolic):
    tiny = roofline.compute_ceilings(offload_tiny.machine)
    peaks = {(r.component, r.dtype): r.peak_flops_per_s for r in tiny.itertuples()}
    assert peaks == {("tensor", "bf16"): 2.048e12, ("tensor", "fp32"): 0.512e12,
                     ("vector", "any"): 64 * 2 * 1e9}
    systolic = roofline.compute_ceilings(two_streams_systolic.machine).set_index("component")
    assert systolic.loc["mxu", "peak_flops_per_s"] == pytest.approx(2 * 128 * 128 * 2 * 940e6)
    assert systolic.loc["vector", "peak_flops_per_s"] == pytest.approx(2048 * 2 * 2 * 940e6)  # count: 2


def test_a_unit_clock_replaces_the_machine_clock_in_its_ceiling():
    machine = Machine(hwsim.load_arch(ARCH / "tiny.yaml", overrides={"components.vector.clock": "2 GHz",
                                                                     "components.vector.count": 3}))
    table = roofline.compute_ceilings(machine.config_dict).set_index("component")
    assert table.loc["vector", "peak_flops_per_s"] == 64 * 2 * 3 * 2e9


def test_bandwidth_ceilings_list_every_tier_direction_and_link_direction(offload_tiny):
    table = roofline.bandwidth_ceilings(offload_tiny.machine)
    rows = {(r.resource, r.direction): r.bandwidth_bytes_per_s for r in table.itertuples()}
    assert rows == {("hbm", "read"): 64e9, ("hbm", "write"): 64e9, ("dram", "read"): 16e9,
                    ("dram", "write"): 16e9, ("link", "hbm->dram"): 8e9, ("link", "dram->hbm"): 8e9}
    assert roofline.resource_bandwidth(offload_tiny.machine).to_dict() == {"hbm": 64e9, "dram": 16e9, "link": 8e9}


def test_achieved_flops_of_an_op_is_its_flops_over_its_seconds(offload_h200):
    records, machine = offload_h200.records, offload_h200.machine
    points = roofline.op_points(records, machine).set_index("op_id")
    compute = records[records["flops"] > 0].set_index("op_id")
    assert sorted(points.index) == sorted(compute.index)
    for op_id, row in compute.iterrows():
        seconds = (row["end_cycle"] - row["start_cycle"]) / machine["clock_hz"]
        assert points.loc[op_id, "seconds"] == pytest.approx(seconds)
        assert points.loc[op_id, "achieved_flops_per_s"] == pytest.approx(row["flops"] / seconds)


def test_intensity_uses_the_resource_the_op_keeps_busiest(offload_h200):
    records, machine = offload_h200.records, offload_h200.machine
    points = roofline.op_points(records, machine).set_index("op_id")
    bandwidth = roofline.resource_bandwidth(machine)
    for op_id, row in records[records["flops"] > 0].set_index("op_id").iterrows():
        busy = {name: row[f"bytes_{name}"] / bw for name, bw in bandwidth.items()}
        expected = max(busy, key=busy.get)
        assert points.loc[op_id, "bottleneck"] == expected
        assert points.loc[op_id, "arithmetic_intensity"] == pytest.approx(
            row["flops"] / row[f"bytes_{expected}"])
        roof = min(points.loc[op_id, "peak_flops_per_s"],
                   bandwidth[expected] * points.loc[op_id, "arithmetic_intensity"])
        assert points.loc[op_id, "attainable_flops_per_s"] == pytest.approx(roof)


def test_kind_points_aggregate_flops_and_busy_time_per_unit_and_kind(two_streams_systolic):
    records, machine = two_streams_systolic.records, two_streams_systolic.machine
    kinds = roofline.kind_points(records, machine).set_index(["component", "kind"])
    gemms = records[records["kind"] == "gemm"]
    row = kinds.loc[("mxu", "gemm")]
    assert row["ops"] == len(gemms)
    assert row["flops"] == gemms["flops"].sum()
    seconds = (gemms["end_cycle"] - gemms["start_cycle"]).sum() / machine["clock_hz"]
    assert row["achieved_flops_per_s"] == pytest.approx(gemms["flops"].sum() / seconds)
    assert row["bottleneck"] == "hbm"
    assert row["arithmetic_intensity"] == pytest.approx(gemms["flops"].sum() / gemms["bytes_hbm"].sum())


def test_an_op_that_moves_no_bytes_has_no_intensity_and_the_unit_peak_as_roof(offload_tiny):
    records = offload_tiny.records.copy()
    attention = records.index[records["kind"] == "attention"]
    for column in [c for c in records.columns if c.startswith("bytes_")]:
        records.loc[attention[0], column] = 0
    points = roofline.op_points(records, offload_tiny.machine).set_index("op_id")
    op = int(records.loc[attention[0], "op_id"])
    assert np.isnan(points.loc[op, "arithmetic_intensity"])
    assert points.loc[op, "bottleneck"] == ""
    assert points.loc[op, "attainable_flops_per_s"] == 2.048e12


def test_write_roofline_writes_plot_and_tables_deterministically(tmp_path, offload_h200):
    first = roofline.write_roofline(offload_h200.records, offload_h200.machine, tmp_path / "a")
    second = roofline.write_roofline(offload_h200.records, offload_h200.machine, tmp_path / "b")
    assert is_png(first["png"].read_bytes())
    for key in ("csv", "ceilings"):
        assert first[key].read_bytes() == second[key].read_bytes()
    table = pd.read_parquet(first["parquet"])
    pd.testing.assert_frame_equal(table, roofline.kind_points(offload_h200.records, offload_h200.machine))
    ops = pd.read_parquet(first["ops"])
    assert len(ops) == int((offload_h200.records["flops"] > 0).sum())
    ceilings = pd.read_csv(first["ceilings"])
    assert set(ceilings["unit"]) == {"FLOP/s", "B/s"}


def test_roofline_plot_draws_a_run_without_compute_ops(tmp_path, offload_tiny):
    records = offload_tiny.records[offload_tiny.records["flops"] == 0]
    assert is_png(roofline.roofline_png(records, offload_tiny.machine))


def test_sram_and_similarity_engine_ceilings_come_from_their_geometry(asic_run):
    bandwidth = roofline.resource_bandwidth(asic_run.machine)
    parts = asic_run.machine["components"]
    clock = asic_run.machine["clock_hz"]
    sram, simeng, mxu = parts["sram"], parts["simeng"], parts["mxu"]
    assert bandwidth["sram"] == sram["num_banks"] * sram["bank_width"] * sram["ports"] * clock
    assert "dma" not in bandwidth and "cam" not in bandwidth
    compute = roofline.compute_ceilings(asic_run.machine).set_index("component")["peak_flops_per_s"]
    assert compute["simeng"] == 2 * simeng["lanes"] * simeng["vector_width"] * simeng["count"] * clock
    assert compute["mxu"] == 2 * mxu["rows"] * mxu["cols"] * mxu["count"] * clock


@pytest.mark.parametrize("fixture", ["offload_h200", "asic_run", "two_streams_systolic"])
def test_every_ceiling_is_a_number_of_the_component_facts(fixture, request):
    machine = request.getfixturevalue(fixture).machine
    facts = machine["facts"]
    compute = roofline.compute_ceilings(machine)
    assert {(r.component, r.dtype): r.peak_flops_per_s for r in compute.itertuples()} == {
        (name, dtype): peak for name, f in facts.items() for dtype, peak in f["peak_flops_per_s"].items()}
    bandwidth = roofline.bandwidth_ceilings(machine)
    assert {(r.resource, r.direction): r.bandwidth_bytes_per_s for r in bandwidth.itertuples()} == {
        (name, b["direction"]): b["peak_bytes_per_s"] for name, f in facts.items() if f["role"] in ("tier", "link")
        for b in f["bandwidth"]}
