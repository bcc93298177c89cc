"""Set-up of a local sweep worker process (a Dask preload): Ctrl-C is the driver's to handle.

A terminal sends SIGINT to every process of the foreground group, the local cluster's
workers included. The driver saves what finished and shuts the cluster down; a worker that
also took the signal would only print Dask's KeyboardInterrupt tracebacks over that message.
"""

from __future__ import annotations

import signal
import threading


def ignore_interrupts() -> None:
    """Ignore SIGINT in this process (only the main thread may change signal handling)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def dask_setup(worker) -> None:  # noqa: ARG001 - the preload protocol passes the worker
    """Dask's preload hook, run as the worker starts."""
    ignore_interrupts()
