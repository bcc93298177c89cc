"""Bounded in-process memo tables: what a run or a sweep point derives once and the next one
reuses. Each table keeps its last ``size`` entries; the oldest goes first.

:class:`ByIdentity` keys values by an object's identity. The points of a sweep share every
component config their values do not change (configs are frozen dataclasses, built once
per distinct block), so what is derived from a config alone (its plain form, its ``repr``,
its digest) is derived once. Configs hold dicts, so they are not hashable; their identity
is the key, and each entry keeps its object alive so that the identity stays its own.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any


def remember(table: dict, key: Hashable, value: Any, size: int) -> Any:
    """Store ``table[key] = value``, first dropping the oldest entries beyond ``size - 1``;
    returns ``value``."""
    while len(table) >= size:
        table.pop(next(iter(table)))
    table[key] = value
    return value


class ByIdentity:
    """``compute(obj)`` remembered per object, for the last ``size`` objects."""

    def __init__(self, size: int = 1024) -> None:
        self.size = size
        self._entries: dict[int, tuple[Any, Any]] = {}

    def get(self, obj: Any, compute: Callable[[Any], Any]) -> Any:
        entry = self._entries.get(id(obj))
        if entry is None or entry[0] is not obj:
            entry = remember(self._entries, id(obj), (obj, compute(obj)), self.size)
        return entry[1]
