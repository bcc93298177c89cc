"""Grouping runs into Dask tasks: task sizes, and results that do not depend on the grouping."""

from __future__ import annotations

import os
import sys

import pytest

from hwsim.errors import HwsimError
from hwsim.sweep import cluster, load_sweep, run_sweep
from hwsim.sweep.cluster import MAX_RUNS_PER_TASK, MIN_TASK_SECONDS, TASK_SECONDS, TaskSizer

from ..conftest import ARCH, EXAMPLES, ROOT


def sizer_after(seconds: list[float]) -> TaskSizer:
    sizer = TaskSizer()
    for s in seconds:
        sizer.record(s)
    return sizer


def test_the_first_tasks_hold_one_run_until_a_run_time_is_known():
    assert TaskSizer().size(remaining=1000, slots=4) == 1


@pytest.mark.parametrize(("seconds", "remaining", "slots", "expected"), [
    ([0.01, 0.03], 1000, 4, int(TASK_SECONDS / 0.02)),     # ~half a second of 20 ms runs
    ([0.0001], 10_000, 4, MAX_RUNS_PER_TASK),               # capped
    ([1.2, 0.8], 1000, 4, 1),                               # long runs: one per task
    ([0.01], 30, 4, 30 // 4),                               # the tail is spread over the slots
    ([0.001], 100, 4, int(MIN_TASK_SECONDS / 0.001)),       # ... in tasks of MIN_TASK_SECONDS at least
    ([0.01], 3, 4, 3),
    ([0.5], 3, 4, 1),
    ([0.01], 0, 4, 1),
])
def test_a_task_holds_about_task_seconds_of_runs(seconds, remaining, slots, expected):
    assert sizer_after(seconds).size(remaining, slots) == expected


def test_a_workers_first_run_of_a_trace_does_not_set_the_size_of_the_next_tasks():
    sizer = TaskSizer()
    sizer.record(0.6, cold=True)                          # read the trace, loaded compiled code
    assert sizer.size(remaining=1000, slots=4) == 1       # nothing warm yet: bounded by the cold run
    sizer.record(0.002)
    assert sizer.size(remaining=1000, slots=4) == int(TASK_SECONDS / 0.002)
    assert sizer_after([0.6, 0.002]).size(remaining=1000, slots=4) == int(TASK_SECONDS / 0.301)


def test_grouped_runs_on_two_workers_give_the_in_process_table(tmp_path, monkeypatch):
    sweep = tmp_path / "s.yaml"
    sweep.write_text(f"machine: {ARCH / 'tiny.yaml'}\ntraces: [{EXAMPLES / 'gemm.csv'}, {EXAMPLES / 'offload.csv'}]\n"
                     "axes:\n  components.hbm.bandwidth: {low: 16 GB/s, high: 128 GB/s, num: 12}\n"
                     "  components.link.bandwidth: [4 GB/s, 8 GB/s]\n")
    sizes = []
    real_size = TaskSizer.size

    def recorded(self, remaining, slots):
        sizes.append(real_size(self, remaining, slots))
        return sizes[-1]

    monkeypatch.setattr(cluster.TaskSizer, "size", recorded)
    outcome = run_sweep(load_sweep(sweep), tmp_path / "dask", workers=2, quiet=True)
    assert (outcome.runs, outcome.ran, outcome.failed, outcome.missing) == (48, 48, 0, 0)
    assert max(sizes) > 1 and sum(sizes) == 48        # short runs travelled several per task
    run_sweep(load_sweep(sweep), tmp_path / "serial", workers=0, quiet=True)
    assert (tmp_path / "dask" / "results.parquet").read_bytes() == (tmp_path / "serial" / "results.parquet").read_bytes()


class FakeClient:
    def __init__(self) -> None:
        self.workers: dict[str, int] = {}

    def nthreads(self) -> dict[str, int]:
        return self.workers


def test_tasks_in_flight_follow_the_worker_threads_the_cluster_has_now(monkeypatch):
    monkeypatch.setattr(cluster, "SLOTS_REFRESH_S", 0.0)
    client = FakeClient()
    slots = cluster._Slots(client)
    assert slots.count() == cluster.TASKS_IN_FLIGHT          # no worker yet: still submit some
    client.workers = {"tcp://a": 1, "tcp://b": 4}
    assert slots.count() == 5 * cluster.TASKS_IN_FLIGHT      # workers that joined get work


def fails_to_import(runs):
    raise ModuleNotFoundError("No module named 'hwsim'")


def test_workers_that_cannot_load_hwsim_stop_the_sweep_with_one_error():
    lost = []
    with pytest.raises(HwsimError, match=r"the Dask workers cannot load hwsim's code \(ModuleNotFoundError"):
        cluster.run_on_dask(["a", "b", "c"], fails_to_import, save=lambda pairs: None,
                            lose=lambda run, err: lost.append(run), workers=1)
    assert lost == []


def test_local_workers_fork_on_linux_unless_the_environment_says_otherwise(monkeypatch):
    monkeypatch.delenv(cluster.START_METHOD_VARIABLE, raising=False)
    expected = "fork" if sys.platform.startswith("linux") else "spawn"
    assert cluster.local_worker_config()["distributed.worker.multiprocessing-method"] == expected
    monkeypatch.setenv(cluster.START_METHOD_VARIABLE, "forks")
    with pytest.raises(HwsimError, match="HWSIM_WORKER_START_METHOD='forks': expected one of fork, forkserver, spawn"):
        cluster.local_worker_config()


def test_spawned_workers_give_the_same_table(tmp_path, monkeypatch):
    sweep = tmp_path / "s.yaml"
    sweep.write_text(f"machine: {ARCH / 'tiny.yaml'}\ntraces: [{EXAMPLES / 'gemm.csv'}]\n"
                     "axes: {components.hbm.bandwidth: [16 GB/s, 32 GB/s, 64 GB/s]}\n")
    run_sweep(load_sweep(sweep), tmp_path / "fork", workers=2, quiet=True)
    # Spawned workers import hwsim afresh: they must find it as this process does.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    monkeypatch.setenv(cluster.START_METHOD_VARIABLE, "spawn")
    run_sweep(load_sweep(sweep), tmp_path / "spawn", workers=2, quiet=True)
    assert (tmp_path / "spawn" / "results.parquet").read_bytes() == (tmp_path / "fork" / "results.parquet").read_bytes()


def test_a_slow_first_run_per_worker_does_not_keep_tasks_small():
    # Each worker's first run also generates the trace: two 2 s runs, then 7 ms runs.
    sizer = sizer_after([2.0, 2.0] + [0.007] * 6)
    assert sizer.size(remaining=1000, slots=4) == min(int(TASK_SECONDS / 0.007), MAX_RUNS_PER_TASK)
