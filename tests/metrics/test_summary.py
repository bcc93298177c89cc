"""The run summary's utilisation: busy cycles over (instances x run cycles), the instances
taken from the component facts, checked against counts made from the records."""

from __future__ import annotations

import pytest

import hwsim
from hwsim.components.facts import read_facts

from ..conftest import ARCH, EXAMPLES


def _gemms(count: int, m: int = 512) -> hwsim.Trace:
    """``count`` GEMMs in one stream that touch no memory: the unit is all the run does."""
    return hwsim.Trace.from_ops([{"op_id": i, "kind": "gemm", "m": m, "n": 512, "k": 512} for i in range(count)])


def test_folded_systolic_arrays_busy_for_the_whole_run_are_fully_utilised():
    """``partition: folds`` spreads one op over both arrays: one op at a time, one instance."""
    machine = hwsim.load_arch(ARCH / "systolic-128.yaml")
    assert machine.component("mxu").config.count == 2
    assert machine.component("mxu").config.partition == "folds"
    result = hwsim.simulate(machine, _gemms(3))
    records = result.records
    assert int(records["start_cycle"].min()) == 0
    assert int((records["end_cycle"] - records["start_cycle"]).sum()) == result.summary["total_cycles"]
    assert result.summary["units"]["mxu"]["utilization"] == 1.0


def test_arrays_running_separate_ops_each_count_as_an_instance():
    """``partition: ops``: two arrays, one stream: one array idles, utilisation one half."""
    machine = hwsim.load_arch(ARCH / "systolic-128.yaml", overrides={"components.mxu.partition": "ops"})
    result = hwsim.simulate(machine, _gemms(3))
    assert read_facts(result.machine)["mxu"].instances == 2
    assert result.summary["units"]["mxu"]["utilization"] == pytest.approx(0.5)


#: Ops each unit can run at once, counted from the machine files (count, queue_depth, partition).
INSTANCES = {
    ("worldkv-asic.yaml", "mxu"): 1,     # 8 arrays, partition: folds
    ("worldkv-asic.yaml", "dma"): 16,    # 4 engines x queue_depth 4
    ("worldkv-asic.yaml", "vector"): 1,
    ("systolic-128.yaml", "mxu"): 1,
}


@pytest.mark.parametrize(("machine", "trace"), [("worldkv-asic.yaml", "offload.csv"),
                                                ("edge-npu.yaml", "decode_state.csv"),
                                                ("systolic-128.yaml", "gemm.csv"),
                                                ("h200.yaml", "offload.csv")])
def test_summary_utilisation_is_busy_cycles_over_instances_times_run_cycles(machine, trace):
    result = hwsim.simulate(hwsim.load_arch(ARCH / machine), hwsim.read_trace(EXAMPLES / trace))
    records, summary = result.records, result.summary
    raw = hwsim.config.machine.read_arch(ARCH / machine)["components"]
    for name, unit in summary["units"].items():
        block = raw[name]
        instances = int(block.get("count", 1))
        if block["kind"] == "systolic_array" and block.get("partition", "folds") == "folds":
            instances = 1
        if block["kind"] == "dma_engine":
            instances *= int(block.get("queue_depth", 1))
        if (machine, name) in INSTANCES:
            assert instances == INSTANCES[machine, name]
        mine = records[records["component"].astype(str) == name]
        busy = int((mine["end_cycle"] - mine["start_cycle"]).sum())
        assert unit["busy_cycles"] == busy, name
        assert unit["utilization"] == pytest.approx(busy / (instances * summary["total_cycles"])), name
        assert 0.0 <= unit["utilization"] <= 1.0 + 1e-12, name
