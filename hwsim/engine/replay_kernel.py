"""The replay's per-op arithmetic over arrays, compiled: a stream's ops from one event to the next.

:class:`hwsim.engine.replay.EventReplay` replays large traces with this kernel and small ones
with its Python loop (the two are tested equal). The equations are the replay's (see that
module); what the kernel adds is only where it stops, so that SimPy schedules every event.
:func:`run_ops` is a generator over a chunk's ops that yields at each stop (the row it names
is in the stream's register ``ROW``, its clock in ``NOW``):

* ``WAIT``: the next op has a dependency (the row) that has not run; the stream waits for it;
* ``TIMEOUT``: the op (the row) ends at ``NOW``, at or after the next scheduled event; the
  stream yields a timeout to it;
* ``WAKE``: the op (the row) has ended at ``NOW`` and others wait for it; the stream catches
  the simulation up with its clock if it ran ahead, and wakes them.

The kernel marks an op done once it has run and its waiters are woken, and the generator
ends when every op of the chunk has run.

State lives in arrays the stream processes share: ``unit_free[u, slot]`` and
``channel_free[c]`` (cycles each becomes free), ``done`` and ``waited`` flags by trace row.
"""

from __future__ import annotations

import numpy as np

#: What :func:`run_ops` yields at a stop.
TIMEOUT, WAIT, WAKE = 1, 2, 3
#: Traces with at least this many ops are replayed with the compiled kernel.
COMPILED_FROM_OPS = 20_000
#: Words before the sections of a chunk buffer (see :func:`chunk_buffer`).
CHUNK_HEADER = 10
#: Words before the sections of a state buffer (see :func:`state_buffer`).
STATE_HEADER = 3


def chunk_buffer(order: np.ndarray, table: np.ndarray, dep_rows: np.ndarray, sigs: np.ndarray,
                 held: np.ndarray) -> np.ndarray:
    """One int64 buffer holding what :func:`advance` reads of a batch, and room for what it
    writes: the batch's rows in stream order (``order``), its ``table`` (4 x n+1), dependency
    rows, signature table ``sigs`` (5 x g+1), held channels ``held`` (2 x h) and the rows'
    ready/start/end cycles (n x 3, zero). A header of offsets comes first.

    (One array instead of seven: a compiled call's cost grows with its array arguments, and
    the stream processes call the kernel once per SimPy event.)
    """
    n = len(order)
    parts = [np.asarray(order, dtype=np.int64), table.ravel(), np.asarray(dep_rows, dtype=np.int64),
             sigs.ravel(), held.ravel(), np.zeros(3 * n, dtype=np.int64)]
    offsets = np.cumsum([CHUNK_HEADER] + [len(p) for p in parts])
    header = [n, offsets[0], offsets[1], offsets[2], len(parts[2]), offsets[3], sigs.shape[1], offsets[4],
              held.shape[1], offsets[5]]
    return np.concatenate([np.asarray(header, dtype=np.int64), *parts])


def chunk_times(chunk: np.ndarray) -> np.ndarray:
    """The (n x 3) ready/start/end cycles section of ``chunk`` (a view)."""
    n, start = int(chunk[0]), int(chunk[9])
    return chunk[start:start + 3 * n].reshape(n, 3)


def state_buffer(instances: list[int], channels: int) -> np.ndarray:
    """The int64 buffer of a replay's shared state: instances per unit, when each unit
    instance becomes free (units x most instances) and when each channel does."""
    units, most = len(instances), max(instances, default=1)
    state = np.zeros(STATE_HEADER + units + units * most + channels, dtype=np.int64)
    state[:STATE_HEADER] = units, most, channels
    state[STATE_HEADER:STATE_HEADER + units] = instances
    return state


#: Slots of a stream's register buffer (see :func:`run_ops`).
NOW, HORIZON, ROW = 0, 1, 2
#: A horizon past every cycle a replay reaches (SimPy's is infinity when nothing is scheduled).
NO_HORIZON = 2**62


def registers(now: int, horizon: float) -> np.ndarray:
    """A stream's register buffer for :func:`run_ops`: its clock, the next scheduled event's
    cycle, the row of the last stop."""
    return np.array([now, min(horizon, NO_HORIZON), -1], dtype=np.int64)


