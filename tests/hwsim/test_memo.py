"""Bounded memo tables: values remembered per key or per object identity."""

from __future__ import annotations

from hwsim.memo import ByIdentity, remember


def test_a_value_is_computed_once_per_object_and_equal_objects_are_apart():
    calls = []
    cache = ByIdentity(size=2)
    a, b = {"x": 1}, {"x": 1}
    compute = lambda obj: calls.append(obj) or len(calls)  # noqa: E731
    assert cache.get(a, compute) == 1 and cache.get(a, compute) == 1
    assert cache.get(b, compute) == 2   # equal, not the same: its own value
    assert len(calls) == 2


def test_the_oldest_entry_goes_first_and_is_computed_again():
    calls = []
    cache = ByIdentity(size=2)
    objects = [[i] for i in range(3)]
    for obj in objects:
        cache.get(obj, lambda o: calls.append(o[0]) or o[0])
    assert cache.get(objects[0], lambda o: calls.append(o[0]) or o[0]) == 0
    assert calls == [0, 1, 2, 0]


def test_a_table_keeps_its_last_entries():
    table = {}
    for i in range(5):
        assert remember(table, f"k{i}", i, size=3) == i
    assert table == {"k2": 2, "k3": 3, "k4": 4}
