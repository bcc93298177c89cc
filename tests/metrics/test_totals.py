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
