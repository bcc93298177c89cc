"""The roofline fidelity level against the event engine, and the gap between them per op kind."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hwsim
from hwsim.engine import critical_path
from hwsim.engine.analytic import gap_by_kind, roofline
from hwsim.sweep import load_sweep, run_sweep
from hwsim.trace.columns import CODE_DTYPE
from workloads.registry import generate_trace

from ..conftest import ARCH, EXAMPLES, ROOT
from ..hwsim.test_engine import ready_after_predecessors

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


def random_dag(rng, n, streams):
    stream = rng.integers(0, streams, n)
    duration = rng.integers(0, 50, n)
    issue = np.where(rng.random(n) < 0.3, rng.integers(0, 500, n), 0)
    counts = np.where(np.arange(n) > 0, rng.integers(0, 3, n), 0)
    offsets = np.concatenate([[0], np.cumsum(counts)])
    deps = np.concatenate([rng.integers(0, max(i, 1), c) for i, c in enumerate(counts)] or [np.zeros(0)]).astype(np.int64)
    return stream, duration, issue, offsets, deps


def longest_paths(stream, duration, issue, offsets, deps):
    """End cycles from the definition: every predecessor (stream order, deps, host issue)."""
    end = []
    for i in range(len(duration)):
        before = [end[j] for j in range(i) if stream[j] == stream[i]][-1:]
        waits = before + [end[d] for d in deps[offsets[i]:offsets[i + 1]]] + [int(issue[i]), 0]
        end.append(max(waits) + int(duration[i]))
    return end


def test_the_compiled_and_python_placements_equal_the_longest_paths():
    rng = np.random.default_rng(5)
    for n, streams in ((1, 1), (40, 1), (200, 3), (300, 7)):
        stream, duration, issue, offsets, deps = random_dag(rng, n, streams)
        expected = longest_paths(stream.tolist(), duration, issue, offsets, deps)
        # Durations by signature, as the engine gives them: a few distinct ones, shared.
        sig_duration, sig = np.unique(duration, return_inverse=True)
        for place in (critical_path.place_rows, critical_path.place_rows_compiled):
            # in two batches, as the engine places them
            end, stream_end = np.zeros(n, dtype=np.int64), np.zeros(streams, dtype=np.int64)
            start = np.zeros(n, dtype=np.int64)
            cut = n // 2
            for lo, hi in ((0, cut), (cut, n)):
                local = offsets[lo:hi + 1]
                place(stream[lo:hi].astype(CODE_DTYPE), sig[lo:hi], sig_duration, issue[lo:hi], local - local[0],
                      deps[local[0]:local[-1]], lo, end, start[lo:hi], stream_end)
            assert end.tolist() == expected
            assert (end - start).tolist() == duration.tolist()


@st.composite
def traces(draw):
    n = draw(st.integers(1, 60))
    ops = []
    for i in range(n):
        kind = draw(st.sampled_from(["gemm", "vector", "transfer", "state_update", "alloc", "sync"]))
        op = {"op_id": i, "kind": kind, "stream": f"s{draw(st.integers(0, 3))}", "step": draw(st.integers(-1, 3))}
        if kind == "gemm":
            op.update(m=draw(st.integers(1, 300)), n=draw(st.sampled_from([32, 64])), k=64, src="weights",
                      bytes_read=draw(st.integers(0, 1 << 14)))
        elif kind == "transfer":
            op.update(src=draw(st.sampled_from(["kv_bank", "act"])), dst="act", bytes_read=draw(st.integers(1, 1 << 14)))
        elif kind in ("vector", "state_update"):
            op.update(flops=draw(st.integers(0, 1 << 16)), src="state", bytes_read=draw(st.integers(0, 1 << 12)))
        elif kind == "alloc":
            op.update(dst="act", bytes_written=draw(st.integers(1, 1 << 10)))
        if i and draw(st.booleans()):
            op["deps"] = sorted(set(draw(st.lists(st.integers(0, i - 1), min_size=1, max_size=3))))
        ops.append(op)
    return hwsim.Trace.from_ops(ops)


HOST = {"kind": "host_runtime", "launch_overhead": "7 ns", "step_overhead": "30 ns", "launch_latency": "5 ns"}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(traces(), st.booleans())
def test_the_roofline_is_a_lower_bound_of_the_event_replay(trace, with_host):
    machine = hwsim.load_arch(ARCH / "tiny.yaml", overrides={"components.host": HOST} if with_host else {})
    event = hwsim.simulate(machine, trace, allow_overflow=True)
    roof = hwsim.simulate(machine, trace, fidelity="roofline", allow_overflow=True)
    assert ready_after_predecessors(event.records, trace)
    assert (roof.records["end_cycle"].to_numpy() <= event.records["end_cycle"].to_numpy()).all()
    assert roof.summary["total_cycles"] <= roof.summary["roofline"]["bound_cycles"] <= event.summary["total_cycles"]
    assert roof.summary["energy"]["dynamic_pj"] == event.summary["energy"]["dynamic_pj"]
    assert roof.summary["tiers"].keys() == event.summary["tiers"].keys()
    for name, tier in roof.summary["tiers"].items():
        assert tier["bytes"] == event.summary["tiers"][name]["bytes"]


def test_the_roofline_plans_spills_like_the_event_level():
    machine = hwsim.load_arch(ARCH / "gdn-decode-asic.yaml", overrides={"components.sram.capacity": "16 MiB"})
    trace = generate_trace("deltanet2", "gdn2-1.3b", {"mode": "decode", "decode_batch": 4, "decode_tokens": 8}, seed=0)
    event = hwsim.simulate(machine, trace)
    roof = hwsim.simulate(machine, trace, fidelity="roofline")
    assert event.summary["spills"] and roof.summary["spills"] == event.summary["spills"]
    assert roof.summary["overflow"] == event.summary["overflow"] == []
    assert roof.summary["tiers"]["hbm"]["bytes"] == event.summary["tiers"]["hbm"]["bytes"]


def test_the_gdn2_sram_sweep_runs_every_point_at_both_fidelities(tmp_path):
    spec = load_sweep(ROOT / "examples" / "sweeps" / "gdn2-decode-sram.yaml")
    for fidelity in ("event", "roofline"):
        outcome = run_sweep(spec, tmp_path / fidelity, workers=0, fidelity=fidelity, quiet=True)
        assert (outcome.runs, outcome.failed, outcome.missing) == (15, 0, 0), fidelity


def test_the_documented_gap_example_runs(monkeypatch):
    text = (ROOT / "docs" / "sweeps-and-regress.md").read_text()
    blocks = [b.split("```", 1)[0] for b in text.split("```python\n")[1:]]
    runnable = [b for b in blocks if "gap_by_kind" in b]
    assert runnable
    monkeypatch.chdir(ROOT)
    for block in runnable:
        exec(compile(block, "docs/sweeps-and-regress.md", "exec"), {})  # noqa: S102 - our own docs
