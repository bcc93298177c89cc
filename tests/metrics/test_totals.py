"""`RunTotals`' per-group sums and per-tier peak occupancy against brute-force counts made
one op at a time on random inputs."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim.metrics.totals import RunTotals, _group_sum

TIERS = ["hbm", "dram", "sram"]


@st.composite
def moves(draw):
    """Batches of alloc (+) and free (-) moves: start cycles with ties, op ids, tiers, bytes."""
    batches = []
    op_id = 0
    for _ in range(draw(st.integers(1, 3))):
        n = draw(st.integers(1, 12))
        start = draw(st.lists(st.integers(0, 5), min_size=n, max_size=n))
        tier = draw(st.lists(st.integers(0, len(TIERS) - 1), min_size=n, max_size=n))
        delta = draw(st.lists(st.integers(-2**40, 2**40), min_size=n, max_size=n))
        batches.append((start, list(range(op_id, op_id + n)), tier, delta))
        op_id += n
    return batches


@settings(max_examples=200, deadline=None)
@given(moves())
def test_peak_occupancy_is_the_largest_running_total_in_time_order(batches):
    totals = RunTotals(["unit"], [], TIERS)
    for start, op_id, tier, delta in batches:
        totals.add_moves(np.array(start), np.array(op_id), np.array(tier), np.array(delta))
    every = sorted((s, o, t, d) for b in batches for s, o, t, d in zip(*b, strict=True))   # (start, op id) order
    expected = {}
    for t, name in enumerate(TIERS):
        running, peak, seen = 0, 0, False
        for _, _, tier, delta in every:
            if tier == t:
                running += delta
                peak, seen = max(peak, running), True
        if seen:
            expected[name] = float(peak)
    assert totals.peak_occupancy() == expected


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.integers(-2**50, 2**50)), max_size=40))
def test_group_sums_are_exact_integer_sums(pairs):
    groups = np.array([g for g, _ in pairs], dtype=np.int64)
    values = np.array([v for _, v in pairs], dtype=np.int64)
    expected = [sum(v for g, v in pairs if g == k) for k in range(5)]
    assert _group_sum(groups, values, 5).tolist() == expected


def _energy_run(compute_pj: list[float], channel_pj: list[float]) -> RunTotals:
    """Two groups (3 and 5 ops) of kinds gemm and copy on units a and b, each crossing hbm."""
    totals = RunTotals(["a", "b"], ["hbm"], ["hbm"])
    counts = np.array([3, 5])
    cells = (np.array([0, 1]), np.array([0, 0]), np.array([10, 20]), np.array([1, 2]), np.array(channel_pj))
    totals.add_groups(counts, np.array([0, 1]), np.array([0, 1]), ["gemm", "copy"], np.array([7, 0]),
                      np.array(compute_pj), np.array(compute_pj) + np.array(channel_pj), cells)
    return totals


def test_energy_totals_of_a_repeated_run_are_its_own_and_change_with_any_energy():
    """The second run of the same batches takes the first one's totals; a run that differs
    in one energy gets totals of its own, both equal to the sums counted by hand."""
    def by_hand(compute_pj, channel_pj):
        a, b = 3 * compute_pj[0], 5 * compute_pj[1]
        hbm = 3 * channel_pj[0] + 5 * channel_pj[1]
        return ({"a": a, "b": b, "hbm": hbm}, {"gemm": a + 3 * channel_pj[0], "copy": b + 5 * channel_pj[1]},
                a + b + hbm)

    for compute_pj, channel_pj in [([1.5, 2.25], [0.5, 0.75]), ([1.5, 2.25], [0.5, 0.75]), ([1.5, 2.25], [0.5, 1.75])]:
        assert _energy_run(compute_pj, channel_pj).energy_totals() == by_hand(compute_pj, channel_pj)
    first, again = _energy_run([1.0, 2.0], [3.0, 4.0]), _energy_run([1.0, 2.0], [3.0, 4.0])
    totals = first.energy_totals()
    totals[0]["a"] = -1.0   # a caller's edit does not reach the next run's totals
    assert again.energy_totals()[0]["a"] == 3.0
