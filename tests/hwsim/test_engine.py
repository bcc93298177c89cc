"""Engine behaviour on the tiny machine, checked against hand arithmetic.

tiny: 1 GHz; hbm 64 B/cycle; dram 16 B/cycle; link 8 B/cycle per direction; all latencies 0;
tensor 2048 FLOP/cycle in 4 units with 32x32x32 tiles; vector 64 lanes x 2 FLOP.
"""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

import hwsim
from hwsim.engine.analytic import roofline
from hwsim.errors import CapacityError, TraceError

from ..conftest import ROOT

KB8 = 8192  # dram 512 cycles, link 1024 cycles, hbm 128 cycles


def transfer(op_id, stream="copy", src="kv_bank", dst="kv_window", nbytes=KB8, deps=""):
    return {"op_id": op_id, "stream": stream, "kind": "transfer", "src": src, "dst": dst,
            "bytes_read": nbytes, "deps": deps}


def run(machine, rows, **kw):
    return hwsim.simulate(machine, hwsim.Trace.from_ops(rows), **kw)


def test_one_transfer_is_limited_by_its_slowest_channel(tiny):
    result = run(tiny, [transfer(0)])
    assert result.summary["total_cycles"] == KB8 // 8
    rec = result.records.iloc[0]
    assert (rec["bytes_dram"], rec["bytes_link"], rec["bytes_hbm"]) == (KB8, KB8, KB8)
    assert rec["component"] == "link"


def test_two_transfers_over_one_link_take_twice_as_long(tiny):
    one = run(tiny, [transfer(0)]).summary["total_cycles"]
    two = run(tiny, [transfer(0, "a"), transfer(1, "b")])
    assert two.summary["total_cycles"] == 2 * one
    ends = sorted(two.records["end_cycle"])
    assert ends == [one, 2 * one]


def test_opposite_directions_of_a_link_overlap(tiny):
    both = run(tiny, [transfer(0, "a"), transfer(1, "b", src="kv_window", dst="kv_bank")])
    assert both.summary["total_cycles"] == KB8 // 8
    directions = both.summary["links"]["link"]["directions"]
    assert directions["dram->hbm"]["bytes"] == KB8 and directions["hbm->dram"]["bytes"] == KB8


def test_dependency_across_streams_delays_the_dependent(tiny):
    rows = [{"op_id": 0, "stream": "a", "kind": "vector", "flops": 128 * 1000},
            {"op_id": 1, "stream": "b", "kind": "vector", "flops": 128 * 10, "deps": "0", "unit": "vector"}]
    records = run(tiny, rows).records.set_index("op_id")
    assert records.loc[0, "end_cycle"] == 1000
    assert records.loc[1, "ready_cycle"] == 1000
    assert records.loc[1, "end_cycle"] == 1010


