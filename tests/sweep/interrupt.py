"""Interrupting sweeps for real: runs slow enough to kill a process in the middle of a sweep."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

import hwsim
from hwsim.sweep.journal import JOURNAL

from ..conftest import ARCH

#: Seconds a watcher waits for the runs it kills after.
WATCH_TIMEOUT_S = 60


def slow_sweep(tmp_path, points: int) -> Path:
    """A sweep whose runs take ~0.3 s each on the tiny machine: long enough to kill mid-sweep."""
    ops = 100_000
    trace = hwsim.write_trace(hwsim.Trace.from_frame(pd.DataFrame({
        "op_id": np.arange(ops), "kind": "vector", "flops": 4096, "elements": 4096})), tmp_path / "chain.parquet")
    sweep = tmp_path / "slow.yaml"
    sweep.write_text(f"machine: {ARCH / 'tiny.yaml'}\ntraces: [{trace}]\n"
                     f"axes:\n  components.vector.lanes: [{', '.join(str(8 * (i + 1)) for i in range(points))}]\n")
    return sweep


def saved_runs(out: Path) -> int:
    """Runs saved so far in sweep folder ``out`` (whole lines of its journal)."""
    try:
        return (out / JOURNAL).read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def kill_when_saved(process: subprocess.Popen, out: Path, count: int) -> threading.Thread:
    """SIGKILL ``process`` as soon as ``count`` runs are saved in sweep folder ``out``."""
    def watch():
        deadline = time.monotonic() + WATCH_TIMEOUT_S
        while time.monotonic() < deadline and process.poll() is None:
            if saved_runs(out) >= count:
                process.send_signal(signal.SIGKILL)
                return
            time.sleep(0.01)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def wait_until_saved(out: Path, count: int) -> None:
    """Return once ``count`` runs are saved in sweep folder ``out`` (fail after WATCH_TIMEOUT_S)."""
    deadline = time.monotonic() + WATCH_TIMEOUT_S
    while saved_runs(out) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"fewer than {count} runs saved in {out} after {WATCH_TIMEOUT_S} s")
        time.sleep(0.01)
