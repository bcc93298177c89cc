"""Ctrl-C on a sweep: exit 130, hwsim's one message, no tracebacks from the Dask workers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from ..conftest import ROOT
from .interrupt import WATCH_TIMEOUT_S, saved_runs, slow_sweep


@pytest.mark.skipif(sys.platform != "linux", reason="signals a process group")
def test_ctrl_c_on_a_sweep_exits_130_without_worker_tracebacks(tmp_path):
    sweep, out = slow_sweep(tmp_path, points=40), tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    # A terminal's Ctrl-C signals the whole foreground process group: driver and workers.
    driver = subprocess.Popen([sys.executable, "-m", "hwsim", "sweep", str(sweep), "--out", str(out), "--workers", "2",
                               "--quiet"], env=env, start_new_session=True, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + WATCH_TIMEOUT_S
    while not saved_runs(out) and time.monotonic() < deadline and driver.poll() is None:
        time.sleep(0.02)
    os.killpg(driver.pid, signal.SIGINT)
    _, err = driver.communicate(timeout=60)
    assert driver.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert "sweep interrupted" in err and "rerun with --resume" in err
