"""Set-up of a local sweep worker process (a Dask preload): Ctrl-C is the driver's to handle,
and a worker outlives no driver.

A terminal sends SIGINT to every process of the foreground group, the local cluster's
workers included. The driver saves what finished and shuts the cluster down; a worker that
also took the signal would only print Dask's KeyboardInterrupt tracebacks over that message.

A worker process is a child of the driver. Dask ends it when a pipe from the driver closes,
but forked workers inherit each other's ends of those pipes, and two workers started at
once can keep each other alive for good after the driver is killed (seen: orphans still
running minutes later). So each worker also watches its parent and exits when it is gone.
"""

from __future__ import annotations

import os
import signal
import threading
import time

#: Seconds between two looks at whether the worker's parent (the driver) is still there.
PARENT_CHECK_S = 0.5
#: The driver's process id, set for its local workers when the driver is their parent: a
#: worker whose driver died before this module ran (its parent is already another process)
#: then exits at once instead of taking its new parent for the driver.
DRIVER_PID_VARIABLE = "HWSIM_SWEEP_DRIVER_PID"


def ignore_interrupts() -> None:
    """Ignore SIGINT in this process (only the main thread may change signal handling)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def exit_with_parent(check_s: float = PARENT_CHECK_S) -> threading.Thread:
    """Exit this process (status 1) once its parent process has gone: a daemon thread that
    looks every ``check_s`` seconds whether the process was re-parented. The parent is the
    process :data:`DRIVER_PID_VARIABLE` names, else the one this process has now."""
    named = os.environ.get(DRIVER_PID_VARIABLE, "")
    parent = int(named) if named.isdigit() else os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(check_s)
        os._exit(1)   # the driver is gone: nothing of this process's work can be saved

    thread = threading.Thread(target=watch, name="hwsim-parent-watch", daemon=True)
    thread.start()
    return thread


def dask_setup(worker) -> None:  # noqa: ARG001 - the preload protocol passes the worker
    """Dask's preload hook, run as the worker starts."""
    ignore_interrupts()
    exit_with_parent()
