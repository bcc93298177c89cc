"""Executing sweep runs on Dask: a local cluster or an existing scheduler, runs grouped into tasks.

Dask costs a few milliseconds per task (scheduling, messages, the worker's event loop
taking the GIL from the run), which is small next to a one-second run and large next to a
20-millisecond one. Runs are therefore sent in *tasks* of several runs, sized from the run
times measured so far so that a task takes about :data:`TASK_SECONDS`: the first tasks hold
one run each, and a sweep of long runs keeps one run per task. A few tasks per worker
thread are kept in flight (so no worker waits for the driver; workers that join later are
counted too) and the rest are submitted as tasks finish, so a sweep of 100,000 points does
not put 100,000 futures on the scheduler.

Results come back to the driver, which saves the runs of a finished task at once; a run is
thus saved at most about :data:`TASK_SECONDS` after it finishes. A task whose worker dies is
rerun by Dask on another worker; one lost for good is reported through ``lose``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import statistics
import sys
import time
from asyncio import CancelledError
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from hwsim.errors import HwsimError

#: Seconds to wait for an existing scheduler to answer.
CONNECT_TIMEOUT_S = 30
#: The variable that overrides how local worker processes start (see local_worker_config).
START_METHOD_VARIABLE = "HWSIM_WORKER_START_METHOD"
START_METHODS = ("fork", "forkserver", "spawn")
#: Target wall time of one task, seconds (see the module docstring).
TASK_SECONDS = 0.5
#: Most runs one task holds.
MAX_RUNS_PER_TASK = 512
#: Least wall time of a task's runs (seconds) once run times are known, also in the tail.
MIN_TASK_SECONDS = 0.05
#: Tasks kept in flight per worker thread.
TASKS_IN_FLIGHT = 2
#: Run times the task size is taken from (the most recent).
RECENT_RUNS = 32
#: Seconds between two looks at how many worker threads the cluster has.
SLOTS_REFRESH_S = 1.0


def local_worker_config() -> dict[str, Any]:
    """Dask settings for the local cluster's workers.

    * Start method: forking from the driver, which has already imported hwsim, numpy,
      pandas and distributed, starts a worker in ~0.1 s; Dask's default (spawn) re-imports
      all of them in every worker, ~2 s before the first point runs. Linux only: Windows has
      no fork, and macOS's system libraries are not safe to use after one.
      ``HWSIM_WORKER_START_METHOD=spawn`` (or ``forkserver``) overrides it, e.g. for a driver
      with threads of its own that should not be forked (a notebook kernel).
    * A run allocates and frees large frames: the aggressive glibc heap trimming Dask sets
      up for workers and its 10 ms statistical profiler made each run 20-30% slower than in
      a plain process, so both are off.
    """
    from hwsim.sweep.worker_setup import DRIVER_PID_VARIABLE

    method = os.environ.get(START_METHOD_VARIABLE) or ("fork" if sys.platform.startswith("linux") else "spawn")
    if method not in START_METHODS:
        raise HwsimError(f"{START_METHOD_VARIABLE}={method!r}: expected one of {', '.join(START_METHODS)}")
    # A value inherited from elsewhere would win over the one set below (Dask keeps the
    # environment's); this process is the driver.
    os.environ.pop(DRIVER_PID_VARIABLE, None)
    return {
        "distributed.worker.multiprocessing-method": method,
        "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
        "distributed.worker.profile.enabled": False,
        "distributed.worker.preload": ["hwsim.sweep.worker_setup"],   # Ctrl-C is the driver's
        # fork and spawn make the driver each worker's parent (forkserver: its server).
        **({f"distributed.nanny.environ.{DRIVER_PID_VARIABLE}": str(os.getpid())} if method != "forkserver" else {}),
    }


@contextlib.contextmanager
def _interrupts_ignored():
    """Ignore SIGINT in this (main) thread for the block, then restore the handler."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


