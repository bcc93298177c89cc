"""The event-driven timing strategy: a replay of the trace on SimPy, in integer cycles.

Each stream is a SimPy process that issues its ops in order. An op waits for its
dependencies and for the host to have launched it, then claims its compute unit (the
earliest-free instance) and the memory channels its bytes cross. Units and channels are
modelled as reservation timelines: each remembers the cycle it becomes free, and an op's
use of it starts at ``max(op work start, free)`` — a FIFO queue in the order ops claim it,
which SimPy makes the order of simulated time (ties broken by event order, which is
deterministic). An op therefore costs at most one SimPy timeout, plus one event per
dependency it actually has to wait for::

    start   = max(ready, host issue, unit free)
    work    = start + fixed                                     (the kernel's fixed cost)
    channel = max(work, channel free) + bytes / bandwidth       for every channel crossed
    end     = max(work + compute, max(channel ends) + latency)

Compute and memory overlap within an op (double buffering); contention between ops shows
up as queueing on units and channels. Batches are loaded as streams need them: a stream
whose ops are all loaded ends when it has run them, without loading further batches, and a
batch is handed to the records as soon as every stream has run its ops.
"""

from __future__ import annotations

from array import array
from collections import deque
from collections.abc import Callable
from itertools import repeat

import numpy as np
import pandas as pd
import simpy

from hwsim.engine.costs import SignatureCosts
from hwsim.engine.feed import Batch, BatchFeed
from hwsim.trace.trace import Trace


def _held(busy: np.ndarray) -> list:
    """Per signature, the ((channel, busy cycles), ...) pairs of the channels it keeps busy,
    in channel order. Signatures share a handful of channel patterns, so the tuples are
    built a pattern at a time, by C-level zips."""
    n, width = busy.shape
    if n <= 64:
        return [tuple((c, cycles) for c, cycles in enumerate(row) if cycles > 0) for row in busy.tolist()]
    empty = np.empty(1, dtype=object)
    empty[0] = ()
    held = np.repeat(empty, n)
    if width == 0 or n == 0:
        return held.tolist()
    bits = 1 << np.arange(width, dtype=np.int64)
    pattern_of, patterns = pd.factorize((busy > 0) @ bits)
    for p, pattern in enumerate(patterns.tolist()):
        channels = np.flatnonzero(pattern & bits).tolist()
        if not channels:
            continue
        rows = np.flatnonzero(pattern_of == p)
        pairs = zip(*(zip(repeat(c), busy[rows, c].tolist()) for c in channels))  # noqa: B905
        held[rows] = np.fromiter(pairs, dtype=object, count=len(rows))
    return held.tolist()


