"""The event-driven replay of a trace on a machine, on SimPy, in integer cycles.

Each stream is a SimPy process that issues its ops in order. An op waits for its
dependencies and for the host to have launched it, then claims its compute unit (the
earliest-free instance) and the memory channels its bytes cross. Units and channels are
modelled as reservation timelines: each remembers the cycle it becomes free, and an op's
use of it starts at ``max(op work start, free)`` — a FIFO queue in the order ops claim it,
which SimPy makes the order of simulated time (ties broken by event order, which is
deterministic). An op therefore costs one SimPy timeout, plus one event per dependency it
actually has to wait for:

    start   = max(ready, host issue, unit free)
    work    = start + fixed                                     (the kernel's fixed cost)
    channel = max(work, channel free) + bytes / bandwidth       for every channel crossed
    end     = max(work + compute, max(channel ends) + latency)

Compute and memory overlap within an op (double buffering); contention between ops shows
up as queueing on units and channels. Traces stream in batches (Parquet row groups): a
stream that runs out of ops loads the next batch, so a trace larger than memory replays.
"""

from __future__ import annotations

from array import array
from collections import deque
from collections.abc import Callable, Iterator

import numpy as np
import pandas as pd
import simpy

from hwsim.components.host import HostClock
from hwsim.engine.costs import batch_costs
from hwsim.engine.machine import Machine
from hwsim.engine.records import static_records
from hwsim.trace.trace import Trace


