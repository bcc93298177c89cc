"""The error contract, as a helper the tests share: a command either succeeds with finite,
non-negative results or exits 2 with ``hwsim: error:`` lines that name the input, and never
prints a traceback."""

from __future__ import annotations

import contextlib
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path

from hwsim.cli.main import main


@dataclass
class Outcome:
    status: int
    out: str
    err: str


def run_cli(*args: object) -> Outcome:
    """Run ``hwsim ARGS`` in this process; an exception escaping ``main`` fails the caller."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = main([str(a) for a in args])
        except SystemExit as stop:    # argparse's usage errors
            status = int(stop.code or 0)
    return Outcome(status, out.getvalue(), err.getvalue())


def assert_user_error(outcome: Outcome, *names: str | Path, status: int = 2) -> list[str]:
    """``outcome`` is a refusal: exit ``status``, only ``hwsim: error:`` lines on stderr, no
    traceback or NumPy repr, and (with ``names``) a line naming one of them. Returns the lines."""
    lines = outcome.err.splitlines()
    assert outcome.status == status, f"exit {outcome.status}, stderr: {outcome.err!r}"
    assert lines, "no error line"
    assert all(line.startswith("hwsim: error: ") for line in lines), outcome.err
    assert "Traceback" not in outcome.err and "np.float64(" not in outcome.err and "array([" not in outcome.err
    if names:
        assert any(str(name) in line for line in lines for name in names), (names, outcome.err)
    return lines


def finite_numbers(data: object) -> bool:
    """True when every number in nested dicts and lists is finite."""
    if isinstance(data, float):
        return math.isfinite(data)
    if isinstance(data, dict):
        return all(finite_numbers(v) for v in data.values())
    if isinstance(data, list):
        return all(finite_numbers(v) for v in data)
    return True


def assert_sane_run(folder: Path) -> dict:
    """A run folder's summary is finite and its times, bytes and energy are not negative."""
    summary = json.loads((folder / "summary.json").read_text())
    assert finite_numbers(summary)
    assert summary["total_cycles"] >= 0 and summary["seconds"] >= 0
    assert summary["energy"]["total_j"] >= 0
    for tier in summary["tiers"].values():
        assert tier["bytes"] >= 0
    return summary
