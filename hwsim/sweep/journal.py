"""A sweep folder's journal of finished runs: ``DIR/runs.jsonl``, one line of JSON per run.

The driver appends the runs of each task the moment it returns, with one ``write`` of
whole lines to a file opened for appending; nothing else writes to it while a sweep runs.
A line is therefore complete, or it is the torn tail of the last write before the driver
died.
Reading keeps every whole line that parses (a later line for the same run wins) and drops
the rest. Before a sweep appends, the journal is rewritten atomically with the runs it
keeps, so a torn tail is never followed by new lines and stale runs do not pile up.

A journal of appended lines, not a file per run: a sweep of thousands of short roofline
runs spent more time creating files than running its points.

Each line is ``{"name": "<point_id>-t<i>", "key": ..., "row": {...}, "timing": {...}}``
(sorted keys). Folders of earlier versions kept a file per run under ``points/``; those
runs are read too, and are carried into the journal when the sweep resumes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from hwsim.atomic import atomic_write_text

JOURNAL = "runs.jsonl"
#: The folder of one file per run that earlier versions wrote (read, never written).
LEGACY_POINTS = "points"


def journal_path(folder: Path) -> Path:
    return Path(folder) / JOURNAL


def has_runs(folder: Path) -> bool:
    """True when ``folder`` holds saved runs (a journal line, or an earlier version's file)."""
    path = journal_path(folder)
    if path.is_file() and path.stat().st_size > 0:
        return True
    legacy = Path(folder) / LEGACY_POINTS
    return legacy.is_dir() and any(legacy.glob("*.json"))


def read_runs(folder: Path) -> dict[str, dict[str, Any]]:
    """Every whole saved run of ``folder`` by run name (the journal's later lines win over
    earlier ones, and over an earlier version's per-run files)."""
    runs: dict[str, dict[str, Any]] = {}
    legacy = Path(folder) / LEGACY_POINTS
    if legacy.is_dir():
        for path in sorted(legacy.glob("*.json")):
            result = _parsed(path.read_text(errors="replace"))
            if result is not None:
                runs[path.stem] = result
    try:
        text = journal_path(folder).read_text(errors="replace")
    except FileNotFoundError:
        return runs
    for line in text.splitlines(keepends=True):
        result = _parsed(line) if line.endswith("\n") else None   # no newline: a torn tail
        if result is not None and isinstance(result.get("name"), str):
            runs[result["name"]] = result
    return runs


def _parsed(text: str) -> dict[str, Any] | None:
    try:
        result = json.loads(text)
    except ValueError:
        return None
    return result if isinstance(result, dict) else None


def line(name: str, result: dict[str, Any]) -> str:
    """The journal line of run ``name``: deterministic JSON (sorted keys) on one line."""
    return json.dumps({**result, "name": name}, sort_keys=True, separators=(",", ":"), allow_nan=False) + "\n"


class RunJournal:
    """The journal, open for appending; :meth:`start` first writes the runs kept."""

    def __init__(self, folder: Path) -> None:
        self.path = journal_path(folder)
        self._fd: int | None = None

    def start(self, kept: Iterable[tuple[str, dict[str, Any]]]) -> None:
        """Rewrite the journal atomically with ``kept`` (name, result) runs, then open it."""
        atomic_write_text(self.path, "".join(line(name, result) for name, result in kept))
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)

    def append_all(self, runs: Iterable[tuple[str, dict[str, Any]]]) -> None:
        """Save finished (name, result) runs: their lines, in one write (the runs of one
        task arrive together; a write per run cost more than encoding it)."""
        data = "".join(line(name, result) for name, result in runs).encode("utf-8")
        written = os.write(self._fd, data)
        while written < len(data):   # a short write (a full disk raises instead): finish the line
            written += os.write(self._fd, data[written:])

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunJournal:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
