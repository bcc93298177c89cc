"""A local sweep worker exits once the driver that started it is gone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import psutil

from ..conftest import ROOT

CHILD = textwrap.dedent("""
    import time
    from hwsim.sweep.worker_setup import exit_with_parent
    exit_with_parent(0.05)
    time.sleep(120)
""")
PARENT = textwrap.dedent("""
    import os, subprocess, sys, time
    env = {**os.environ, "HWSIM_SWEEP_DRIVER_PID": str(os.getpid())}   # as the driver sets it
    child = subprocess.Popen([sys.executable, "-c", sys.argv[1]], env=env)
    print(child.pid, flush=True)
    time.sleep(120)
""")


def test_a_worker_exits_when_its_parent_is_killed():
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    parent = subprocess.Popen([sys.executable, "-c", PARENT, CHILD], stdout=subprocess.PIPE, text=True, env=env)
    try:
        child = psutil.Process(int(parent.stdout.readline()))
        assert child.is_running()
        _, alive = psutil.wait_procs([child], timeout=0.5)
        assert alive, "the child must keep running while its parent lives"
        # Killed now, the parent may die before the child has started watching it: the
        # child then finds another parent than the one it was told of, and exits too.
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)
        _, alive = psutil.wait_procs([child], timeout=10)
        assert not alive
    finally:
        parent.kill()
