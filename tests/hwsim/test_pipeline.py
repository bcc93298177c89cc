"""The run pipeline: signatures, records sinks, streaming, reuse between runs, totals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import hwsim
from hwsim.engine import feed, replay, signatures
from hwsim.engine.machine import Machine
from hwsim.engine.simulate import run_trace
from hwsim.results import read_records_file, write_run
from workloads.registry import generate_trace

from ..conftest import ARCH

FIDELITIES = pytest.mark.parametrize("fidelity", ["event", "roofline"])


def small_decoder():
    """A few hundred ops with many repeated shapes (the case signatures are for)."""
    return generate_trace("deltanet2", "gdn2-1.3b", {"num_blocks": 2, "seq_len": 256, "tokens_per_step": 256}, seed=0)


def mixed_rows(n=90):
    rows = []
    for i in range(n):
        stream = ("compute", "copy", "aux")[i % 3]
        row = {"op_id": i, "stream": stream, "deps": str(i - 5) if i >= 5 and i % 4 == 0 else ""}
        if stream == "copy":
            row.update(kind="transfer", src="kv_bank", dst="kv_window", bytes_read=1000 + 37 * (i % 7))
        elif stream == "aux":
            row.update(kind="vector", flops=1000 * (i % 5), elements=10, src="act", bytes_read=64 * (i % 3))
        else:
            row.update(kind="gemm", m=16 + i % 4, n=32, k=48, src="weights", bytes_read=3072)
        rows.append(row)
    return rows


@FIDELITIES
def test_costs_per_signature_equal_costs_per_op(fidelity):
    machine = hwsim.load_arch(ARCH / "h100-sxm.yaml")
    for trace in (small_decoder(), hwsim.Trace.from_ops(mixed_rows())):
        deduplicated = hwsim.simulate(machine, trace, fidelity=fidelity, allow_overflow=True)
        # Batches of SMALL_BATCH rows are never deduplicated: every op is costed on its own.
        per_op = hwsim.simulate(machine, trace, fidelity=fidelity, allow_overflow=True,
                                batch_rows=signatures.SMALL_BATCH)
        pd.testing.assert_frame_equal(deduplicated.records, per_op.records)
        assert deduplicated.summary == per_op.summary


def test_a_hash_collision_falls_back_to_exact_grouping(monkeypatch, tiny):
    trace_rows = mixed_rows()
    expected = hwsim.simulate(tiny, hwsim.Trace.from_ops(trace_rows))
    monkeypatch.setattr(signatures, "_row_hashes", lambda columns, constant: np.zeros(
        len(next(iter(columns.values()))), dtype=np.uint64))
    collided = hwsim.simulate(tiny, hwsim.Trace.from_ops(trace_rows))
    pd.testing.assert_frame_equal(collided.records, expected.records)


@FIDELITIES
def test_records_streamed_to_parquet_equal_records_in_memory(tmp_path, tiny, fidelity):
    path = hwsim.write_trace(hwsim.Trace.from_ops(mixed_rows()), tmp_path / "t.parquet", row_group_rows=20)
    in_memory = hwsim.simulate(tiny, hwsim.read_trace(path), fidelity=fidelity)
    streamed = hwsim.simulate(tiny, hwsim.read_trace(path), fidelity=fidelity, records=tmp_path / "r.parquet")
    assert streamed.records_file == tmp_path / "r.parquet"
    pd.testing.assert_frame_equal(read_records_file(tmp_path / "r.parquet"), in_memory.records)
    pd.testing.assert_frame_equal(streamed.records, in_memory.records)   # read back when asked for
    assert streamed.summary == in_memory.summary


def test_a_one_batch_records_file_is_the_one_write_run_writes(tmp_path, tiny):
    trace = hwsim.Trace.from_ops(mixed_rows())
    write_run(hwsim.simulate(tiny, trace), tmp_path / "memory")
    write_run(hwsim.simulate(tiny, trace, records=tmp_path / "streamed" / "records.parquet"), tmp_path / "streamed")
    for name in ("records.parquet", "summary.json", "machine.resolved.yaml", "trace_meta.json"):
        assert (tmp_path / "memory" / name).read_bytes() == (tmp_path / "streamed" / name).read_bytes(), name


def test_a_run_without_records_keeps_only_its_summary(tiny):
    trace = hwsim.Trace.from_ops(mixed_rows())
    summary_only = hwsim.simulate(tiny, trace, records=False)
    assert summary_only.records is None
    assert summary_only.summary == hwsim.simulate(tiny, trace).summary


def test_a_failed_run_leaves_no_records_file(tmp_path, tiny):
    rows = [{"op_id": 0, "kind": "alloc", "dst": "weights", "bytes_written": 2**40}]
    with pytest.raises(hwsim.CapacityError):
        hwsim.simulate(tiny, hwsim.Trace.from_ops(rows), records=tmp_path / "r.parquet")
    assert not list(tmp_path.iterdir())


def test_a_finished_short_stream_does_not_load_the_rest_of_the_trace(tmp_path, tiny, monkeypatch):
    # Stream "short" has one op, at the top; stream "long" has 200 ops in row groups of 10.
    rows = [{"op_id": 0, "kind": "vector", "stream": "short", "flops": 128}]
    rows += [{"op_id": i, "kind": "vector", "stream": "long", "flops": 128 * 50} for i in range(1, 201)]
    path = hwsim.write_trace(hwsim.Trace.from_ops(rows), tmp_path / "t.parquet", row_group_rows=10)
    open_batches = []
    real = replay.EventReplay._load_next

    def load(self):
        loaded = real(self)
        open_batches.append(len(self._open))
        return loaded

    monkeypatch.setattr(replay.EventReplay, "_load_next", load)
    result = hwsim.simulate(tiny, hwsim.read_trace(path))
    assert result.summary["ops"] == 201
    assert max(open_batches) <= 2


def test_a_second_run_of_a_trace_reuses_its_signatures(tiny, monkeypatch):
    trace = hwsim.Trace.from_ops(mixed_rows())
    hashed = []
    real = signatures.SignatureTable.add
    monkeypatch.setattr(signatures.SignatureTable, "add", lambda self, ops: hashed.append(len(ops)) or real(self, ops))
    first = hwsim.simulate(tiny, trace)
    slower = hwsim.load_arch(ARCH / "tiny.yaml", overrides={"components.hbm.bandwidth": "16 GB/s"})
    second = hwsim.simulate(slower, trace)
    assert len(hashed) == 1
    assert second.summary["total_cycles"] > first.summary["total_cycles"]
    fresh = hwsim.simulate(slower, hwsim.Trace.from_ops(mixed_rows()))
    pd.testing.assert_frame_equal(second.records, fresh.records)


@FIDELITIES
def test_reused_host_launch_times_follow_the_host(fidelity):
    host = {"kind": "host_runtime", "launch_overhead": "20 ns", "step_overhead": "100 ns"}
    rows = [{**row, "step": row["op_id"] // 10} for row in mixed_rows()]
    trace = hwsim.Trace.from_ops(rows)
    results = {}
    for launch in ("20 ns", "20 ns", "50 ns"):
        machine = hwsim.load_arch(ARCH / "tiny.yaml", overrides={"components.host": {**host, "launch_overhead": launch}})
        reused = hwsim.simulate(machine, trace, fidelity=fidelity)
        fresh = hwsim.simulate(machine, hwsim.Trace.from_ops(rows), fidelity=fidelity)
        pd.testing.assert_frame_equal(reused.records, fresh.records)
        results[launch] = reused.summary["total_cycles"]
    assert results["50 ns"] > results["20 ns"]


def test_the_index_of_a_trace_goes_with_the_trace(tiny):
    trace = hwsim.Trace.from_ops(mixed_rows())
    hwsim.simulate(tiny, trace)
    assert trace in feed._INDEXES
    del trace
    import gc
    gc.collect()
    assert len([t for t in feed._INDEXES if t.source == "ops" and len(t) == 90]) == 0


@FIDELITIES
def test_the_summary_agrees_with_its_records(fidelity):
    machine = hwsim.load_arch(ARCH / "h200.yaml")
    result = hwsim.simulate(machine, small_decoder(), fidelity=fidelity, allow_overflow=True)
    records, summary = result.records, result.summary
    assert summary["ops"] == len(records)
    assert summary["total_cycles"] == records["end_cycle"].max()
    for name, unit in summary["units"].items():
        mine = records[records["component"] == name]
        assert unit["ops"] == len(mine)
        assert unit["flops"] == mine["flops"].sum()
        assert unit["busy_cycles"] == (mine["end_cycle"] - mine["start_cycle"]).sum()
    for name, tier in summary["tiers"].items():
        assert tier["bytes"] == records[f"bytes_{name}"].sum()
    by_kind = records.groupby("kind", observed=True)["energy_pj"].sum()
    for kind, value in summary["energy"]["by_kind_pj"].items():
        assert value == pytest.approx(by_kind[kind], rel=1e-12)
    assert summary["energy"]["dynamic_pj"] == pytest.approx(records["energy_pj"].sum(), rel=1e-12)


def test_an_unknown_fidelity_is_an_error(tiny, tiny_trace):
    with pytest.raises(hwsim.ConfigError, match="fidelity 'fast': expected one of event, roofline"):
        run_trace(tiny, tiny_trace, fidelity="fast")


def assert_compiled_equals_python(monkeypatch, machine, trace, batch_rows):
    """The event replay of ``trace`` gives the same records and summary with the compiled
    kernel as with the Python loop."""
    from hwsim.engine import replay_kernel

    results = {}
    for compiled in (False, True):
        monkeypatch.setattr(replay_kernel, "COMPILED_FROM_OPS", 0 if compiled else 10**12)
        results[compiled] = hwsim.simulate(machine, trace, allow_overflow=True, batch_rows=batch_rows)
    pd.testing.assert_frame_equal(results[True].records, results[False].records)
    assert results[True].summary == results[False].summary


@pytest.mark.parametrize("with_host", [False, True])
def test_the_compiled_replay_equals_the_python_replay(monkeypatch, with_host):
    overrides = {"components.host": {"kind": "host_runtime", "launch_overhead": "9 ns", "step_overhead": "40 ns"}}
    machines = [hwsim.load_arch(ARCH / name, overrides=overrides if with_host else {})
                for name in ("tiny.yaml", "h100-sxm.yaml", "worldkv-asic.yaml")]
    rng = np.random.default_rng(2)
    rows = mixed_rows(300)
    for row in rows:
        row["stream"] = f"s{rng.integers(4)}"
        row["step"] = row["op_id"] // 25
        if row["op_id"] > 10 and rng.random() < 0.3:
            row["deps"] = ";".join(map(str, sorted(set(rng.integers(0, row["op_id"], 2).tolist()))))
    rows.insert(150, {"op_id": 1000, "kind": "sync", "stream": "s0", "deps": "140"})
    for machine in machines:
        for trace in (hwsim.Trace.from_ops(rows), small_decoder()):
            assert_compiled_equals_python(monkeypatch, machine, trace, batch_rows=64)


def test_the_compiled_replay_equals_the_python_replay_on_a_node_with_collectives(monkeypatch):
    rng = np.random.default_rng(5)
    rows = []
    for i in range(400):
        stream = f"s{rng.integers(4)}"
        if rng.random() < 0.25:   # a collective of the node or of half of it
            row = {"kind": str(rng.choice(["all_reduce", "all_gather", "reduce_scatter"])),
                   "bytes_read": int(rng.integers(2**16, 2**24)), "device": str(rng.choice(["0-7", "0-3", "4-7"]))}
        else:   # a GEMM on one device or on every device of a group
            row = {"kind": "gemm", "m": int(rng.integers(64, 2048)), "n": 1024, "k": 1024,
                   "src": "weights", "bytes_read": 2**21, "device": str(rng.choice(["0", "3", "0-7", "4-7"]))}
        if i > 10 and rng.random() < 0.3:
            row["deps"] = ";".join(map(str, sorted(set(rng.integers(0, i, 2).tolist()))))
        rows.append({"op_id": i, "stream": stream, **row})
    assert_compiled_equals_python(monkeypatch, hwsim.load_arch("hgx-h100"), hwsim.Trace.from_ops(rows), batch_rows=96)


@FIDELITIES
def test_a_trace_of_distinct_ops_is_costed_op_by_op_with_the_same_result(monkeypatch, fidelity):
    rows = [{**row, "op_id": i, "bytes_read": 100 + i, "deps": ""} for i, row in
            enumerate(mixed_rows(6000))]
    machine = hwsim.load_arch(ARCH / "h100-sxm.yaml")
    results = {}
    for share in (1.0, 0.0):
        monkeypatch.setattr(feed, "IDENTITY_SHARE", share)
        trace = hwsim.Trace.from_ops(rows)
        results[share] = hwsim.simulate(machine, trace, fidelity=fidelity, allow_overflow=True, batch_rows=2500)
        assert feed.trace_index(trace, 2500).identity == (share == 0.0)
    pd.testing.assert_frame_equal(results[0.0].records, results[1.0].records)
    assert results[0.0].summary == results[1.0].summary


def test_records_written_as_the_run_goes_are_checked_like_records_in_memory(tmp_path):
    from hwsim.engine.records import ParquetRecords
    from hwsim.errors import ResultError

    result = hwsim.simulate(hwsim.load_arch(ARCH / "tiny.yaml"), hwsim.Trace.from_ops(mixed_rows(30)))
    records = result.records.copy()
    records.loc[records.index[3], "energy_pj"] = float("inf")
    op = records["op_id"].iat[3]
    writer = ParquetRecords(tmp_path / "r.parquet")
    columns = {name: records[name].to_numpy() for name in records.columns if records[name].dtype.kind in "fiu"}
    with pytest.raises(ResultError, match=f"records column 'energy_pj' of op {op} is inf"):
        writer.add(columns, {})
    writer.abort()
    assert not (tmp_path / "r.parquet").exists()
    result._records = records
    with pytest.raises(ResultError, match=f"records column 'energy_pj' of op {op} is inf"):
        write_run(result, tmp_path / "run")
    assert not (tmp_path / "run").exists()


# Machines one in-memory trace runs on in turn: the same layout with other numbers, then other
# layouts (a space placed elsewhere, a unit's home tier, an explicit dispatch, a DMA engine).
LAYOUT_VARIANTS = [
    {},
    {"components.hbm.bandwidth": "16 GB/s", "components.link.latency": "40 ns"},
    {"components.dram.energy_per_bit": "7 pJ/bit", "components.tensor.num_units": 2},
    {"placement.kv_bank": "hbm"},
    {"components.vector.memory": "dram"},
    {"dispatch.gemm": "tensor"},
    {"components.dma": {"kind": "dma_engine", "bandwidth": "4 GB/s", "count": 2, "memory": "hbm", "setup_latency": "30 ns"}},
    {"components.hbm.bandwidth": "32 GB/s"},
]


@pytest.mark.parametrize("order", [1, -1])
def test_costs_reused_across_machines_equal_costs_on_a_fresh_trace(order):
    trace = hwsim.Trace.from_ops(mixed_rows())
    for overrides in LAYOUT_VARIANTS[::order]:
        machine = hwsim.load_arch(ARCH / "tiny.yaml", overrides=overrides)
        reused = hwsim.simulate(machine, trace, fidelity="roofline")
        fresh = hwsim.simulate(machine, hwsim.Trace.from_ops(mixed_rows()), fidelity="roofline")
        pd.testing.assert_frame_equal(reused.records, fresh.records)
        assert reused.summary == fresh.summary


def test_the_layout_key_changes_with_the_structure_and_not_with_the_numbers():
    keys = [Machine(hwsim.load_arch(ARCH / "tiny.yaml", overrides=o)).layout_key for o in LAYOUT_VARIANTS]
    assert keys[0] == keys[1] == keys[2] == keys[7]
    assert len({keys[0], *keys[3:7]}) == 5
    moved = Machine(hwsim.load_arch(ARCH / "tiny.yaml")).with_moved_spaces({(0, "act"): "dram"})
    assert moved.layout_key != keys[0]


@pytest.mark.parametrize("arch", ["tiny.yaml", "h100-sxm.yaml", "gdn-decode-asic.yaml"])
def test_channels_costed_for_every_op_group_at_once_equal_each_op_costed_alone(arch):
    # The cost pass costs all the rows crossing a channel in one role in one call; alone,
    # an op is its own group and its own call.
    from hwsim.engine.costs import batch_costs

    machine = Machine(hwsim.load_arch(ARCH / arch))
    trace = small_decoder() if arch == "gdn-decode-asic.yaml" else hwsim.Trace.from_ops(mixed_rows())
    ops = trace.columns()
    together = batch_costs(machine, ops)
    alone = [batch_costs(machine, ops.take(np.array([i]))) for i in range(len(ops))]
    assert len({int(c) for c in together.component}) > 1
    for name in ("bytes", "busy", "energy"):
        np.testing.assert_array_equal(getattr(together, name), np.vstack([getattr(one, name) for one in alone]))
    for name in ("latency", "duration", "energy_pj"):
        np.testing.assert_array_equal(getattr(together, name), np.concatenate([getattr(one, name) for one in alone]))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(-1, 6), max_size=200))
def test_rows_grouped_by_value_are_the_rows_of_each_value_in_order(values):
    from hwsim.engine.costs import _rows_by_value

    array = np.array(values, dtype=np.int64)
    expected = [(v, np.flatnonzero(array == v)) for v in range(7) if (array == v).any()]
    got = _rows_by_value(array, 7)
    assert [v for v, _ in got] == [v for v, _ in expected]
    for (_, rows), (_, want) in zip(got, expected, strict=True):
        np.testing.assert_array_equal(rows, want)


@pytest.mark.parametrize("size", [10, 10**7])   # counted, and hashed (a sparse key space)
def test_a_lookup_per_distinct_key_spreads_over_the_rows_and_the_first_bad_row_raises(size):
    from hwsim.engine.costs import _per_distinct
    from hwsim.errors import TraceError

    keys = np.array([7, 3, 3, 9, 7, 0, 9], dtype=np.int64)
    calls = []
    out = _per_distinct(keys, size, lambda k, first: calls.append(k) or 100 + k)
    np.testing.assert_array_equal(out, keys + 100)
    assert sorted(calls) == [0, 3, 7, 9]                 # once per distinct key

    def look(k, first):
        if k in (9, 3):                                   # rows 3 and 1: row 1 comes first
            raise TraceError(f"row {first()}")
        return k
    with pytest.raises(TraceError, match="row 1"):
        _per_distinct(keys, size, look)
