"""Progress lines: a counting one for multi-run work (comparisons, sweeps), and an
elapsed-time one (:class:`Working`) for work without countable steps.

On a terminal it keeps one updating line on stderr with done/total, failures, a bar, the
number left, the rate and the ETA::

    with Progress(len(jobs), "compare") as bar:
        for job in jobs:
            ...
            bar.advance()              # or bar.advance(failed=True)

It prints nothing when the stream is not a TTY (logs, CI, pipes) or when ``quiet=True``, so
it never changes a program's captured output. In a Jupyter kernel (whose stderr is not a
TTY) it updates one output line of the cell instead, through IPython's display handles. Wall-clock time is used only for the
displayed rate and ETA, never for results.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

#: Characters of the bar drawn between the counts and the rate.
BAR_WIDTH = 20


class Progress:
    """Count finished (and failed) items out of ``total`` and show it on a TTY.

    ``stream`` defaults to ``sys.stderr``; ``min_interval`` (seconds) limits redraws.
    """

    def __init__(self, total: int, label: str = "", *, quiet: bool = False,
                 stream: TextIO | None = None, min_interval: float = 0.1) -> None:
        if total < 0:
            raise ValueError(f"total must be >= 0, got {total}")
        self.total = int(total)
        self.label = label
        self.done = 0
        self.failed = 0
        self._stream = stream if stream is not None else sys.stderr
        isatty = getattr(self._stream, "isatty", None)
        self._notebook = notebook_output() if not quiet and stream is None and not (isatty and isatty()) else None
        self.enabled = not quiet and (bool(isatty and isatty()) or self._notebook is not None)
        self._min_interval = min_interval
        self._start = time.monotonic()
        self._last_draw = -float("inf")
        self._width = 0

    def __enter__(self) -> Progress:
        self._start = time.monotonic()
        self._draw(force=True)
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def advance(self, n: int = 1, failed: bool = False) -> None:
        """Mark ``n`` more items finished; ``failed=True`` counts them as failures too."""
        self.done += n
        if failed:
            self.failed += n
        self._draw(force=self.done >= self.total)

    def line(self) -> str:
        """The current progress text (without the carriage return)."""
        elapsed = max(time.monotonic() - self._start, 1e-9)
        rate = self.done / elapsed
        remaining = max(self.total - self.done, 0)
        filled = BAR_WIDTH * min(self.done, self.total) // max(self.total, 1)
        parts = [f"{self.label} " if self.label else "", f"{self.done}/{self.total}"]
        if self.failed:
            parts.append(f" ({self.failed} failed)")
        parts.append(f" [{'#' * filled}{'.' * (BAR_WIDTH - filled)}]")
        if remaining:
            parts.append(f" {remaining} left")
        if self.done:
            parts.append(f"  {rate:.3g}/s")
            parts.append(f"  ETA {_clock(remaining / rate)}" if remaining else
                         f"  in {_clock(elapsed)}")
        return "".join(parts)

    def close(self) -> None:
        """Draw the final state and end the line (called by ``__exit__``)."""
        if self.enabled:
            self._draw(force=True)
            if self._notebook is None:
                self._stream.write("\n")
                self._stream.flush()
            self.enabled = False

    def _draw(self, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._last_draw < self._min_interval:
            return
        self._last_draw = now
        text = self.line()
        if self._notebook is not None:
            self._notebook.update(text)
            return
        pad = " " * max(self._width - len(text), 0)  # erase the tail of a longer previous line
        self._width = len(text)
        self._stream.write(f"\r{text}{pad}")
        self._stream.flush()


class _NotebookLine:
    """One output line of a Jupyter cell, replaced on every update (an IPython display handle)."""

    def __init__(self, display, pretty) -> None:
        self._pretty = pretty
        self._handle = display(pretty(""), display_id=True)

    def update(self, text: str) -> None:
        self._handle.update(self._pretty(text))


def notebook_output() -> _NotebookLine | None:
    """A cell output line when running inside a Jupyter (IPython) kernel, else None. Never
    imports IPython itself: only a program already running under it has it loaded."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None and hasattr(ipython, "get_ipython") else None
    if shell is None or not hasattr(shell, "kernel"):
        return None
    from IPython.display import Pretty, display

    return _NotebookLine(display, Pretty)


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class Working:
    """An elapsed-time line for work that has no countable steps (generating a trace).

    On a terminal, a background thread redraws ``<label>  12.3 s`` on stderr every
    ``interval`` seconds and the line is erased when the block ends; off a terminal, or with
    ``quiet=True``, nothing is printed. Like :class:`Progress`, it never changes results.
    """

    def __init__(self, label: str, *, quiet: bool = False, stream: TextIO | None = None,
                 interval: float = 0.5) -> None:
        self.label = label
        self._stream = stream if stream is not None else sys.stderr
        isatty = getattr(self._stream, "isatty", None)
        self.enabled = not quiet and bool(isatty and isatty())
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._start = time.monotonic()
        self._width = 0

    def line(self) -> str:
        return f"{self.label}  {time.monotonic() - self._start:.1f} s"

    def __enter__(self) -> Working:
        self._start = time.monotonic()
        if self.enabled:
            self._thread = threading.Thread(target=self._run, name="hwsim-working", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._stream.write("\r" + " " * self._width + "\r")   # leave the terminal as it was
            self._stream.flush()

    def _run(self) -> None:
        while True:
            text = self.line()
            self._width = max(self._width, len(text))
            self._stream.write(f"\r{text}")
            self._stream.flush()
            if self._stop.wait(self._interval):
                return