class Replay:
    """One replay of ``trace`` on ``machine``; call :meth:`run` once."""

    def __init__(self, machine: Machine, trace: Trace, batch_rows: int = 65536,
                 on_batch: Callable[[int], None] | None = None) -> None:
        self.machine = machine
        self._on_batch = on_batch
        self.trace = trace
        self.env = simpy.Environment()
        self._batches: Iterator = trace.iter_batches(batch_rows)
        self._exhausted = False
        self._rows_loaded = 0
        self.records: list[dict] = []  # per batch: the time-independent record columns
        self.times: list[array] = []  # per batch: ready, start, end cycles interleaved
        self._queues: dict[str, deque] = {}
        self._pending: set[int] = set()
        self._waiters: dict[int, simpy.Event] = {}
        self.channel_free = [0] * len(machine.channels)
        self.channel_busy = np.zeros(len(machine.channels), dtype=np.int64)
        self.channel_bytes = np.zeros(len(machine.channels), dtype=np.int64)
        self.channel_energy = np.zeros(len(machine.channels), dtype=np.float64)
        self.unit_free = [[0] * unit.instances for unit in machine.units.values()]
        self._host = HostClock(machine.host)

    def run(self) -> None:
        """Replay every op; afterwards :attr:`records` and :attr:`times` hold the results."""
        for stream in self.trace.streams():
            queue = self._queues[stream] = deque()
            self.env.process(self._stream(queue))
        self.env.run()
        if self._pending:
            stuck = sorted(self._pending)[:5]
            raise RuntimeError(f"replay ended with ops never run (first: {stuck}); "
                               "a dependency cycle should be impossible for a validated trace")

    def _load_next(self) -> bool:
        frame = next(self._batches, None)
        if frame is None:
            self._exhausted = True
            return False
        costs = batch_costs(self.machine, frame, self.trace.source, self._rows_loaded + 1, self._host)
        self._rows_loaded += len(frame)
        if self._on_batch is not None:
            self._on_batch(len(frame))
        self.records.append(static_records(costs, self.machine))
        n = len(frame)
        times = array("q", bytes(24 * n))  # ready, start, end cycles of op i at 3i, 3i+1, 3i+2
        self.times.append(times)
        self.channel_busy += costs.busy.sum(axis=0)
        self.channel_bytes += costs.bytes.sum(axis=0)
        self.channel_energy += costs.channel_energy_pj
        # Each op claims the channels where its busy row is non-zero; ops share a handful of
        # patterns, so the channel index tuples are built once per pattern.
        mask = costs.busy > 0
        bits = 1 << np.arange(mask.shape[1], dtype=np.int64)
        pattern_codes, patterns = pd.factorize(mask @ bits)
        empty = np.empty(1, dtype=object)
        empty[0] = ()
        sets_by_pattern = np.repeat(empty, len(patterns))
        held = np.repeat(empty, n)  # per op: the cycles it holds each claimed channel
        for code, pattern in enumerate(patterns.tolist()):
            if not pattern:
                continue
            channels = np.flatnonzero(pattern & bits).tolist()
            sets_by_pattern[code] = tuple(channels)
            rows = np.flatnonzero(pattern_codes == code)
            columns = [costs.busy[rows, c].tolist() for c in channels]
            held[rows] = np.fromiter(zip(*columns, strict=True), dtype=object, count=len(rows))
        channel_sets = sets_by_pattern[pattern_codes].tolist()
        channel_cycles = held.tolist()
        free_lists = [*self.unit_free, None]  # unit index -1 (no unit) picks None
        columns = (costs.op_ids, costs.deps, [free_lists[u] for u in costs.unit.tolist()],
                   costs.issue.tolist(), costs.fixed.tolist(), costs.compute.tolist(),
                   costs.latency.tolist(), channel_sets, channel_cycles, times)
        stream_codes, stream_names = pd.factorize(np.asarray(costs.streams, dtype=object))
        for code, stream in enumerate(stream_names):
            self._queues[stream].append((columns, np.flatnonzero(stream_codes == code).tolist()))
        self._pending.update(costs.op_ids)
        return True

    def _stream(self, queue: deque):
        """One stream: its ops in order. ``queue`` holds (batch columns, row indices) chunks."""
        env = self.env
        timeout, peek = env.timeout, env.peek
        pending, waiters = self._pending, self._waiters
        channel_free = self.channel_free
        now = env.now  # this stream's time; may run ahead of env.now (see below)
        while True:
            if not queue:
                while not queue and not self._exhausted:
                    self._load_next()
                if not queue:
                    return
            (op_ids, all_deps, units, issues, fixeds, computes, latencies, channel_sets,
             channel_cycles, times), rows = queue.popleft()
            for i in rows:
                op_id = op_ids[i]
                for dep in all_deps[i]:
                    if dep in pending:
                        event = waiters.get(dep)
                        if event is None:
                            event = waiters[dep] = env.event()
                        yield event
                        now = env.now
                start = now if now > issues[i] else issues[i]
                frees = units[i]
                if frees is not None:
                    slot = 0 if len(frees) == 1 else frees.index(min(frees))
                    if frees[slot] > start:
                        start = frees[slot]
                work = start + fixeds[i]
                end = work + computes[i]
                channels = channel_sets[i]
                if channels:
                    memory_end = work
                    # Equal lengths by construction; zip's strict check costs ~5% of the replay.
                    for channel, cycles in zip(channels, channel_cycles[i]):  # noqa: B905
                        begin = channel_free[channel]
                        finish = (begin if begin > work else work) + cycles
                        channel_free[channel] = finish
                        if finish > memory_end:
                            memory_end = finish
                    memory_end += latencies[i]
                    if memory_end > end:
                        end = memory_end
                if frees is not None:
                    frees[slot] = end
                j = 3 * i
                times[j] = now
                times[j + 1] = start
                times[j + 2] = end
                # Event coarsening: when this op ends before any other scheduled event, nothing
                # else can claim a unit or channel in between, so yielding a timeout would only
                # resume this same process next. Advance this stream's clock instead. An op
                # that others wait on still yields, so they wake at its real end.
                if end > now:
                    if op_id in waiters or end >= peek():
                        yield timeout(end - env.now)
                    now = end
                pending.discard(op_id)
                if waiters:
                    event = waiters.pop(op_id, None)
                    if event is not None:
                        event.succeed()
