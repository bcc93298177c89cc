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


def kill_when_saved(process: subprocess.Popen, points_dir: Path, count: int) -> threading.Thread:
    """SIGKILL ``process`` as soon as ``count`` runs are saved in ``points_dir``."""
    def watch():
        deadline = time.monotonic() + WATCH_TIMEOUT_S
        while time.monotonic() < deadline and process.poll() is None:
            if len(list(points_dir.glob("*.json"))) >= count:
                process.send_signal(signal.SIGKILL)
                return
            time.sleep(0.01)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def wait_until_saved(points_dir: Path, count: int) -> None:
    """Return once ``count`` runs are saved in ``points_dir`` (fail after WATCH_TIMEOUT_S)."""
    deadline = time.monotonic() + WATCH_TIMEOUT_S
    while len(list(points_dir.glob("*.json"))) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"fewer than {count} runs saved in {points_dir} after {WATCH_TIMEOUT_S} s")
        time.sleep(0.01)
