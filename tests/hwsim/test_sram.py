"""Banked SRAM: the bank-conflict model against brute-force counts on small banks."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

import hwsim
from hwsim.components.sram import conflict_factor, expected_max_load

from ..conftest import ARCH


def busiest_bank_factor(banks: list[int], num_banks: int) -> float:
    """Cycles of the most-loaded bank relative to a perfectly spread access."""
    loads = [0] * num_banks
    for bank in banks:
        loads[bank] += 1
    return max(loads) / (len(banks) / num_banks)


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 6])
def test_expected_max_load_equals_enumeration_of_every_assignment(n):
    total = sum(max(map(list(assignment).count, range(n))) for assignment in itertools.product(range(n), repeat=n))
    assert expected_max_load(n) == pytest.approx(total / n**n, rel=1e-12)


STRIDED = [(b, s, w) for b in (4, 8, 16) for s in range(1, 19) for w in (1, 2, 3, 4) if w <= s]


@pytest.mark.parametrize(("num_banks", "stride", "words"), STRIDED)
def test_strided_factor_equals_busiest_bank_count_over_a_long_access(num_banks, stride, words):
    banks = [(item * stride + j) % num_banks for item in range(num_banks * 16) for j in range(words)]
    expected = busiest_bank_factor(banks, num_banks)
    assert conflict_factor("strided", words * 4, stride * 4, num_banks, 4) == pytest.approx(expected)


def test_single_word_stride_costs_gcd_of_stride_and_banks():
    assert conflict_factor("strided", 4, 4 * 8, 32, 4) == 8
    assert conflict_factor("strided", 4, 4 * 7, 32, 4) == 1
    assert conflict_factor("strided", 4, 4 * 32, 32, 4) == 32


@pytest.mark.parametrize(("num_banks", "words"), [(4, 1), (8, 2), (16, 4), (8, 3), (16, 3), (32, 8)])
def test_random_factor_equals_enumerated_window_of_aligned_items(num_banks, words):
    slots = num_banks // (1 << (words - 1).bit_length())  # items padded to a power of two
    cycles = [max(map(list(a).count, range(slots))) for a in itertools.product(range(slots), repeat=slots)]
    expected = sum(cycles) / len(cycles)
    assert conflict_factor("random", words * 4, 0, num_banks, 4) == pytest.approx(expected)


def test_random_rows_wider_than_the_banks_pay_only_padding():
    assert conflict_factor("random", 64 * 4 * 3, 0, 64, 4) == 1.0
    assert conflict_factor("random", 70 * 4, 0, 64, 4) == pytest.approx(2 * 64 / 70)


def test_sequential_access_runs_at_full_bandwidth():
    assert conflict_factor("seq", 4, 0, 64, 4) == 1.0


def sram_machine(tmp_path, capacity="1 MiB", spill="hbm"):
    path = tmp_path / "m.yaml"
    path.write_text(f"""
name: s
clock: 1 GHz
components:
  vec: {{kind: vector_unit, lanes: 64, memory: sram}}
  sram: {{kind: sram, capacity: {capacity}, num_banks: 8, bank_width: 4 B, read_energy: 1 pJ,
          write_energy: 2 pJ, spill_to: {spill}}}
  hbm: {{kind: memory_tier, capacity: 1 GiB, bandwidth: 16 GB/s, energy_per_bit: 1 pJ/bit}}
  bus: {{kind: link, between: [sram, hbm], bandwidth: 16 GB/s}}
placement: {{default: sram, weights: hbm}}
""")
    return hwsim.load_arch(path)


def test_random_gather_from_sram_is_slower_by_the_conflict_factor(tmp_path):
    machine = sram_machine(tmp_path)
    # 32768 single-word (4 B) items: 128 KiB at 32 B/cycle = 4096 cycles to read, and as
    # many to write the gathered copy, both on the one SRAM.
    rows = [{"op_id": 0, "kind": "gather", "unit": "vec", "src": "act", "dst": "act", "bytes_read": 4 * 32768,
             "elements": 32768, "access": access} for access in ("seq", "random")]
    seq = hwsim.simulate(machine, hwsim.Trace.from_ops(rows[:1])).summary["total_cycles"]
    rnd = hwsim.simulate(machine, hwsim.Trace.from_ops(rows[1:])).summary["total_cycles"]
    assert seq == 4096 * 2
    assert rnd == math.ceil(4096 * expected_max_load(8)) + 4096


def test_sram_energy_is_per_bank_access(tmp_path):
    machine = sram_machine(tmp_path)
    row = {"op_id": 0, "kind": "vector", "flops": 0, "src": "act", "bytes_read": 400, "dst": "act", "bytes_written": 40}
    result = hwsim.simulate(machine, hwsim.Trace.from_ops([row]))
    assert result.records["energy_pj"].iat[0] == pytest.approx(100 * 1 + 10 * 2)


def test_working_set_larger_than_sram_spills_to_the_next_tier(tmp_path):
    machine = sram_machine(tmp_path, capacity="1 MiB")
    rows = [{"op_id": 0, "kind": "alloc", "dst": "act", "bytes_written": 512 * 1024},
            {"op_id": 1, "kind": "alloc", "dst": "state", "bytes_written": 768 * 1024},
            {"op_id": 2, "kind": "state_update", "flops": 64, "src": "state", "bytes_read": 1024,
             "dst": "state", "bytes_written": 1024}]
    result = hwsim.simulate(machine, hwsim.Trace.from_ops(rows))
    assert result.summary["spills"] == {"state": {"from": "sram", "to": "hbm", "peak_bytes": 768 * 1024,
                                                  "free_bytes": 512 * 1024}}
    update = result.records.iloc[2]
    assert update["bytes_hbm"] == 2048 and update["bytes_bus"] == 2048 and update["bytes_sram"] == 0
    assert result.summary["tiers"]["hbm"]["peak_occupancy_bytes"] == 768 * 1024


def test_spill_to_must_name_another_tier(tmp_path):
    with pytest.raises(hwsim.ConfigError, match=r"components.sram.spill_to: 'hbn' is not another memory tier"):
        sram_machine(tmp_path, spill="hbn")


def test_num_banks_must_be_a_power_of_two():
    with pytest.raises(hwsim.ConfigError, match=r"components.sram.num_banks: must be a power of two, got 12"):
        hwsim.simulate(hwsim.load_arch(ARCH / "edge-npu.yaml", overrides={"components.sram.num_banks": 12}),
                       hwsim.Trace.from_ops([{"op_id": 0, "kind": "sync"}]))


@pytest.mark.parametrize("n", [1024, 4096])
def test_expected_max_load_of_many_banks_matches_a_monte_carlo_count(n):
    # The direct series overflowed here and gave 2.0 for any n >= 1024.
    rng = np.random.default_rng(n)
    loads = [np.bincount(rng.integers(0, n, n), minlength=n).max() for _ in range(4000)]
    mean, sem = float(np.mean(loads)), float(np.std(loads) / np.sqrt(len(loads)))
    assert abs(expected_max_load(n) - mean) < 5 * sem
    assert expected_max_load(n) > expected_max_load(n // 2)
