"""The host runtime: kernels start only once the host has launched them, in trace order.

tiny runs at 1 GHz, so 1 ns = 1 cycle; a vector op of 128 FLOPs takes 1 cycle, of 12,800
FLOPs 100 cycles (64 lanes x 2 FLOP per cycle).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import hwsim
from hwsim.components.host import HostClock, HostRuntime
from hwsim.engine.analytic import roofline

from ..conftest import ARCH

HOST = {"kind": "host_runtime", "launch_overhead": "10 ns", "step_overhead": "100 ns"}


def machine_with_host(**host):
    return hwsim.load_arch(ARCH / "tiny.yaml", overrides={"components.host": {**HOST, **host}})


def vector(op_id, flops=128, **extra):
    return {"op_id": op_id, "kind": "vector", "flops": flops, **extra}


BOTH = pytest.mark.parametrize("simulate", [hwsim.simulate, roofline], ids=["event", "roofline"])


@BOTH
def test_short_kernels_wait_for_the_host(simulate):
    machine = machine_with_host(step_overhead="0 ns")
    records = simulate(machine, hwsim.Trace.from_ops([vector(i) for i in range(3)])).records
    assert records["start_cycle"].tolist() == [10, 20, 30]
    assert records["end_cycle"].tolist() == [11, 21, 31]


@BOTH
def test_long_kernels_hide_the_host(simulate):
    machine = machine_with_host(step_overhead="0 ns")
    records = simulate(machine, hwsim.Trace.from_ops([vector(i, 12_800) for i in range(3)])).records
    assert records["end_cycle"].tolist() == [110, 210, 310]


@BOTH
def test_each_new_step_costs_the_host_its_step_overhead(simulate):
    ops = [vector(0, step=0), vector(1, step=0), vector(2, step=1), vector(3, step=1)]
    records = simulate(machine_with_host(), hwsim.Trace.from_ops(ops)).records
    # issued at 100 + 10, 120, then 120 + 100 + 10 = 230, 240
    assert records["end_cycle"].tolist() == [111, 121, 231, 241]


def test_bookkeeping_ops_are_not_launched_and_untagged_ops_do_not_start_a_step():
    host = HostClock(HostRuntime("host", HostRuntime.Config(launch_overhead=10e-9, step_overhead=100e-9), 1e9))
    kernels = np.array([True, False, True, True, True])
    steps = np.array([0, 0, -1, 0, 1])
    assert host.issue_times(kernels, steps).tolist() == [110, 0, 120, 130, 240]
    # the clock and the step carry over to the next batch
    assert host.issue_times(np.array([True, True]), np.array([1, 2])).tolist() == [250, 360]


def reference_issue(batches, launch: int, step_cost: int, latency: int) -> list[list[int]]:
    """The host's launches one kernel at a time: a kernel whose step tag (>= 0) differs
    from the last tag seen first pays the step's cost."""
    clock, last, out = 0, None, []
    for kernels, steps in batches:
        times = []
        for is_kernel, step in zip(kernels, steps, strict=True):
            if not is_kernel:
                times.append(0)
                continue
            clock += launch + (step_cost if step >= 0 and step != last else 0)
            last = step if step >= 0 else last
            times.append(clock + latency)
        out.append(times)
    return out


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(st.tuples(st.booleans(), st.sampled_from([-1, -1, 0, 1, 2])), min_size=1, max_size=12),
                min_size=1, max_size=4))
def test_launch_times_equal_a_kernel_by_kernel_count(batches):
    host = HostClock(HostRuntime("host", HostRuntime.Config(launch_overhead=10e-9, step_overhead=100e-9,
                                                            launch_latency=3e-9), 1e9))
    pairs = [(np.array([k for k, _ in b]), np.array([s for _, s in b])) for b in batches]
    expected = reference_issue([(k.tolist(), s.tolist()) for k, s in pairs], 10, 100, 3)
    assert [host.issue_times(k, s).tolist() for k, s in pairs] == expected


def test_a_machine_has_at_most_one_host():
    machine = hwsim.load_arch(ARCH / "tiny.yaml", overrides={"components.host": HOST, "components.host2": HOST})
    with pytest.raises(hwsim.ConfigError, match="at most one host_runtime"):
        hwsim.simulate(machine, hwsim.Trace.from_ops([vector(0)]))


def test_with_a_host_the_roofline_stays_a_lower_bound_on_random_traces():
    machine = machine_with_host(launch_overhead="3 ns", step_overhead="40 ns")
    rng = np.random.default_rng(11)
    for _ in range(5):
        ops = []
        for i in range(150):
            op = vector(i, int(rng.integers(1, 1 << 12)), stream=f"s{rng.integers(3)}", step=i // 20,
                        src="act", bytes_read=int(rng.integers(0, 1 << 12)))
            if rng.random() < 0.2:
                op = {"op_id": i, "kind": "transfer", "stream": op["stream"], "src": "kv_bank", "dst": "act",
                      "bytes_read": int(rng.integers(1, 1 << 10)), "step": i // 20}
            if i > 3 and rng.random() < 0.3:
                op["deps"] = ";".join(str(d) for d in sorted(set(rng.integers(0, i, 2).tolist())))
            ops.append(op)
        trace = hwsim.Trace.from_ops(ops)
        event, roof = hwsim.simulate(machine, trace), roofline(machine, trace)
        assert (roof.records["end_cycle"].to_numpy() <= event.records["end_cycle"].to_numpy()).all()
        assert (roof.records["start_cycle"].to_numpy() >= 0).all()
        small_batches = roofline(machine, trace, batch_rows=13)
        assert (small_batches.records["end_cycle"] == roof.records["end_cycle"]).all()
        single = hwsim.Trace.from_ops([{**op, "stream": "main"} for op in ops])
        assert (roofline(machine, single).records["end_cycle"].to_numpy()
                == hwsim.simulate(machine, single).records["end_cycle"].to_numpy()).all()


@BOTH
def test_a_launch_reaches_the_device_after_the_launch_latency(simulate):
    machine = machine_with_host(step_overhead="0 ns", launch_latency="1000 ns")
    records = simulate(machine, hwsim.Trace.from_ops([vector(i) for i in range(3)])).records
    assert records["start_cycle"].tolist() == [1010, 1020, 1030]