def test_copy_stream_overlaps_compute_stream(tiny):
    gemm = {"op_id": 0, "stream": "compute", "kind": "gemm", "m": 128, "n": 32, "k": 32}
    alone = run(tiny, [gemm]).summary["total_cycles"]
    both = run(tiny, [gemm, transfer(1)]).summary["total_cycles"]
    assert alone == 128
    assert both == max(alone, KB8 // 8)


def test_ops_on_one_unit_from_two_streams_serialise(tiny):
    a = {"op_id": 0, "stream": "a", "kind": "vector", "flops": 128 * 500}
    b = {"op_id": 1, "stream": "b", "kind": "vector", "flops": 128 * 500}
    result = run(tiny, [a, b])
    assert result.summary["total_cycles"] == 1000
    assert result.records.set_index("op_id").loc[1, "queue_cycles"] == 500


def test_compute_waits_for_memory_and_reports_stall(tiny):
    # 128 FLOP/cycle for 10 cycles of compute, but 6400 B from hbm take 100 cycles.
    row = {"op_id": 0, "kind": "vector", "flops": 1280, "src": "act", "bytes_read": 6400}
    rec = run(tiny, [row]).records.iloc[0]
    assert (rec["compute_cycles"], rec["end_cycle"], rec["stall_cycles"]) == (10, 100, 90)


def test_compute_reading_a_remote_tier_crosses_the_link_but_not_the_home_tier(tiny):
    row = {"op_id": 0, "kind": "vector", "flops": 128, "src": "kv_bank", "bytes_read": KB8}
    rec = run(tiny, [row]).records.iloc[0]
    assert (rec["bytes_dram"], rec["bytes_link"], rec["bytes_hbm"]) == (KB8, KB8, 0)
    assert rec["end_cycle"] == KB8 // 8


def test_matrix_engine_pays_for_a_partial_last_wave(tiny):
    full = {"op_id": 0, "kind": "gemm", "m": 128, "n": 32, "k": 32}   # 4 tiles = 1 wave of 4 units
    over = {"op_id": 0, "kind": "gemm", "m": 160, "n": 32, "k": 32}   # 5 tiles = 2 waves
    assert run(tiny, [full]).records["compute_cycles"].iat[0] == 128
    assert run(tiny, [over]).records["compute_cycles"].iat[0] == 256


def test_energy_is_bytes_times_energy_per_bit_along_the_path(tiny):
    result = run(tiny, [transfer(0)])
    expected = KB8 * 8 * (20 + 5 + 4)
    assert result.records["energy_pj"].iat[0] == pytest.approx(expected)
    assert result.summary["energy"]["by_component_pj"] == pytest.approx(
        {"dram": KB8 * 8 * 20, "link": KB8 * 8 * 5, "hbm": KB8 * 8 * 4})


def test_working_set_larger_than_a_tier_is_reported(tiny):
    rows = [{"op_id": 0, "kind": "alloc", "dst": "weights", "bytes_written": 2**30},
            {"op_id": 1, "kind": "alloc", "dst": "act", "bytes_written": 1, "deps": "0"}]
    with pytest.raises(CapacityError, match=r"does not fit \(hbm: peak .* > capacity"):
        run(tiny, rows)
    summary = run(tiny, rows, allow_overflow=True).summary
    assert summary["overflow"] == ["hbm"]
    assert summary["tiers"]["hbm"]["peak_occupancy_bytes"] == 2**30 + 1


def test_peak_occupancy_follows_alloc_and_free_in_time(tiny):
    rows = [{"op_id": 0, "kind": "alloc", "dst": "act", "bytes_written": 100},
            {"op_id": 1, "kind": "free", "src": "act", "bytes_read": 100, "deps": "0"},
            {"op_id": 2, "kind": "alloc", "dst": "act", "bytes_written": 60, "deps": "1"}]
    assert run(tiny, rows).summary["tiers"]["hbm"]["peak_occupancy_bytes"] == 100


def test_unplaced_space_names_row_and_column(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text("name: m\nclock: 1 GHz\ncomponents:\n  hbm: {kind: memory_tier, capacity: 1 GiB, "
                    "bandwidth: 1 TB/s}\n  vec: {kind: vector_unit, lanes: 4, memory: hbm}\n")
    machine = hwsim.load_arch(path)
    trace = hwsim.Trace.from_ops([{"op_id": 0, "kind": "sync"},
                                  {"op_id": 5, "kind": "vector", "src": "kv_bank", "bytes_read": 4}],
                                 source="t.csv")
    with pytest.raises(TraceError, match=r"t.csv: row 2 \(op_id 5\), column 'src': space 'kv_bank' is not placed"):
        hwsim.simulate(machine, trace)


def test_op_kind_without_a_unit_is_reported(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text("name: m\nclock: 1 GHz\ncomponents:\n  hbm: {kind: memory_tier, capacity: 1 GiB, "
                    "bandwidth: 1 TB/s}\n  sa: {kind: systolic_array, rows: 4, cols: 4, memory: hbm}\n")
    trace = hwsim.Trace.from_ops([{"op_id": 0, "kind": "topk", "elements": 10}])
    with pytest.raises(TraceError, match=r"row 1 \(op_id 0\), column 'kind': machine 'm' has no unit that runs 'topk'"):
        hwsim.simulate(hwsim.load_arch(path), trace)


def mixed_rows(n=60):
    rows = []
    for i in range(n):
        stream = ("compute", "copy", "aux")[i % 3]
        row = {"op_id": i, "stream": stream, "deps": str(i - 5) if i >= 5 and i % 4 == 0 else ""}
        if stream == "copy":
            row.update(kind="transfer", src="kv_bank", dst="kv_window", bytes_read=1000 + 37 * i)
        elif stream == "aux":
            row.update(kind="vector", flops=1000 * i, elements=10 * i, src="act", bytes_read=64 * i)
        else:
            row.update(kind="gemm", m=16 + i, n=32, k=48, src="weights", bytes_read=3072)
        rows.append(row)
    return rows


def test_streamed_parquet_replay_equals_in_memory_replay(tiny, tmp_path):
    trace = hwsim.Trace.from_ops(mixed_rows())
    path = hwsim.write_trace(trace, tmp_path / "t.parquet", row_group_rows=7)
    in_memory = hwsim.simulate(tiny, trace)
    streamed = hwsim.simulate(tiny, hwsim.read_trace(path), batch_rows=7)
    pd.testing.assert_frame_equal(in_memory.records, streamed.records)
    assert in_memory.summary == streamed.summary


def test_same_inputs_give_identical_records_and_summary(tiny):
    a = hwsim.simulate(tiny, hwsim.Trace.from_ops(mixed_rows()))
    b = hwsim.simulate(tiny, hwsim.Trace.from_ops(mixed_rows()))
    pd.testing.assert_frame_equal(a.records, b.records)
    assert a.summary == b.summary


def test_run_folders_are_byte_identical_across_processes(tmp_path):
    trace = hwsim.write_trace(hwsim.Trace.from_ops(mixed_rows()), tmp_path / "t.parquet")
    outs = []
    for i in range(2):
        out = tmp_path / f"run{i}"
        subprocess.run([sys.executable, "-m", "hwsim.cli.main", "run", "--arch",
                        str(ROOT / "arch_configs" / "tiny.yaml"), "--trace", str(trace), "--out", str(out),
                        "--quiet"], check=True, cwd=ROOT, env={"PYTHONHASHSEED": str(i), "PATH": "/usr/bin:/bin"})
        outs.append(out)
    for name in ("records.parquet", "summary.json", "machine.resolved.yaml", "trace_meta.json"):
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes(), name


def test_skinny_gemm_uses_a_narrow_tile(tiny):
    # m = 1 (decode): tile rows shrink to min_tile_m = 16, not the 32-row tile.
    machine = hwsim.load_arch(ROOT / "arch_configs" / "tiny.yaml", overrides={"components.tensor.min_tile_m": 8})
    rec = run(machine, [{"op_id": 0, "kind": "gemm", "m": 1, "n": 32 * 4, "k": 32}]).records.iloc[0]
    # 4 tiles of 8 x 32 (one wave on 4 units), each 2*8*32*32 FLOPs at 512 FLOP/cycle per unit
    assert rec["compute_cycles"] == 2 * 8 * 32 * 32 // 512


def test_op_overhead_is_paid_by_compute_bound_ops(tiny):
    machine = hwsim.load_arch(ROOT / "arch_configs" / "tiny.yaml", overrides={"components.vector.op_overhead": "50 ns"})
    rec = run(machine, [{"op_id": 0, "kind": "vector", "flops": 1280}]).records.iloc[0]
    assert rec["compute_cycles"] == 10
    assert rec["end_cycle"] - rec["start_cycle"] == 50 + 10


@pytest.mark.parametrize("fidelity", ["event", "roofline"])
def test_op_overhead_is_paid_by_memory_bound_ops(tiny, fidelity):
    # 6400 B through 64 B/cycle HBM = 100 cycles of traffic behind 2 cycles of compute: the
    # kernel's fixed 50 cycles come before its traffic as well as before its compute.
    machine = hwsim.load_arch(ROOT / "arch_configs" / "tiny.yaml", overrides={"components.vector.op_overhead": "50 ns"})
    rows = [{"op_id": 0, "kind": "vector", "flops": 256, "src": "act", "bytes_read": 6400},
            {"op_id": 1, "kind": "vector", "flops": 256, "src": "act", "bytes_read": 6400}]
    simulate = hwsim.simulate if fidelity == "event" else roofline
    records = simulate(machine, hwsim.Trace.from_ops(rows)).records
    assert records["end_cycle"].tolist() == [150, 300]


def test_copy_within_one_tier_reads_and_writes_it(tiny):
    # 6400 B read and 6400 B written through one 64 B/cycle tier: 200 cycles, not 100.
    rec = run(tiny, [transfer(0, src="act", dst="act", nbytes=6400)]).records.iloc[0]
    assert rec["end_cycle"] == 200
    assert rec["bytes_hbm"] == 2 * 6400


def test_tier_efficiency_scales_its_sustained_bandwidth(tiny):
    machine = hwsim.load_arch(ROOT / "arch_configs" / "tiny.yaml", overrides={"components.hbm.efficiency": 0.5})
    rec = run(machine, [{"op_id": 0, "kind": "vector", "flops": 2, "src": "act", "bytes_read": 6400}]).records.iloc[0]
    assert rec["end_cycle"] == 6400 // 32


def test_link_efficiency_is_set_per_direction(tiny):
    # 8 B/cycle per direction; 0.5 towards hbm, 0.25 towards dram.
    machine = hwsim.load_arch(ROOT / "arch_configs" / "tiny.yaml", overrides={
        "components.link.efficiency": 0.5, "components.link.efficiency_to": {"dram": 0.25}})
    records = run(machine, [transfer(0, "a"), transfer(1, "b", src="kv_window", dst="kv_bank")]).records
    assert records.set_index("op_id")["end_cycle"].to_dict() == {0: KB8 // 4, 1: KB8 // 2}


def test_link_efficiency_to_must_name_a_tier_it_joins(tiny):
    with pytest.raises(hwsim.ConfigError, match=r"link\.efficiency_to\.sram: not one of the tiers"):
        hwsim.simulate(hwsim.load_arch(ROOT / "arch_configs" / "tiny.yaml",
                                       overrides={"components.link.efficiency_to": {"sram": 0.5}}),
                       hwsim.Trace.from_ops([transfer(0)]))


def test_writes_are_charged_at_the_tiers_write_efficiency(tiny):
    # 6400 B read at 64 B/cycle and 6400 B written at half that: 100 + 200 cycles.
    machine = hwsim.load_arch(ROOT / "arch_configs" / "tiny.yaml", overrides={"components.hbm.write_efficiency": 0.5})
    rec = run(machine, [{"op_id": 0, "kind": "vector", "flops": 2, "src": "act", "bytes_read": 6400,
                         "dst": "act", "bytes_written": 6400}]).records.iloc[0]
    assert rec["end_cycle"] == 300


def ready_after_predecessors(records: pd.DataFrame, trace: hwsim.Trace) -> bool:
    """Every op became ready after the previous op of its stream and all its deps ended."""
    frame = trace.to_frame()
    end = dict(zip(records["op_id"], records["end_cycle"], strict=True))
    ready = dict(zip(records["op_id"], records["ready_cycle"], strict=True))
    last: dict[str, int] = {}
    for op_id, stream, deps in zip(frame["op_id"], frame["stream"].astype(str), frame["deps"], strict=True):
        waits = [end[int(d)] for d in deps.split(";") if d] + ([end[last[stream]]] if stream in last else [])
        if waits and ready[op_id] < max(waits):
            return False
        last[stream] = op_id
    return True


def test_streams_woken_by_one_op_all_wait_for_what_they_depend_on(tiny):
    # Streams s3 and s2 both wait for the gemm (op 1); s3 then runs op 2 ahead of the
    # simulation while s2, woken by the same event, still has to wait for op 2's end.
    ops = [{"op_id": 0, "stream": "s0", "kind": "alloc", "dst": "act", "bytes_written": 1},
           {"op_id": 1, "stream": "s0", "kind": "gemm", "m": 228, "n": 32, "k": 64, "src": "weights"},
           {"op_id": 2, "stream": "s3", "deps": "0;1", "kind": "vector", "flops": 129, "src": "state", "bytes_read": 1},
           {"op_id": 3, "stream": "s2", "deps": "1;2", "kind": "sync"},
           {"op_id": 4, "stream": "s0", "kind": "sync"},
           {"op_id": 5, "stream": "s2", "deps": "2;3", "kind": "sync"},
           {"op_id": 6, "stream": "s0", "kind": "sync"},
           {"op_id": 7, "stream": "s2", "deps": "2;3", "kind": "alloc", "dst": "act", "bytes_written": 1},
           {"op_id": 8, "stream": "s0", "kind": "gemm", "m": 178, "n": 32, "k": 64, "src": "weights", "bytes_read": 1},
           {"op_id": 9, "stream": "s3", "deps": "4", "kind": "vector", "flops": 129, "src": "state", "bytes_read": 1},
           {"op_id": 10, "stream": "s0", "kind": "vector", "flops": 129, "src": "state", "bytes_read": 1},
           {"op_id": 11, "stream": "s3", "kind": "state_update", "flops": 5000, "src": "state"},
           {"op_id": 12, "stream": "s3", "deps": "5;6", "kind": "sync"},
           {"op_id": 13, "stream": "s2", "kind": "transfer", "src": "kv_bank", "dst": "act", "bytes_read": 1}]
    trace = hwsim.Trace.from_ops(ops)
    records = run(tiny, ops).records.set_index("op_id")
    assert records.loc[3, "ready_cycle"] == records.loc[2, "end_cycle"] == 514
    assert ready_after_predecessors(run(tiny, ops).records, trace)


def test_a_stream_that_ran_ahead_keeps_its_clock_when_it_waits(tiny):
    # s1 runs op 6 ahead of the simulation (to cycle 3), then waits for op 2, which ends at
    # cycle 2: op 7 is ready when op 6 has ended, not when op 2 has.
    ops = [{"op_id": 0, "stream": "s2", "kind": "vector", "src": "state", "bytes_read": 1},
           {"op_id": 1, "stream": "s1", "kind": "vector", "deps": "0"},
           {"op_id": 2, "stream": "s0", "kind": "transfer", "src": "kv_bank", "dst": "act", "bytes_read": 1, "deps": "0"},
           {"op_id": 3, "stream": "s2", "kind": "gemm", "m": 1, "n": 32, "k": 64, "src": "weights"},
           {"op_id": 4, "stream": "s0", "kind": "gemm", "m": 1, "n": 32, "k": 64, "src": "weights"},
           {"op_id": 6, "stream": "s1", "kind": "vector", "flops": 129, "src": "state"},
           {"op_id": 7, "stream": "s1", "kind": "alloc", "dst": "act", "bytes_written": 1, "deps": "2"}]
    records = run(tiny, ops).records.set_index("op_id")
    assert records.loc[6, "end_cycle"] == 3
    assert records.loc[7, "ready_cycle"] == 3
