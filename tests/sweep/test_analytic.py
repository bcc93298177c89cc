"""The roofline fidelity level against the event engine, and the gap between them per op kind."""

from __future__ import annotations

import sys
import time

import numpy as np
import pytest

import hwsim
from hwsim.engine.analytic import gap_by_kind, roofline

from ..conftest import ARCH, EXAMPLES, ROOT

MIB = 2**20


def single_stream_ops():
    return [
        {"op_id": 0, "kind": "alloc", "dst": "weights", "bytes_written": 4 * MIB},
        {"op_id": 1, "kind": "gemm", "m": 256, "n": 256, "k": 256, "src": "weights", "bytes_read": MIB, "deps": "0"},
        {"op_id": 2, "kind": "transfer", "src": "kv_bank", "dst": "act", "bytes_read": MIB},
        {"op_id": 3, "kind": "vector", "flops": 10**6, "src": "act", "bytes_read": 64 * 1024, "dst": "act",
         "bytes_written": 64 * 1024},
        {"op_id": 4, "kind": "gemm", "m": 64, "n": 64, "k": 4096, "src": "kv_bank", "bytes_read": 2 * MIB},
        {"op_id": 5, "kind": "sync", "deps": "4"},
        {"op_id": 6, "kind": "free", "src": "weights", "bytes_read": 4 * MIB},
    ]


@pytest.mark.parametrize("machine", sorted(p.name for p in ARCH.glob("*.yaml")))
def test_single_stream_without_contention_equals_the_event_engine_exactly(machine):
    arch = hwsim.load_arch(ARCH / machine)
    for trace in (hwsim.Trace.from_ops(single_stream_ops()), hwsim.read_trace(EXAMPLES / "gemm.csv"),
                  hwsim.read_trace(EXAMPLES / "decode_state.csv")):
        event = hwsim.simulate(arch, trace, allow_overflow=True)
        roof = roofline(arch, trace, allow_overflow=True)
        assert roof.summary["total_cycles"] == event.summary["total_cycles"]
        assert (roof.records["end_cycle"].to_numpy() == event.records["end_cycle"].to_numpy()).all()
        assert roof.summary["energy"]["dynamic_pj"] == pytest.approx(event.summary["energy"]["dynamic_pj"])


def test_contention_makes_the_event_total_at_least_the_roofline_total(tiny):
    # Two streams copy over the same 8 B/cycle link at once: the event engine serialises them.
    ops = [{"op_id": i, "kind": "transfer", "stream": f"s{i}", "src": "kv_bank", "dst": "act", "bytes_read": 8192}
           for i in range(2)]
    ops.append({"op_id": 2, "kind": "vector", "stream": "s0", "flops": 1280, "deps": "0;1"})
    trace = hwsim.Trace.from_ops(ops)
    event, roof = hwsim.simulate(tiny, trace), roofline(tiny, trace)
    assert roof.summary["total_cycles"] == 1024 + 10
    assert event.summary["total_cycles"] == 2048 + 10
    assert roof.summary["roofline"]["channel_busy_cycles"]["link:dram->hbm"] == 2048
    assert roof.summary["roofline"]["bound_cycles"] == 2048


def test_every_op_ends_no_later_than_in_the_event_replay_on_random_traces(tiny):
    rng = np.random.default_rng(7)
    kinds = ["gemm", "vector", "transfer", "state_update"]
    for _ in range(5):
        ops = []
        for i in range(200):
            kind = kinds[rng.integers(len(kinds))]
            op = {"op_id": i, "kind": kind, "stream": f"s{rng.integers(3)}", "bytes_read": int(rng.integers(1, 1 << 16))}
            if kind == "gemm":
                op.update(m=int(rng.integers(1, 512)), n=64, k=64, src="weights")
            elif kind == "transfer":
                op.update(src="kv_bank", dst="act")
            else:
                op.update(flops=int(rng.integers(1, 1 << 20)), src="state")
            if i > 3 and rng.random() < 0.3:
                op["deps"] = ";".join(str(d) for d in sorted(set(rng.integers(0, i, 2).tolist())))
            ops.append(op)
        trace = hwsim.Trace.from_ops(ops)
        event, roof = hwsim.simulate(tiny, trace), roofline(tiny, trace)
        assert (roof.records["end_cycle"].to_numpy() <= event.records["end_cycle"].to_numpy()).all()
        assert roof.summary["total_cycles"] <= roof.summary["roofline"]["bound_cycles"] <= event.summary["total_cycles"]
        small_batches = roofline(tiny, trace, batch_rows=17)
        assert (small_batches.records["end_cycle"] == roof.records["end_cycle"]).all()


def test_gap_by_kind_attributes_contention_to_the_kinds_that_waited(tiny):
    ops = [{"op_id": i, "kind": "transfer", "stream": f"s{i}", "src": "kv_bank", "dst": "act", "bytes_read": 8192}
           for i in range(2)]
    ops.append({"op_id": 2, "kind": "vector", "flops": 1280, "stream": "s2"})
    trace = hwsim.Trace.from_ops(ops)
    gap = gap_by_kind(hwsim.simulate(tiny, trace).records, roofline(tiny, trace).records)
    assert list(gap.index) == ["transfer", "vector"]
    assert gap.loc["transfer", "gap_cycles"] == 1024 and gap.loc["transfer", "gap_share"] == 1.0
    assert gap.loc["vector", "gap_cycles"] == 0 and gap.loc["vector", "gap_ratio"] == 1.0
    assert set(gap.columns) >= {"ops", "roofline_cycles", "event_cycles", "queue_cycles", "contention_cycles"}


def test_roofline_reports_overflow_like_the_event_engine(tiny):
    trace = hwsim.Trace.from_ops([{"op_id": 0, "kind": "alloc", "dst": "weights", "bytes_written": 2**31}])
    with pytest.raises(hwsim.CapacityError, match="does not fit"):
        roofline(tiny, trace)
    assert roofline(tiny, trace, allow_overflow=True).summary["overflow"] == ["hbm"]


@pytest.mark.slow
def test_roofline_is_much_faster_than_the_event_engine_on_50k_ops():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_engine import mixed_trace

    trace = mixed_trace(50_000)
    machine = hwsim.load_arch(ARCH / "h100-sxm.yaml")

    def best(fn):
        times = []
        for _ in range(3):
            start = time.perf_counter()
            fn(machine, trace, allow_overflow=True)
            times.append(time.perf_counter() - start)
        return min(times)

    ratio = best(hwsim.simulate) / best(roofline)
    assert ratio >= 1.5, f"roofline only {ratio:.2f}x faster"


def test_the_documented_gap_example_runs(monkeypatch):
    text = (ROOT / "docs" / "sweeps-and-regress.md").read_text()
    blocks = [b.split("```", 1)[0] for b in text.split("```python\n")[1:]]
    runnable = [b for b in blocks if "gap_by_kind" in b]
    assert runnable
    monkeypatch.chdir(ROOT)
    for block in runnable:
        exec(compile(block, "docs/sweeps-and-regress.md", "exec"), {})  # noqa: S102 - our own docs
