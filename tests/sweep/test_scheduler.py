"""A sweep on an existing Dask cluster: a real scheduler and two workers in their own processes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass

import pytest

from hwsim.cli.main import main
from hwsim.sweep import cluster as cluster_module
from hwsim.sweep import load_sweep, run_sweep
from hwsim.sweep.journal import read_runs

from ..conftest import ARCH, EXAMPLES, ROOT
from .interrupt import kill_when_saved, slow_sweep

START_TIMEOUT_S = 45
STOP_TIMEOUT_S = 5


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Cluster:
    address: str                        # tcp://127.0.0.1:<port>
    workers: list[subprocess.Popen]


@pytest.fixture
def cluster(tmp_path):
    """A scheduler with two single-thread workers, each its own process; always stopped."""
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    commands = [[sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", str(port),
                 "--no-dashboard", "--idle-timeout", "120s"]]
    commands += [[sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads", "1", "--no-nanny",
                  "--no-dashboard", "--host", "127.0.0.1", "--death-timeout", "60", "--name", f"w{i}"]
                 for i in range(2)]
    processes = []
    try:
        for i, command in enumerate(commands):
            log = open(tmp_path / f"dask-{i}.log", "wb")  # noqa: SIM115 - closed with the process
            processes.append((subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT), log))
        from distributed import Client
        with Client(address, timeout=START_TIMEOUT_S) as client:
            client.wait_for_workers(2, timeout=START_TIMEOUT_S)
        yield Cluster(address, [process for process, _ in processes[1:]])
    finally:
        for process, _ in reversed(processes):
            process.terminate()
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for process, log in processes:
            try:
                process.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=STOP_TIMEOUT_S)
            log.close()


def test_sweep_runs_on_an_existing_scheduler_and_matches_a_local_run(cluster, tmp_path):
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(f"machine: {ARCH / 'tiny.yaml'}\n"
                     f"traces: [{EXAMPLES / 'gemm.csv'}, {EXAMPLES / 'offload.csv'}]\n"
                     "axes:\n  components.link.bandwidth: [4 GB/s, 8 GB/s, 16 GB/s]\n")
    assert main(["sweep", str(sweep), "--out", str(tmp_path / "remote"), "--scheduler", cluster.address,
                 "--quiet"]) == 0
    assert main(["sweep", str(sweep), "--out", str(tmp_path / "local"), "--workers", "0", "--quiet"]) == 0
    remote = (tmp_path / "remote" / "results.parquet").read_bytes()
    assert remote == (tmp_path / "local" / "results.parquet").read_bytes()
    assert len(read_runs(tmp_path / "remote")) == 6


def test_an_unreachable_scheduler_is_a_one_line_error(tmp_path, capsys, monkeypatch):
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(f"machine: {ARCH / 'tiny.yaml'}\ntraces: [{EXAMPLES / 'gemm.csv'}]\n"
                     "axes: {components.link.bandwidth: [4 GB/s]}\n")
    monkeypatch.setattr(cluster_module, "CONNECT_TIMEOUT_S", 1)
    status = main(["sweep", str(sweep), "--out", str(tmp_path / "o"), "--scheduler",
                   f"tcp://127.0.0.1:{free_port()}", "--quiet"])
    err = capsys.readouterr().err
    assert status == 2 and err.startswith("hwsim: error: --scheduler tcp://127.0.0.1:") and "cannot connect" in err


def test_a_worker_killed_mid_sweep_loses_no_run(cluster, tmp_path):
    sweep = slow_sweep(tmp_path, points=10)
    out = tmp_path / "remote"
    watcher = kill_when_saved(cluster.workers[0], out, count=2)
    outcome = run_sweep(load_sweep(sweep), out, scheduler=cluster.address, quiet=True)
    watcher.join()
    assert cluster.workers[0].wait(timeout=STOP_TIMEOUT_S) == -signal.SIGKILL
    # Dask reran the killed worker's run on the other one: every run is saved and the
    # table is the one an uninterrupted sweep gives.
    assert (outcome.runs, outcome.ran, outcome.failed, outcome.missing) == (10, 10, 0, 0)
    run_sweep(load_sweep(sweep), tmp_path / "local", workers=0, quiet=True)
    assert (out / "results.parquet").read_bytes() == (tmp_path / "local" / "results.parquet").read_bytes()
