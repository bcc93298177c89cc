"""Machines of several device kinds (``device_kinds``): each device built, dispatched and
placed by its own machine file; an op on a mixed group timed on its slowest kind, its energy
summed over every member, its allocations checked on every kind's tier."""

from __future__ import annotations

import pytest

import hwsim
from hwsim.engine.costs import batch_costs
from hwsim.engine.machine import Machine
from hwsim.errors import ConfigError, TraceError

MIXED = "h200x4-pcie-kvasic"
GEMM = dict(kind="gemm", m=1024, n=4096, k=4096, src="weights", bytes_read=2 * 4096 * 4096, dst="act",
            bytes_written=2 * 1024 * 4096)


def trace(*rows: dict) -> hwsim.Trace:
    return hwsim.Trace.from_ops([dict(op_id=i, **row) for i, row in enumerate(rows)], meta={"work_unit": "op"})


def seconds(machine, rows: list[dict], **kwargs) -> tuple[float, float]:
    """(simulated seconds, dynamic energy pJ) of a trace of ``rows``."""
    summary = hwsim.simulate(machine, trace(*rows), **kwargs).summary
    return summary["seconds"], summary["energy"]["dynamic_pj"]


def op_seconds(machine, rows: list[dict]) -> tuple[float, str]:
    """(seconds from start to end, component) of the first op of a trace of ``rows``."""
    record = hwsim.simulate(machine, trace(*rows)).records.iloc[0]
    return (record["end_cycle"] - record["start_cycle"]) / machine.clock_hz, record["component"]


def test_each_device_has_its_own_files_components_dispatch_and_placement():
    machine = Machine(hwsim.load_arch(MIXED))
    assert machine.kind_of == [0, 0, 0, 0, 1]
    assert "d3.tensor" in machine.units and "d4.mxu" in machine.units and "d3.mxu" not in machine.units
    assert machine.unit_for("gemm", "", "op", 0) == "d0.tensor"
    assert machine.unit_for("gemm", "", "op", 4) == "d4.mxu"
    assert machine.tier_of("act", "op", 0) == "d0.hbm" and machine.tier_of("act", "op", 4) == "d4.sram"
    # The accelerator's arrays keep their file's clock (1.5 GHz), not the node's reference clock.
    assert machine.units["d4.mxu"].clock_hz == 1.5e9 and machine.clock_hz == 1.98e9


def test_an_op_on_one_device_costs_what_it_costs_on_that_devices_own_machine():
    mixed = hwsim.load_arch(MIXED)
    for device, alone in ((0, "h200"), (4, "worldkv-asic")):
        on_node, pj_node = seconds(mixed, [{**GEMM, "device": str(device)}])
        on_own, pj_own = seconds(hwsim.load_arch(alone), [GEMM])
        # The node counts in its own reference clock: a cycle of rounding either way.
        assert on_node == pytest.approx(on_own, abs=2 / mixed.clock_hz)
        assert pj_node == pytest.approx(pj_own, rel=1e-9)


def test_an_op_on_a_mixed_group_takes_its_slowest_kind_and_every_members_energy():
    mixed = hwsim.load_arch(MIXED)
    gpu_s, gpu_pj = seconds(hwsim.load_arch("h200"), [GEMM])
    asic_s, asic_pj = seconds(hwsim.load_arch("worldkv-asic"), [GEMM])
    group_s, group_pj = seconds(mixed, [{**GEMM, "device": "0-4"}])
    assert group_s == pytest.approx(max(gpu_s, asic_s), abs=2 / mixed.clock_hz)
    assert group_pj == pytest.approx(4 * gpu_pj + asic_pj, rel=1e-9)
    # A small GEMM the accelerator's 256x256 arrays pad badly is slower there: the group then
    # runs at the accelerator's pace, on its unit (after the GPUs' hosts have launched it).
    small = dict(GEMM, m=8, n=8192, k=64, bytes_read=2 * 8192 * 64, bytes_written=2 * 8 * 8192)
    gpu, asic = (op_seconds(hwsim.load_arch(name), [small])[0] for name in ("h200", "worldkv-asic"))
    assert asic > gpu
    spans = op_seconds(mixed, [{**small, "device": "0-4"}])
    assert spans[0] == pytest.approx(asic, abs=2 / mixed.clock_hz)
    assert spans[1] == "d4.mxu"


