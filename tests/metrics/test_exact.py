"""Exact sums: equal to the rational sum rounded once, whatever the batches and the order."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim.metrics.exact import ExactSums, exact_sum

finite = st.floats(allow_nan=False, allow_infinity=False, width=64)


def rational(values, counts):
    exact = sum(Fraction(v) * int(c) for v, c in zip(values, counts, strict=True))
    try:
        return float(exact)
    except OverflowError:
        return math.inf if exact > 0 else -math.inf


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(finite, st.integers(1, 10**6)), min_size=1, max_size=40))
def test_exact_sum_is_the_rational_sum_rounded_once(pairs):
    values = np.array([v for v, _ in pairs])
    counts = np.array([c for _, c in pairs])
    assert exact_sum(values, counts) == rational(values.tolist(), counts.tolist())


@settings(max_examples=100, deadline=None)
@given(st.lists(finite, min_size=2, max_size=60), st.integers(1, 59), st.randoms())
def test_batches_and_order_do_not_change_a_total(values, cut, rnd):
    values = np.array(values)
    whole = ExactSums()
    whole.add(np.zeros(len(values), dtype=np.int64), values)
    shuffled = values.copy()
    rnd.shuffle(shuffled)
    parts = ExactSums()
    cut = min(cut, len(values) - 1)
    parts.add(np.zeros(cut, dtype=np.int64), shuffled[:cut])
    parts.add(np.zeros(len(values) - cut, dtype=np.int64), shuffled[cut:])
    assert whole.totals() == parts.totals()


def test_totals_over_several_labels_round_once():
    sums = ExactSums()
    a, b = sums.label_codes(["a", "b"])
    sums.add(np.array([a, b, b]), np.array([1.0, 2.0**-53, 2.0**-53]))
    # In floating point, 1 + 2**-53 rounds back to 1 twice over; exactly it is 1 + 2**-52.
    assert (1.0 + 2.0**-53) + 2.0**-53 == 1.0
    assert sums.total(["a", "b"]) == 1.0 + 2.0**-52
    assert sums.total(["b"]) == 2.0**-52 and sums.total(["missing"]) == 0.0


def test_subnormals_and_signs_are_exact():
    values = np.array([5e-324, -1e-310, 2.5e-320, 1e-300, -1e-300])
    assert exact_sum(values) == rational(values.tolist(), [1] * len(values))


def test_non_finite_values_give_the_float_sum():
    assert exact_sum(np.array([1.0, np.inf])) == np.inf
    assert np.isnan(exact_sum(np.array([np.inf, -np.inf])))


def test_many_values_take_the_vectorised_path_and_stay_exact():
    rng = np.random.default_rng(8)
    values = rng.random(5000) * 10.0 ** rng.integers(-20, 20, 5000) * rng.choice([-1.0, 1.0], 5000)
    counts = rng.integers(1, 1000, 5000)
    assert exact_sum(values, counts) == rational(values.tolist(), counts.tolist())
    sums = ExactSums()
    codes = rng.integers(0, 3, 5000)
    for label in range(3):
        sums.label_code(label)
    sums.add(codes, values, counts)
    for label in range(3):
        mine = codes == label
        assert sums.total([label]) == rational(values[mine].tolist(), counts[mine].tolist())


@settings(max_examples=2000, deadline=None)
@given(st.integers(min_value=-(1 << 2300), max_value=1 << 2300), st.integers(min_value=0, max_value=1200))
def test_a_scaled_sum_rounds_to_the_float_the_exact_division_gives(value, shift):
    from hwsim.metrics.exact import BIAS, scaled_to_float

    for v in (value, value << shift, (value | 1) << shift):   # the last: ties and sticky bits
        try:
            expected = v / (1 << BIAS)
        except OverflowError:
            expected = math.inf if v > 0 else -math.inf
        assert scaled_to_float(v) == expected


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(finite, st.integers(1, 1000), st.integers(0, 3)), min_size=1, max_size=80),
       st.integers(1, 4))
def test_a_batch_added_again_adds_the_same_exact_sums(rows, repeats):
    values = np.array([v for v, _, _ in rows])
    counts = np.array([c for _, c, _ in rows])
    codes = np.array([k for _, _, k in rows])
    once, again = ExactSums(), ExactSums()
    for sums in (once, again):
        for label in range(4):
            sums.label_code(label)
    once.add(codes, values, counts)   # the first time: computed, and remembered
    for _ in range(repeats):
        again.add(codes, values, counts)   # looked up
    for label in range(4):
        mine = codes == label
        assert once.total([label]) == rational(values[mine].tolist(), counts[mine].tolist())
        assert again.total([label]) == rational(values[mine].tolist(), (counts[mine] * repeats).tolist())


def test_a_remembered_batch_keeps_its_non_finite_values():
    sums = ExactSums()
    code = sums.label_code("x")
    for _ in range(2):
        sums.add(np.full(3, code), np.array([1.0, np.inf, 2.0]))
    assert sums.total(["x"]) == np.inf


def test_the_history_names_the_batches_added_and_stops_at_its_limit():
    from hwsim.metrics.exact import HISTORY_MAX, ExactSums

    def summed(batches):
        sums = ExactSums()
        code = sums.label_code("x")
        for values in batches:
            sums.add(np.full(len(values), code), np.array(values, dtype=np.float64))
        return sums

    assert summed([[1.0, 2.0], [3.0]]).history() == summed([[1.0, 2.0], [3.0]]).history()
    assert summed([[1.0, 2.0], [3.0]]).history() != summed([[1.0, 2.0], [4.0]]).history()
    assert summed([[1.0]] * HISTORY_MAX).history() is not None
    assert summed([[1.0]] * (HISTORY_MAX + 1)).history() is None
