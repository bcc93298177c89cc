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

import gc
from array import array
from collections import deque
from collections.abc import Callable

import numpy as np
import simpy

from hwsim.engine import replay_kernel
from hwsim.engine.costs import SignatureCosts
from hwsim.engine.feed import Batch, BatchFeed
from hwsim.trace.trace import Trace


def _held(costs: SignatureCosts) -> np.ndarray:
    """Per signature (an object array), the ((channel, busy cycles), ...) pairs of the
    channels it keeps busy, in channel order."""
    offsets, channels, busy = costs.cells.held()
    channels, busy, bounds = channels.tolist(), busy.tolist(), offsets.tolist()
    held = np.empty(len(offsets) - 1, dtype=object)
    for s, (lo, hi) in enumerate(zip(bounds, bounds[1:], strict=False)):
        held[s] = tuple(zip(channels[lo:hi], busy[lo:hi], strict=True))
    return held


class EventReplay:
    """One replay of a trace; call :meth:`run` once."""

    fidelity = "event"

    def __init__(self, feed: BatchFeed, trace: Trace, compiled: bool | None = None) -> None:
        self.feed = feed
        machine = feed.machine
        self.env = simpy.Environment()
        names, last_rows = trace.stream_layout()
        vocab = trace.vocab["stream"]
        self._streams = [vocab.code(name) for name in names]
        self._last_row = dict(zip(self._streams, last_rows, strict=True))
        self._queues: dict[int, deque] = {code: deque() for code in self._streams}
        self._waiters: dict[int, simpy.Event] = {}
        #: Large traces run the compiled kernel over arrays; small ones the Python loop over
        #: lists (no compiler to load). The state below is in the form each one reads.
        self.compiled = trace.num_ops >= replay_kernel.COMPILED_FROM_OPS if compiled is None else compiled
        instances = [unit.instances for unit in machine.units.values()]
        if self.compiled:
            # By trace row: 1 once an op has run (done, set by the kernel), 1 while an event
            # waits for it (waited, set here and cleared by the kernel).
            self._flags = np.zeros((2, trace.num_ops), dtype=np.uint8)
            self._waited = self._flags[1]
            # Units' and channels' free times, in the one buffer the kernel reads.
            self._state = replay_kernel.state_buffer(instances, len(machine.channels))
        else:
            self._done = bytearray(trace.num_ops)
            self._channel_free = [0] * len(machine.channels)
            self._unit_free = [[0] * count for count in instances]
        self._sig_info: tuple[SignatureCosts, object] | None = None
        self._open: dict[int, list] = {}           # batch index -> [batch, times, streams left]
        self._finished: Callable[[Batch, np.ndarray, np.ndarray, np.ndarray], None] | None = None

    def run(self, finished: Callable[[Batch, np.ndarray, np.ndarray, np.ndarray], None]) -> None:
        """Replay every op; ``finished(batch, ready, start, end)`` gets each batch (and its
        rows' cycles) once all of its ops have run."""
        self._finished = finished
        for code in self._streams:
            self.env.process(self._stream_compiled(code) if self.compiled else self._stream(code))
        # The replay makes a few Python objects per op (op tuples, timeouts), none in
        # reference cycles; the cyclic collector would scan every live object each time
        # they add up, so it waits until the replay is over.
        collecting = gc.isenabled()
        gc.disable()
        try:
            self.env.run()
        finally:
            if collecting:
                gc.enable()
        if self._open:
            stuck = sorted(self._open)[:5]
            raise RuntimeError(f"replay ended with batches never finished (first: {stuck}); "
                               "a dependency cycle should be impossible for a validated trace")

    def _info(self, costs: SignatureCosts):
        """What the replay reads per signature, built once per set of costs: for the Python
        loop, object arrays of the ((channel, busy cycles), ...) each holds, its unit's free
        list and whether the unit has several instances; for the kernel, contiguous arrays
        with the held channels as a CSR."""
        if self._sig_info is not None and self._sig_info[0] is costs:
            return self._sig_info[1]
        if self.compiled:
            offsets, channels, busy = costs.cells.held()   # channels in order within a signature
            sigs = np.zeros((5, len(costs.unit) + 1), dtype=np.int64)
            for k, column in enumerate((costs.fixed, costs.compute, costs.latency, costs.unit)):
                sigs[k, :-1] = column
            sigs[4] = offsets
            info = (sigs, np.stack([channels, busy]).astype(np.int64))
        else:
            free_lists = np.empty(len(self._unit_free) + 1, dtype=object)
            for u, frees in enumerate(self._unit_free):
                free_lists[u] = frees   # index -1 (no unit) is the trailing None
            several = np.array([len(f) > 1 for f in self._unit_free] + [False])[costs.unit]
            info = (_held(costs), free_lists[costs.unit], several)
        self._sig_info = (costs, info)
        return info

    def _load_next(self) -> bool:
        batch = self.feed.next()
        if batch is None:
            return False
        ops, costs = batch.ops, batch.costs
        n = len(ops)
        stream = ops.codes["stream"]
        # A stable sort of 16-bit keys is a radix sort (a trace has a handful of streams).
        order = np.argsort(stream.astype(np.uint16) if len(ops.vocab["stream"]) <= 2**16 else stream, kind="stable")
        groups = np.split(order, np.flatnonzero(np.diff(stream[order])) + 1)
        if self.compiled:
            table = np.zeros((4, n + 1), dtype=np.int64)
            table[0, :n] = np.arange(ops.first_row, ops.first_row + n)
            table[1, :n] = batch.issue
            table[2, :n] = batch.sig
            table[3] = ops.dep_offsets
            sigs, held = self._info(costs)
            chunk = replay_kernel.chunk_buffer(order, table, ops.dep_rows, sigs, held)
            # ready, start, end cycles of row i (the kernel writes them into the buffer)
            self._open[batch.index] = [batch, replay_kernel.chunk_times(chunk), len(groups)]
            start = 0
            for rows in groups:   # each stream's rows: positions start:stop of ``order``
                self._queues[int(stream[rows[0]])].append((batch.index, start, start + len(rows), chunk))
                start += len(rows)
            return True
        times = array("q", bytes(24 * n))  # ready, start, end cycles of row i at 3i, 3i+1, 3i+2
        held, frees, several = self._info(costs)
        empty = np.empty(1, dtype=object)
        empty[0] = ()
        deps = np.repeat(empty, n)
        with_deps = np.flatnonzero(ops.dep_counts())
        if with_deps.size:
            dep_rows, offsets = ops.dep_rows.tolist(), ops.dep_offsets.tolist()
            for i in with_deps.tolist():
                deps[i] = tuple(dep_rows[offsets[i]:offsets[i + 1]])
        self._open[batch.index] = [batch, times, len(groups)]
        for rows in groups:
            sig = batch.sig[rows]
            # One tuple per op with everything the replay loop reads (see _stream).
            entries = list(zip((3 * rows).tolist(), (rows + ops.first_row).tolist(), batch.issue[rows].tolist(),
                               deps[rows].tolist(), costs.fixed[sig].tolist(), costs.compute[sig].tolist(),
                               costs.latency[sig].tolist(), held[sig].tolist(), frees[sig].tolist(),
                               several[sig].tolist(), strict=True))
            self._queues[int(stream[rows[0]])].append((batch.index, entries, times))
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
            times = entry[1] if self.compiled else np.frombuffer(entry[1], dtype=np.int64).reshape(-1, 3)
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
            index, entries, times = chunk
            for j, row, issue, deps, fixed, compute, latency, held, frees, several in entries:
                if deps:
                    for dep in deps:
                        if not done[dep]:
                            event = waiters.get(dep)
                            if event is None:
                                event = waiters[dep] = env.event()
                            yield event
                            # Other streams waiting for the same op resume at this time too, but
                            # not through the queue (SimPy runs an event's callbacks one after the
                            # other), so nothing of this stream may happen ahead of them: if its
                            # previous op ends later (the stream ran ahead), it first waits for
                            # that end, else it takes no step past now without a timeout.
                            if now > env.now:
                                yield timeout(now - env.now)
                                horizon = peek()
                            else:
                                now = env.now
                                horizon = now
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
                # resume this same process next. Advance this stream's clock instead.
                if end > now:
                    if end >= horizon:
                        yield timeout(end - env.now)
                        horizon = peek()
                    now = end
                if waiters and row in waiters:
                    if env.now < now:
                        # Others wait for this op: catch the simulation up with this stream's
                        # clock first, so that they wake at the op's real end.
                        yield timeout(now - env.now)
                    waiters.pop(row).succeed()
                    horizon = peek()
                done[row] = 1
            self._chunk_done(index)

    def _stream_compiled(self, code: int):
        """One stream, its ops run by the compiled kernel between SimPy events (the same
        equations and the same events as :meth:`_stream`)."""
        env = self.env
        timeout, peek = env.timeout, env.peek
        waiters = self._waiters
        # Memoryviews of the waited flags and of the stream's registers: their item access
        # costs a third of a NumPy array's, and the loop below reads or writes them at every event.
        waited = memoryview(self._waited)
        kernel = replay_kernel.compiled()
        state, flags = self._state, self._flags
        TIMEOUT, WAIT = replay_kernel.TIMEOUT, replay_kernel.WAIT  # noqa: N806
        NOW, HORIZON, ROW, NO_HORIZON = (replay_kernel.NOW, replay_kernel.HORIZON,  # noqa: N806
                                         replay_kernel.ROW, replay_kernel.NO_HORIZON)
        registers = replay_kernel.registers(env.now, peek())
        reg = memoryview(registers)
        while True:
            chunk = self._next_chunk(code)
            if chunk is None:
                return
            index, pos, stop, buffer = chunk
            for action in kernel(pos, stop, buffer, state, flags, registers):
                if action == TIMEOUT:   # most events: an op ends at or after the next event
                    yield timeout(reg[NOW] - env.now)
                elif action == WAIT:
                    row = reg[ROW]
                    event = waiters.get(row)
                    if event is None:
                        event = waiters[row] = env.event()
                        waited[row] = 1
                    yield event
                    # Other streams waiting for the same op resume now too (see _stream).
                    now = reg[NOW]
                    if now > env.now:
                        yield timeout(now - env.now)
                    else:
                        reg[NOW] = env.now
                        reg[HORIZON] = env.now
                        continue
                else:   # WAKE (the kernel has cleared the op's waited flag)
                    now = reg[NOW]
                    if env.now < now:   # the stream ran ahead of the simulation
                        yield timeout(now - env.now)
                    waiters.pop(reg[ROW]).succeed()
                horizon = peek()
                reg[HORIZON] = horizon if horizon < NO_HORIZON else NO_HORIZON
            self._chunk_done(index)