def run_ops(pos, stop, chunk, state, flags, regs):
    """Run ops ``order[pos:stop]`` of a chunk buffer (positions in the batch) from the
    stream's clock ``regs[NOW]``, yielding at each stop (see the module docstring): before a
    yield the kernel writes its clock to ``regs[NOW]`` and the op's (or, for ``WAIT``, the
    dependency's) trace row to ``regs[ROW]``; after it, it reads the clock and the next event's
    cycle ``regs[HORIZON]`` back, which the stream process may have moved. The generator ends
    when every op has run.

    A generator, not a function returning at each stop: resuming it costs the stream process
    about a third of a call with seven arguments, once per SimPy event.

    In ``chunk`` (see :func:`chunk_buffer`), ``ops[:, i]`` is batch row i's (trace row, host
    issue cycle, signature, first dependency) and its dependencies are
    ``dep_rows[ops[3, i]:ops[3, i + 1]]``; ``sigs[:, s]`` is signature s's (fixed, compute and
    latency cycles, unit or -1, first held channel), its held channels
    ``held[:, sigs[4, s]:sigs[4, s + 1]]`` as (channel, busy cycles); ``times[i]`` gets row
    i's ready, start and end cycles. ``state`` is :func:`state_buffer`'s; ``flags[0]`` and
    ``flags[1]`` are the done and waited flags by trace row.

    The sections are read at offsets into the flat buffers, not through views of them
    (making a dozen array views took about as long as a step).
    """
    n1 = chunk[0] + 1
    order = chunk[1]
    row_of, issue_of, sig_of, deps_of = chunk[2], chunk[2] + n1, chunk[2] + 2 * n1, chunk[2] + 3 * n1
    dep_rows = chunk[3]
    g1 = chunk[6]
    fixed_of, compute_of, latency_of, unit_of, held_of = (chunk[5], chunk[5] + g1, chunk[5] + 2 * g1,
                                                          chunk[5] + 3 * g1, chunk[5] + 4 * g1)
    held_channel, held_busy = chunk[7], chunk[7] + chunk[8]
    times = chunk[9]
    units, most = state[0], state[1]
    unit_count = STATE_HEADER
    unit_free = STATE_HEADER + units
    channel_free = STATE_HEADER + units + units * most
    now, horizon = regs[NOW], regs[HORIZON]
    while pos < stop:
        i = chunk[order + pos]
        p, last_dep = chunk[deps_of + i], chunk[deps_of + i + 1]
        while p < last_dep:
            dep = chunk[dep_rows + p]
            if flags[0, dep] == 0:
                regs[NOW], regs[ROW] = now, dep
                yield WAIT
                now, horizon = regs[NOW], regs[HORIZON]
                continue   # done flags are never cleared: the earlier dependencies stay done
            p += 1
        s = chunk[sig_of + i]
        issue = chunk[issue_of + i]
        start = now if now > issue else issue
        u = chunk[unit_of + s]
        slot = 0
        if u >= 0:
            frees = unit_free + u * most
            for k in range(1, state[unit_count + u]):   # the earliest-free instance (first on ties)
                if state[frees + k] < state[frees + slot]:
                    slot = k
            if state[frees + slot] > start:
                start = state[frees + slot]
        work = start + chunk[fixed_of + s]
        end = work + chunk[compute_of + s]
        first, last = chunk[held_of + s], chunk[held_of + s + 1]
        if last > first:
            memory_end = work
            for q in range(first, last):
                c = channel_free + chunk[held_channel + q]
                begin = state[c]
                finish = (begin if begin > work else work) + chunk[held_busy + q]
                state[c] = finish
                if finish > memory_end:
                    memory_end = finish
            memory_end += chunk[latency_of + s]
            if memory_end > end:
                end = memory_end
        if u >= 0:
            state[unit_free + u * most + slot] = end
        chunk[times + 3 * i] = now
        chunk[times + 3 * i + 1] = start
        chunk[times + 3 * i + 2] = end
        row = chunk[row_of + i]
        pos += 1
        if end > now:
            now = end
            if end >= horizon:
                regs[NOW], regs[ROW] = now, row
                yield TIMEOUT
                now, horizon = regs[NOW], regs[HORIZON]
        # Others may have started waiting for the op during its timeout.
        if flags[1, row]:
            flags[1, row] = 0
            regs[NOW], regs[ROW] = now, row
            yield WAKE
            now, horizon = regs[NOW], regs[HORIZON]
        flags[0, row] = 1
    regs[NOW] = now


_compiled = None


def compiled():
    """:func:`run_ops`, compiled with Numba (imported, and compiled or loaded from its cache,
    on first use)."""
    global _compiled
    if _compiled is None:
        from numba import njit

        _compiled = njit(cache=True, nogil=True)(run_ops)
    return _compiled
