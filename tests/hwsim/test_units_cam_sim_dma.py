"""CAM, similarity engine and DMA engines: timing, dispatch and energy on small machines."""

from __future__ import annotations

import math

import pytest

import hwsim


def machine(tmp_path, extra: str, placement: str = "{default: hbm, kv_bank: dram}"):
    path = tmp_path / "m.yaml"
    path.write_text(f"""
name: m
clock: 1 GHz
components:
  vec: {{kind: vector_unit, lanes: 16, memory: hbm, energy_per_flop: 1 pJ}}
{extra}
  hbm: {{kind: memory_tier, capacity: 1 GiB, bandwidth: 64 GB/s, energy_per_bit: 1 pJ/bit}}
  dram: {{kind: memory_tier, capacity: 8 GiB, bandwidth: 64 GB/s, energy_per_bit: 2 pJ/bit}}
  link: {{kind: link, between: [hbm, dram], bandwidth: 8 GB/s, energy_per_bit: 3 pJ/bit}}
placement: {placement}
""")
    return hwsim.load_arch(path)


CAM = ("  cam: {kind: cam_unit, entries: 4096, key_bits: 64, rows_per_cycle: 256, search_latency: 7 ns,"
       " search_energy_per_bit: 0.003 pJ, write_latency: 2 ns, write_energy_per_bit: 0.01 pJ, memory: hbm}")
SIM = "  sim: {kind: similarity_engine, lanes: 8, vector_width: 16, topk_per_cycle: 4, memory: hbm, energy_per_compare: 0.5 pJ}"
DMA = "  dma: {kind: dma_engine, count: 1, queue_depth: 2, bandwidth: 4 GB/s, setup_latency: 100 ns, memory: hbm, energy_per_bit: 1 pJ/bit}"


def run(m, rows):
    return hwsim.simulate(m, hwsim.Trace.from_ops(rows))


@pytest.mark.parametrize("entries", [256, 1024, 4096])
def test_cam_search_time_scales_with_entries_searched(tmp_path, entries):
    m = machine(tmp_path, CAM)
    rec = run(m, [{"op_id": 0, "kind": "cam_search", "elements": entries}]).records.iloc[0]
    assert rec["component"] == "cam"
    assert rec["compute_cycles"] == entries // 256 + 7


def test_cam_search_energy_is_entries_times_bits_times_energy_per_bit(tmp_path):
    m = machine(tmp_path, CAM)
    search = run(m, [{"op_id": 0, "kind": "cam_search", "elements": 1000, "k": 48}]).records.iloc[0]
    assert search["energy_pj"] == pytest.approx(1000 * 48 * 0.003)
    write = run(m, [{"op_id": 0, "kind": "cam_write", "elements": 10}]).records.iloc[0]
    assert write["compute_cycles"] == 10 * 2
    assert write["energy_pj"] == pytest.approx(10 * 64 * 0.01)


def test_cam_search_beyond_its_entries_is_rejected(tmp_path):
    m = machine(tmp_path, CAM)
    with pytest.raises(hwsim.TraceError, match=r"row 1 \(op_id 0\), column 'elements': more entries than 'cam' holds"):
        run(m, [{"op_id": 0, "kind": "cam_search", "elements": 5000}])


def test_cam_write_longer_than_int64_cycles_is_an_error_not_a_wrapped_count(tmp_path):
    from hwsim.errors import RangeOverflowError

    huge = CAM.replace("entries: 4096", "entries: 1000000000000").replace("write_latency: 2 ns", "write_latency: 1000 s")
    m = machine(tmp_path, huge)
    assert run(m, [{"op_id": 0, "kind": "cam_write", "elements": 3}]).records.iloc[0]["compute_cycles"] == 3 * 10**12
    with pytest.raises(RangeOverflowError, match=r"op 0 \(cam_write\)"):
        run(m, [{"op_id": 0, "kind": "cam_write", "elements": 10**11}])


def test_similarity_and_topk_run_on_the_similarity_engine_when_present(tmp_path):
    rows = [{"op_id": 0, "kind": "similarity", "elements": 1000, "k": 128, "flops": 1000 * 4 * 128},
            {"op_id": 1, "kind": "topk", "elements": 1000, "k": 16, "deps": "0"}]
    with_engine = run(machine(tmp_path, SIM), rows).records
    assert list(with_engine["component"]) == ["sim", "sim"]
    assert with_engine["compute_cycles"].iat[0] == math.ceil(1000 * 4 * 128 / (2 * 8 * 16))
    assert with_engine["compute_cycles"].iat[1] == 1000 // 4 + 4
    assert with_engine["energy_pj"].iat[1] == pytest.approx(1000 * 0.5)
    without = run(machine(tmp_path, ""), rows).records
    assert list(without["component"]) == ["vec", "vec"]
    assert without["compute_cycles"].iat[0] == math.ceil(1000 * 4 * 128 / (16 * 2))


def test_similarity_engine_throughput_is_lanes_times_width(tmp_path):
    m = machine(tmp_path, SIM)
    small = run(m, [{"op_id": 0, "kind": "similarity", "flops": 2 * 8 * 16 * 100}]).records
    large = run(m, [{"op_id": 0, "kind": "similarity", "flops": 2 * 8 * 16 * 1000}]).records
    assert (small["compute_cycles"].iat[0], large["compute_cycles"].iat[0]) == (100, 1000)


def test_transfer_runs_on_the_dma_engine_and_queues_on_its_bandwidth(tmp_path):
    m = machine(tmp_path, DMA)
    one = run(m, [{"op_id": 0, "kind": "transfer", "src": "act", "dst": "kv_bank", "bytes_read": 4000}],)
    rec = one.records.iloc[0]
    assert rec["component"] == "dma"
    # 4000 B: dma queue 1000 cycles (4 B/cycle) > link 500 > tiers 63; + 100 cycles setup.
    assert rec["end_cycle"] == 1000 + 100
    assert rec["bytes_dma"] == 4000 and rec["bytes_link"] == 4000
    assert rec["energy_pj"] == pytest.approx(4000 * 8 * (1 + 3 + 2 + 1))


def test_dma_queue_depth_overlaps_setup_but_shares_bandwidth(tmp_path):
    rows = [{"op_id": i, "stream": f"s{i}", "kind": "transfer", "src": "act", "dst": "act", "bytes_read": 400}
            for i in range(2)]
    deep = run(machine(tmp_path, DMA), rows).records
    # both descriptors start at 0; bytes queue: 100 cycles each on the DMA's 4 B/cycle
    assert sorted(deep["end_cycle"]) == [100 + 100, 200 + 100]
    shallow = run(machine(tmp_path, DMA.replace("queue_depth: 2", "queue_depth: 1")), rows).records
    assert sorted(shallow["start_cycle"]) == [0, 200]


def test_dma_copy_stream_overlaps_compute(tmp_path):
    m = machine(tmp_path, DMA)
    compute = {"op_id": 0, "stream": "compute", "kind": "vector", "flops": 32 * 1000}
    copy = {"op_id": 1, "stream": "copy", "kind": "transfer", "src": "kv_bank", "dst": "act", "bytes_read": 3600}
    both = run(m, [compute, copy]).summary["total_cycles"]
    assert both == max(1000, 900 + 100)
