"""Contention-free start times: the longest path through stream order, dependencies and the
host's launches, in one pass over the rows in trace order (a topological order)::

    start_i = max(end of the previous op of the stream, end of every dependency, issue_i)
    end_i   = start_i + d_i

:func:`place_rows` is the statement of it in plain Python; :func:`place_rows_compiled` is
the same loop compiled with Numba (``cache=True``), used for batches large enough to pay
for it. The tests check the two agree.
"""

from __future__ import annotations

import numpy as np

#: Batches with fewer rows than this are placed by the Python loop (no Numba import).
COMPILED_FROM_ROWS = 4096


def place_rows(stream: np.ndarray, sig: np.ndarray, sig_duration: np.ndarray, issue: np.ndarray,
               dep_offsets: np.ndarray, dep_rows: np.ndarray, first_row: int, end: np.ndarray, start: np.ndarray,
               stream_end: np.ndarray) -> None:
    """Fill ``end[first_row + i]`` and ``start[i]`` for every row ``i`` of a batch (int64
    cycles).

    ``stream`` holds each row's stream code (an index into ``stream_end``, the end cycle of
    each stream's last placed op, updated in place); row ``i`` lasts ``sig_duration[sig[i]]``
    cycles; ``dep_rows[dep_offsets[i]:dep_offsets[i + 1]]`` are the trace rows row ``i``
    waits for, all earlier than it.
    """
    end_list = end  # indexable by trace row
    durations = sig_duration.tolist()
    stream_list, sig_list, issue_list = stream.tolist(), sig.tolist(), issue.tolist()
    offsets, deps = dep_offsets.tolist(), dep_rows.tolist()
    ends_of_streams = stream_end.tolist()
    out = []
    for i, s in enumerate(stream_list):
        t = ends_of_streams[s]
        for p in range(offsets[i], offsets[i + 1]):
            row = deps[p]
            e = out[row - first_row] if row >= first_row else int(end_list[row])
            if e > t:
                t = e
        if issue_list[i] > t:
            t = issue_list[i]
        start[i] = t
        t += durations[sig_list[i]]
        out.append(t)
        ends_of_streams[s] = t
    end[first_row:first_row + len(out)] = out
    stream_end[:] = ends_of_streams


def _place_loop(stream, sig, sig_duration, issue, dep_offsets, dep_rows, first_row, end, start, stream_end):
    """The loop :func:`place_rows_compiled` compiles (the same equations on arrays). The end
    of the current stream's last op stays in a local while rows of one stream follow each
    other (the usual case): read back from ``stream_end`` each row, it made every row wait
    for the store of the one before."""
    if stream.shape[0] == 0:
        return
    current = stream[0]
    current_end = stream_end[current]
    for i in range(stream.shape[0]):
        s = stream[i]
        if s != current:
            stream_end[current] = current_end
            current = s
            current_end = stream_end[s]
        t = current_end
        for p in range(dep_offsets[i], dep_offsets[i + 1]):
            e = end[dep_rows[p]]
            if e > t:
                t = e
        if issue[i] > t:
            t = issue[i]
        start[i] = t
        t += sig_duration[sig[i]]
        end[first_row + i] = t
        current_end = t
    stream_end[current] = current_end


_compiled = None


def place_rows_compiled(stream, sig, sig_duration, issue, dep_offsets, dep_rows, first_row, end, start,
                        stream_end) -> None:
    """:func:`place_rows`, compiled with Numba (imported and compiled, or loaded from its
    cache, on first use)."""
    global _compiled
    if _compiled is None:
        from numba import njit

        _compiled = njit(cache=True, nogil=True)(_place_loop)
    _compiled(stream, sig, sig_duration, issue, dep_offsets, dep_rows, first_row, end, start, stream_end)


def place(stream, sig, sig_duration, issue, dep_offsets, dep_rows, first_row, end, stream_end) -> np.ndarray:
    """Place a batch with whichever of the two suits its size (same result); returns the
    rows' start cycles. Durations are looked up per signature inside the loop: a gather of
    them per row, and the starts as ends minus durations, were two more passes over the
    batch, a third of a roofline point's time on a large trace."""
    start = np.empty(len(stream), dtype=np.int64)
    if len(stream) >= COMPILED_FROM_ROWS:
        place_rows_compiled(np.ascontiguousarray(stream), np.ascontiguousarray(sig), sig_duration, issue,
                            np.ascontiguousarray(dep_offsets, dtype=np.int64),
                            np.ascontiguousarray(dep_rows, dtype=np.int64), int(first_row), end, start, stream_end)
    else:
        place_rows(stream, sig, sig_duration, issue, dep_offsets, dep_rows, first_row, end, start, stream_end)
    return start
