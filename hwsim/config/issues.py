"""Collecting every problem of one input file, each as ``file:line: key.path: message``.

Validation of a machine, sweep, regress or preset file does not stop at the first mistake:
each check adds a problem to an :class:`Issues` and the loader raises them together, one
line each, when the file has been read through. Lines come from :class:`Marks`, which the
YAML reader fills with the line of every key.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from hwsim.errors import ConfigError, HwsimError

#: Most problems reported for one file (a file of garbage would otherwise print thousands).
MAX_PROBLEMS = 50


class Marks:
    """Where each key path was written: ``"components.hbm.bandwidth" -> (file, line)``."""

    def __init__(self, entries: dict[str, tuple[str, int]] | None = None) -> None:
        self.entries: dict[str, tuple[str, int]] = dict(entries or {})

    def locate(self, path: str) -> tuple[str, int] | None:
        """The file and line of ``path``, or of its nearest written parent."""
        while path:
            if path in self.entries:
                return self.entries[path]
            cut = max(path.rfind("."), path.rfind("["))
            path = path[:cut] if cut > 0 else ""
        return self.entries.get("")

    def overlay(self, top: Marks) -> Marks:
        """Marks of a file merged over this one (``extends``): the top file's keys win."""
        return Marks({**self.entries, **top.entries})


class Issues:
    """The problems found in one input, in the order found.

    ``source`` is the file (or option) the problems are in; ``marks`` gives the line of a
    key path. :meth:`raise_if_any` raises one ConfigError holding every problem.
    """

    def __init__(self, source: str = "", marks: Marks | None = None,
                 error: type[HwsimError] = ConfigError) -> None:
        self.source = source
        self.marks = marks or Marks()
        self.error = error
        self.problems: list[str] = []

    def add(self, path: str, message: str) -> None:
        """Record that the value at key ``path`` is wrong, with ``message`` saying why."""
        prefix = self._prefix(path)
        line = f"{prefix}{path}: {message}" if path else f"{prefix}{message}"
        if line not in self.problems:
            self.problems.append(line)

    def add_unplaced(self, message: str) -> None:
        """Record a problem of the input as a whole or of an option (no key line)."""
        line = f"{self.source}: {message}" if self.source else message
        if line not in self.problems:
            self.problems.append(line)

    def add_located(self, err: HwsimError, path: str) -> None:
        """Add the problems of an error whose messages name key paths but no file (a helper
        called on one value), placed at the line of ``path``."""
        prefix = self._prefix(path)
        for problem in err.problems:
            line = prefix + problem
            if line not in self.problems:
                self.problems.append(line)

    def extend(self, err: HwsimError) -> None:
        """Add the problems of an error raised by a nested loader (already located)."""
        for problem in err.problems:
            if problem not in self.problems:
                self.problems.append(problem)

    def _prefix(self, path: str) -> str:
        """``file:line: `` of ``path`` (``file: `` when its line is not known)."""
        where = self.marks.locate(path)
        if where is not None:   # line 0: in the file, line unknown; -1: set by an option
            return f"{where[0]}:{where[1]}: " if where[1] > 0 else f"{where[0]}: " if where[1] == 0 else f"{where[0]} "
        return f"{self.source}: " if self.source else ""

    def __bool__(self) -> bool:
        return bool(self.problems)

    def __len__(self) -> int:
        return len(self.problems)

    def raise_if_any(self) -> None:
        """Raise every problem found so far as one error (at most :data:`MAX_PROBLEMS` lines)."""
        if self.problems:
            shown = self.problems[:MAX_PROBLEMS]
            if len(self.problems) > MAX_PROBLEMS:
                shown.append(f"{self.source}: {len(self.problems) - MAX_PROBLEMS} more problems not shown")
            raise self.error(shown)

    @contextmanager
    def collecting(self) -> Iterator[None]:
        """Turn a ConfigError raised inside the block into problems of this file."""
        try:
            yield
        except ConfigError as err:
            self.extend(err)
