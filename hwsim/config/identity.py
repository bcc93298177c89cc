"""Values computed once per object, looked up by the object's identity.

The points of a sweep share every component config their values do not change (configs are
frozen dataclasses, built once per distinct block), so what is derived from a config alone
(its plain form, its ``repr``, its digest) is derived once. Configs hold dicts, so they are
not hashable; their identity is the key, and each entry keeps its object alive so that the
identity stays its own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class ByIdentity:
    """``compute(obj)`` remembered per object, for the last ``size`` objects."""

    def __init__(self, size: int = 1024) -> None:
        self.size = size
        self._entries: dict[int, tuple[Any, Any]] = {}

    def get(self, obj: Any, compute: Callable[[Any], Any]) -> Any:
        entry = self._entries.get(id(obj))
        if entry is None or entry[0] is not obj:
            if len(self._entries) >= self.size:
                self._entries.pop(next(iter(self._entries)))
            entry = self._entries[id(obj)] = (obj, compute(obj))
        return entry[1]
