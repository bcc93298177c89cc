"""The event-driven replay of a trace on a machine, on SimPy, in integer cycles.

Each stream is a SimPy process that issues its ops in order. An op waits for its
dependencies, then claims its compute unit (the earliest-free instance) and the memory
channels its bytes cross. Units and channels are modelled as reservation timelines: each
remembers the cycle it becomes free, and an op's use of it starts at ``max(op start, free)``
— a FIFO queue in the order ops claim it, which SimPy makes the order of simulated time
(ties broken by event order, which is deterministic). An op therefore costs one SimPy
timeout, plus one event per dependency it actually has to wait for:

    start   = max(ready, unit free)
    channel = max(start, channel free) + bytes / bandwidth      for every channel crossed
    end     = max(start + compute, max(channel ends) + latency)

Compute and memory overlap within an op (double buffering); contention between ops shows
up as queueing on units and channels. Traces stream in batches (Parquet row groups): a
stream that runs out of ops loads the next batch, so a trace larger than memory replays.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator

import numpy as np
import simpy

from hwsim.engine.costs import batch_costs
from hwsim.engine.machine import Machine
from hwsim.engine.records import static_records
from hwsim.trace.trace import Trace


class Replay:
    """One replay of ``trace`` on ``machine``; call :meth:`run` once."""

    def __init__(self, machine: Machine, trace: Trace, batch_rows: int = 65536) -> None:
        self.machine = machine
        self.trace = trace
        self.env = simpy.Environment()
        self._batches: Iterator = trace.iter_batches(batch_rows)
        self._exhausted = False
        self._rows_loaded = 0
        self.records: list = []  # per batch: the time-independent record columns
        self.times: list[tuple[list[int], list[int], list[int]]] = []  # ready, start, end
        self._ops: list[tuple | None] = []  # per batch: per-op tuples used by the event loop
        self._left: list[int] = []  # per batch: ops not yet finished (to drop _ops early)
        self._queues: dict[str, deque] = {}
        self._pending: set[int] = set()
        self._waiters: dict[int, simpy.Event] = {}
        self.channel_free = [0] * len(machine.channels)
        self.channel_busy = np.zeros(len(machine.channels), dtype=np.int64)
        self.channel_bytes = np.zeros(len(machine.channels), dtype=np.int64)
        self.unit_free = [[0] * unit.instances for unit in machine.units.values()]

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
        costs = batch_costs(self.machine, frame, self.trace.source, self._rows_loaded + 1)
        self._rows_loaded += len(frame)
        b = len(self.records)
        self.records.append(static_records(costs, self.machine))
        n = len(frame)
        self._left.append(n)
        self.times.append(([0] * n, [0] * n, [0] * n))
        self.channel_busy += costs.busy.sum(axis=0)
        self.channel_bytes += costs.bytes.sum(axis=0)
        rows, cols = np.nonzero(costs.busy)
        cycles = costs.busy[rows, cols].tolist()
        claims: list[list[tuple[int, int]]] = [[] for _ in range(n)]
        for r, c, cyc in zip(rows.tolist(), cols.tolist(), cycles, strict=True):
            claims[r].append((c, cyc))
        self._ops.append(tuple(zip(costs.op_ids, costs.deps, costs.unit.tolist(), costs.compute.tolist(),
                                   costs.latency.tolist(), claims, strict=True)))
        for i, stream in enumerate(costs.streams):
            self._queues[stream].append((b, i))
        self._pending.update(costs.op_ids)
        return True

    def _stream(self, queue: deque):
        env = self.env
        pending, waiters = self._pending, self._waiters
        channel_free, unit_free = self.channel_free, self.unit_free
        while True:
            if not queue:
                while not queue and not self._exhausted:
                    self._load_next()
                if not queue:
                    return
            b, i = queue.popleft()
            op_id, deps, unit, compute, latency, claims = self._ops[b][i]
            for dep in deps:
                if dep in pending:
                    event = waiters.get(dep)
                    if event is None:
                        event = waiters[dep] = env.event()
                    yield event
            now = env.now
            start = now
            if unit >= 0:
                frees = unit_free[unit]
                slot = 0 if len(frees) == 1 else frees.index(min(frees))
                if frees[slot] > start:
                    start = frees[slot]
            end = start + compute
            if claims:
                memory_end = start
                for channel, cycles in claims:
                    begin = channel_free[channel]
                    if begin < start:
                        begin = start
                    finish = begin + cycles
                    channel_free[channel] = finish
                    if finish > memory_end:
                        memory_end = finish
                memory_end += latency
                if memory_end > end:
                    end = memory_end
            if unit >= 0:
                frees[slot] = end
            ready_t, start_t, end_t = self.times[b]
            ready_t[i], start_t[i], end_t[i] = now, start, end
            if end > now:
                yield env.timeout(end - now)
            pending.discard(op_id)
            self._left[b] -= 1
            if not self._left[b]:
                self._ops[b] = None
            event = waiters.pop(op_id, None)
            if event is not None:
                event.succeed()
