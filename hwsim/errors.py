"""Errors a user can act on. The CLI prints their message on one line and exits with status 2."""

from __future__ import annotations

import difflib


class HwsimError(Exception):
    """Base class for errors caused by user input (a file, a key, a row, an option)."""


class ConfigError(HwsimError):
    """A machine YAML or an override is invalid; the message names the file and key path."""


class TraceError(HwsimError):
    """A trace is invalid; the message names the file, row and column."""


class CapacityError(HwsimError):
    """A run's working set does not fit a memory tier."""


def did_you_mean(name: str, choices: list[str] | tuple[str, ...]) -> str:
    """Return ``" (did you mean 'x'?)"`` for the closest valid choice, or a list of choices."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    if close:
        return f" (did you mean {close[0]!r}?)"
    listed = ", ".join(sorted(choices))
    return f" (valid: {listed})" if listed else ""