def test_an_allocation_on_a_mixed_group_is_checked_on_each_kinds_tier():
    # 120 GB of weights fit an H200's 141 GB of HBM, not the accelerator's 96 GB.
    rows = [dict(kind="alloc", dst="weights", bytes_written=120 * 10**9, device="0-4")]
    with pytest.raises(hwsim.HwsimError, match=r"d4\.hbm"):
        hwsim.simulate(hwsim.load_arch(MIXED), trace(*rows))
    summary = hwsim.simulate(hwsim.load_arch(MIXED), trace(*rows), allow_overflow=True).summary
    assert summary["overflow"] == ["d4.hbm"]
    assert summary["tiers"]["d0.hbm"]["peak_occupancy_bytes"] == 120e9
    assert summary["tiers"]["d4.hbm"]["peak_occupancy_bytes"] == 120e9


def test_a_collective_over_mixed_kinds_runs_on_the_fabric_like_on_one_kind():
    rows = [dict(kind="all_reduce", device="0-4", bytes_read=64 * 2**20)]
    mixed, _ = seconds(hwsim.load_arch(MIXED), rows)
    same, _ = seconds(hwsim.load_arch("h200x4-pcie", {"devices": 5}), rows)
    assert mixed == same > 0


def test_each_kind_dispatches_an_op_to_its_own_unit_and_an_explicit_unit_must_be_the_devices():
    row = dict(kind="similarity", elements=4096, flops=8192, src="kv_window", bytes_read=8192)
    mixed = hwsim.load_arch(MIXED)
    records = hwsim.simulate(mixed, trace({**row, "device": "0"}, {**row, "device": "4"})).records
    assert records["component"].tolist() == ["d0.tensor", "d4.simeng"]
    with pytest.raises(TraceError, match=r"row 1 .*column 'unit': 'simeng' is not a compute unit"):
        hwsim.simulate(mixed, trace({**row, "device": "3-4", "unit": "simeng"}))


@pytest.mark.parametrize("entry, message", [
    ({"machine": "worldkv-asic.yaml", "devices": "5"}, r"device_kinds\.x\.devices: .*names device 5"),
    ({"machine": "h200x4.yaml", "devices": "4"}, r"device_kinds\.x\.machine: .*one device without fabrics"),
    ({"machine": "no-such-machine.yaml", "devices": "4"}, r"device_kinds\.x\.machine: .*no such machine file"),
    ({"machine": "worldkv-asic.yaml"}, r"device_kinds\.x: expected a mapping with 'machine'"),
])
def test_bad_device_kinds_name_the_key(entry, message):
    with pytest.raises(ConfigError, match=message):
        hwsim.load_arch("h200x4-pcie", {"devices": 5, "device_kinds": {"x": entry}})


def test_two_kinds_may_not_share_a_device():
    kinds = {"a": {"machine": "worldkv-asic.yaml", "devices": "3-4"}, "b": {"machine": "h100-sxm.yaml", "devices": "4"}}
    with pytest.raises(ConfigError, match=r"device_kinds\.b\.devices: device 4 is already of kind 'a'"):
        hwsim.load_arch("h200x4-pcie", {"devices": 5, "device_kinds": kinds})


def test_costing_no_signature_on_a_node_of_two_kinds_gives_empty_costs():
    # A batch of a streamed trace may add no new signature; costing none gives empty costs.
    frame = trace(dict(GEMM, device="0-4")).to_frame()
    costs = batch_costs(Machine(hwsim.load_arch(MIXED)), frame.iloc[:0])
    assert len(costs.duration) == 0 and costs.cells.signatures == 0
