"""The replay's per-op arithmetic over arrays, compiled: a stream's ops up to its next event.

:class:`hwsim.engine.replay.EventReplay` replays large traces with this kernel and small ones
with its Python loop (the two are tested equal). The equations are the replay's (see that
module); what the kernel adds is only where it stops, so that SimPy schedules every event:

* ``WAIT``: op ``pos`` has a dependency ``arg`` (a trace row) that has not run;
* ``TIMEOUT``: op ``pos - 1`` ends at ``now``, at or after the next scheduled event (the
  stream yields a timeout, then marks the op done, waking its waiters);
* ``WAITED``: op ``pos - 1`` ended at ``now`` and others wait for it (the stream catches the
  simulation up with its clock, wakes them and marks it done);
* ``DONE``: every op of the chunk has run.

State lives in arrays the stream processes share: ``unit_free[u, slot]`` and
``channel_free[c]`` (cycles each becomes free), ``done`` and ``waited`` flags by trace row.
"""

from __future__ import annotations

DONE, TIMEOUT, WAIT, WAITED = 0, 1, 2, 3
#: Traces with at least this many ops are replayed with the compiled kernel.
COMPILED_FROM_OPS = 20_000


def advance(pos, now, horizon, order, ops, dep_rows, sigs, held, unit_free, unit_count, channel_free, flags,
            times):
    """Run ops ``order[pos:]`` of a batch (positions in it) from the stream's clock ``now``
    until the next stop (see the module docstring); returns ``(pos, now, action, arg)``.

    ``ops[:, i]`` is batch row i's (trace row, host issue cycle, signature, first dependency)
    and its dependencies are ``dep_rows[ops[3, i]:ops[3, i + 1]]``; ``sigs[:, s]`` is
    signature s's (fixed, compute and latency cycles, unit or -1, first held channel), its
    held channels ``held[:, sigs[4, s]:sigs[4, s + 1]]`` as (channel, busy cycles).
    ``flags[0]`` and ``flags[1]`` are the done and waited flags by trace row. ``times[i]``
    gets row i's ready, start and end cycles. (Few arguments: a compiled call's cost grows
    with their number.)
    """
    n = order.shape[0]
    done = flags[0]
    waited = flags[1]
    while pos < n:
        i = order[pos]
        for p in range(ops[3, i], ops[3, i + 1]):
            dep = dep_rows[p]
            if done[dep] == 0:
                return pos, now, WAIT, dep
        s = ops[2, i]
        start = now if now > ops[1, i] else ops[1, i]
        u = sigs[3, s]
        slot = 0
        if u >= 0:
            for k in range(1, unit_count[u]):   # the earliest-free instance (first on ties)
                if unit_free[u, k] < unit_free[u, slot]:
                    slot = k
            if unit_free[u, slot] > start:
                start = unit_free[u, slot]
        work = start + sigs[0, s]
        end = work + sigs[1, s]
        if sigs[4, s + 1] > sigs[4, s]:
            memory_end = work
            for q in range(sigs[4, s], sigs[4, s + 1]):
                c = held[0, q]
                begin = channel_free[c]
                finish = (begin if begin > work else work) + held[1, q]
                channel_free[c] = finish
                if finish > memory_end:
                    memory_end = finish
            memory_end += sigs[2, s]
            if memory_end > end:
                end = memory_end
        if u >= 0:
            unit_free[u, slot] = end
        times[i, 0] = now
        times[i, 1] = start
        times[i, 2] = end
        row = ops[0, i]
        pos += 1
        if end > now:
            if end >= horizon:
                return pos, end, TIMEOUT, row
            now = end
        if waited[row]:
            return pos, now, WAITED, row
        done[row] = 1
    return pos, now, DONE, -1


_compiled = None


def compiled():
    """:func:`advance`, compiled with Numba (imported, and compiled or loaded from its cache,
    on first use)."""
    global _compiled
    if _compiled is None:
        from numba import njit

        _compiled = njit(cache=True, nogil=True)(advance)
    return _compiled