class EventReplay:
    """One replay of a trace; call :meth:`run` once."""

    fidelity = "event"

    def __init__(self, feed: BatchFeed, trace: Trace) -> None:
        self.feed = feed
        machine = feed.machine
        self.env = simpy.Environment()
        names, last_rows = trace.stream_layout()
        vocab = trace.vocab["stream"]
        self._streams = [vocab.code(name) for name in names]
        self._last_row = dict(zip(self._streams, last_rows, strict=True))
        self._queues: dict[int, deque] = {code: deque() for code in self._streams}
        self._done = bytearray(trace.num_ops)     # 1 once an op has run (by trace row)
        self._waiters: dict[int, simpy.Event] = {}
        self._channel_free = [0] * len(machine.channels)
        self._unit_free = [[0] * unit.instances for unit in machine.units.values()]
        self._sig_info: tuple[SignatureCosts, list] | None = None
        self._open: dict[int, list] = {}           # batch index -> [batch, times, streams left]
        self._finished: Callable[[Batch, np.ndarray, np.ndarray, np.ndarray], None] | None = None

    def run(self, finished: Callable[[Batch, np.ndarray, np.ndarray, np.ndarray], None]) -> None:
        """Replay every op; ``finished(batch, ready, start, end)`` gets each batch (and its
        rows' cycles) once all of its ops have run."""
        self._finished = finished
        for code in self._streams:
            self.env.process(self._stream(code))
        self.env.run()
        if self._open:
            stuck = sorted(self._open)[:5]
            raise RuntimeError(f"replay ended with batches never finished (first: {stuck}); "
                               "a dependency cycle should be impossible for a validated trace")

    def _info(self, costs: SignatureCosts) -> list:
        """Per signature: (fixed, compute, latency, ((channel, busy cycles), ...), unit
        free list or None, whether the unit has several instances), the tuple an op unpacks
        in the replay loop."""
        if self._sig_info is not None and self._sig_info[0] is costs:
            return self._sig_info[1]
        free_lists = [*self._unit_free, None]   # unit index -1 (no unit) picks None
        frees = [free_lists[u] for u in costs.unit.tolist()]
        held = _held(costs.busy)
        info = list(zip(costs.fixed.tolist(), costs.compute.tolist(), costs.latency.tolist(), held, frees,
                        [f is not None and len(f) > 1 for f in frees], strict=True))
        self._sig_info = (costs, info)
        return info

    def _load_next(self) -> bool:
        batch = self.feed.next()
        if batch is None:
            return False
        ops = batch.ops
        n = len(ops)
        times = array("q", bytes(24 * n))  # ready, start, end cycles of row i at 3i, 3i+1, 3i+2
        info = self._info(batch.costs)
        deps: list = [()] * n
        with_deps = np.flatnonzero(ops.dep_counts())
        if with_deps.size:
            dep_rows, offsets = ops.dep_rows.tolist(), ops.dep_offsets.tolist()
            for i in with_deps.tolist():
                deps[i] = tuple(dep_rows[offsets[i]:offsets[i + 1]])
        stream = ops.codes["stream"]
        order = np.argsort(stream, kind="stable")
        groups = np.split(order, np.flatnonzero(np.diff(stream[order])) + 1)
        self._open[batch.index] = [batch, times, len(groups)]
        sig, issue = batch.sig, batch.issue
        for rows in groups:
            rows_list = rows.tolist()
            entries = list(zip((3 * rows).tolist(), (rows + ops.first_row).tolist(), sig[rows].tolist(),
                               issue[rows].tolist(), [deps[i] for i in rows_list], strict=True))
            self._queues[int(stream[rows_list[0]])].append((batch.index, entries, info, times))
        return True

    def _next_chunk(self, code: int):
        """The stream's next chunk of ops, loading batches as needed; None when done."""
        queue = self._queues[code]
        while not queue:
            if self.feed.loaded_rows > self._last_row[code] or not self._load_next():
                return None
        return queue.popleft()

    def _chunk_done(self, index: int) -> None:
        entry = self._open[index]
        entry[2] -= 1
        if entry[2] == 0:
            del self._open[index]
            times = np.frombuffer(entry[1], dtype=np.int64).reshape(-1, 3)
            self._finished(entry[0], times[:, 0], times[:, 1], times[:, 2])

    def _stream(self, code: int):
        """One stream: its ops in order, chunk by chunk."""
        env = self.env
        timeout, peek = env.timeout, env.peek
        waiters, done = self._waiters, self._done
        channel_free = self._channel_free
        now = env.now  # this stream's time; may run ahead of env.now (see below)
        # The next scheduled event's time. While this process runs nothing else schedules
        # an event, so it changes only when this process resumes or succeeds an event.
        horizon = peek()
        while True:
            chunk = self._next_chunk(code)
            if chunk is None:
                return
            index, entries, info, times = chunk
            for j, row, sig, issue, deps in entries:
                if deps:
                    for dep in deps:
                        if not done[dep]:
                            event = waiters.get(dep)
                            if event is None:
                                event = waiters[dep] = env.event()
                            yield event
                            now = env.now
                            horizon = peek()
                fixed, compute, latency, held, frees, several = info[sig]
                start = now if now > issue else issue
                if frees is not None:
                    slot = frees.index(min(frees)) if several else 0
                    if frees[slot] > start:
                        start = frees[slot]
                work = start + fixed
                end = work + compute
                if held:
                    memory_end = work
                    for channel, cycles in held:
                        begin = channel_free[channel]
                        finish = (begin if begin > work else work) + cycles
                        channel_free[channel] = finish
                        if finish > memory_end:
                            memory_end = finish
                    memory_end += latency
                    if memory_end > end:
                        end = memory_end
                if frees is not None:
                    frees[slot] = end
                times[j] = now
                times[j + 1] = start
                times[j + 2] = end
                # Event coarsening: when this op ends before any other scheduled event, nothing
                # else can claim a unit or channel in between, so yielding a timeout would only
                # resume this same process next. Advance this stream's clock instead. An op
                # that others wait on still yields, so they wake at its real end.
                if end > now:
                    if end >= horizon or (waiters and row in waiters):
                        yield timeout(end - env.now)
                        horizon = peek()
                    now = end
                if waiters and row in waiters:
                    if env.now < now:
                        # This stream ran ahead of the simulation (its ops since the last
                        # timeout took no time past it): wake the waiters at this op's end.
                        yield timeout(now - env.now)
                    waiters.pop(row).succeed()
                    horizon = peek()
                done[row] = 1
            self._chunk_done(index)
