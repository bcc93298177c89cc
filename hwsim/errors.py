"""Errors a user can act on. The CLI prints each problem on one line and exits with status 2.

An error may carry several problems (every mistake of one file, found in one pass); each is
one line, ``file:line: key.path: message``. ``str(err)`` joins them with newlines.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any


class HwsimError(Exception):
    """Base class for errors caused by user input (a file, a key, a row, an option)."""

    def __init__(self, message: str | Iterable[str] = "") -> None:
        lines = [message] if isinstance(message, str) else [str(m) for m in message]
        #: One line per problem, each naming its file and key path, row or option.
        self.problems: list[str] = [" ".join(str(line).split()) for line in lines if str(line).strip()] or [""]
        super().__init__("\n".join(self.problems))


class ConfigError(HwsimError):
    """A machine, sweep, regress or workload file or an override is invalid; each problem
    names the file (and line) and the key path."""


class TraceError(HwsimError):
    """A trace is invalid; the message names the file, row and column."""


class CapacityError(HwsimError):
    """A run's working set does not fit a memory tier."""


class RangeOverflowError(HwsimError):
    """A value computed from the inputs (cycles, FLOPs, bytes) does not fit the integer type
    it is counted in; the message names the op or the quantity."""


class ResultError(HwsimError):
    """A run folder is incomplete or damaged, or a result is not a finite number."""


def did_you_mean(name: str, choices: list[str] | tuple[str, ...]) -> str:
    """Return ``" (did you mean 'x'?)"`` for the closest valid choice, or a list of choices."""
    close = difflib.get_close_matches(name, [str(c) for c in choices], n=1, cutoff=0.6)
    if close:
        return f" (did you mean {close[0]!r}?)"
    listed = ", ".join(sorted(str(c) for c in choices))
    if len(listed) > 300:
        listed = listed[:300] + ", ..."
    return f" (valid: {listed})" if listed else ""


def shown(value: Any, limit: int = 80) -> str:
    """``repr`` of a value for a message: NumPy scalars and arrays as plain Python values,
    and long values cut to ``limit`` characters (so a message stays one readable line)."""
    if hasattr(value, "tolist") and callable(value.tolist):   # numpy scalars and arrays
        value = value.tolist()
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