class TaskSizer:
    """How many runs the next task gets, from the median of the last :data:`RECENT_RUNS`
    run times (seconds) of warm runs. A worker's first run of a trace (``cold``) also reads
    or generates the trace and loads compiled code, often a hundred times a short run's
    time: counted, it kept the next tasks at one run each, a round trip per run."""

    def __init__(self) -> None:
        self.runs = 0
        self.recent: deque[float] = deque(maxlen=RECENT_RUNS)
        self.slowest_cold = 0.0

    def record(self, seconds: float, cold: bool = False) -> None:
        self.runs += 1
        if cold:
            self.slowest_cold = max(self.slowest_cold, seconds)
        else:
            self.recent.append(seconds)

    def size(self, remaining: int, slots: int) -> int:
        """Runs for the next task: ~TASK_SECONDS of work, one run until a time is known, and
        never so many that the last tasks leave workers idle (``remaining`` / ``slots``, but
        at least MIN_TASK_SECONDS of runs)."""
        if not self.runs:
            return 1
        # Only cold runs so far: they bound a warm run from above.
        typical = max(statistics.median(self.recent) if self.recent else self.slowest_cold, 1e-6)
        # The tail is spread over the slots, but a task keeps MIN_TASK_SECONDS of runs: below
        # that, a task's own cost (a few milliseconds) outweighs what spreading gains.
        spread = max(remaining // max(slots, 1), int(MIN_TASK_SECONDS / typical))
        wanted = min(int(TASK_SECONDS / typical), MAX_RUNS_PER_TASK, spread)
        return max(1, min(wanted, remaining))


def run_on_dask(todo: Sequence[Any], task: Callable[[list], list[dict]],
                save: Callable[[list[tuple[dict, Any]]], None], lose: Callable[[Any, BaseException], None], *,
                workers: int | None = None, scheduler: str | None = None,
                before_start: Callable[[], None] | None = None) -> None:
    """Run ``task`` over ``todo`` in groups on a local cluster (``workers`` processes) or on
    ``scheduler``; ``save(pairs)`` the (result, run) pairs of each task as it returns,
    ``lose(run, error)`` each run of a task lost for good. ``before_start`` runs before local
    workers start. A result's ``timing`` holds ``wall_s`` and, for a worker's first run of
    its trace, ``cold``."""
    import dask
    from distributed import Client, LocalCluster, as_completed

    cluster = None
    if scheduler:
        try:
            client = Client(scheduler, timeout=CONNECT_TIMEOUT_S)
        except (OSError, ValueError, TypeError) as err:
            raise HwsimError(f"--scheduler {scheduler}: cannot connect ({' '.join(str(err).split())})") from None
    else:
        count = min(workers or _cores(), len(todo))   # never more workers than runs
        if before_start is not None:
            before_start()
        with dask.config.set(local_worker_config()), _interrupts_ignored():
            # Workers forked now inherit the ignored SIGINT; the preload covers the others.
            # Workers log nothing below CRITICAL: a run's own errors come back to the driver
            # as results, and the shutdown after Ctrl-C must not print a worker's heartbeat
            # traceback (the interrupt is reported once, by the driver).
            cluster = LocalCluster(n_workers=count, threads_per_worker=1, processes=True, host="127.0.0.1",
                                   dashboard_address=None, silence_logs=logging.CRITICAL)
        client = Client(cluster)
    # Dask's sync() logs a traceback of its own cancel callback from the event loop when
    # Ctrl-C interrupts a wait; the driver reports the interruption, once.
    loop_log = logging.getLogger("tornado.application")
    loop_level = loop_log.level
    loop_log.setLevel(logging.CRITICAL)
    try:
        queue, sizer, groups = deque(todo), TaskSizer(), {}
        in_flight = as_completed()
        slots = _Slots(client)

        def fill() -> None:
            """Submit tasks until every worker thread has TASKS_IN_FLIGHT (or the runs run out)."""
            while queue and len(groups) < slots.count():
                group = [queue.popleft() for _ in range(sizer.size(len(queue), slots.count()))]
                future = client.submit(task, group, pure=False)
                groups[future] = group
                in_flight.add(future)

        fill()
        for future in in_flight:
            group = groups.pop(future)
            try:
                results = future.result()
            except ImportError as err:
                # Every task would fail the same way: stop now, with what the user must fix.
                raise HwsimError(f"the Dask workers cannot load hwsim's code ({type(err).__name__}: {err}); "
                                 "install the same hwsim version where they run") from None
            except (Exception, CancelledError) as err:  # noqa: BLE001 - lost: left for --resume
                for run in group:
                    lose(run, err)
            else:
                save(list(zip(results, group, strict=True)))
                for result in results:
                    sizer.record(result["timing"]["wall_s"], bool(result["timing"].get("cold")))
            future.release()
            fill()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
        loop_log.setLevel(loop_level)


class _Slots:
    """Tasks to keep in flight: TASKS_IN_FLIGHT per worker thread the scheduler has now.
    Re-read at most every :data:`SLOTS_REFRESH_S`, so workers that join a running sweep (an
    adaptive cluster scaling up) get work."""

    def __init__(self, client) -> None:
        self._client = client
        self._count = 0
        self._read_at = -float("inf")

    def count(self) -> int:
        now = time.monotonic()
        if now - self._read_at >= SLOTS_REFRESH_S:
            threads = sum(self._client.nthreads().values())   # every worker's, asked of the scheduler
            self._count = TASKS_IN_FLIGHT * max(threads, 1)
            self._read_at = now
        return self._count


def _cores() -> int:
    return os.cpu_count() or 1
