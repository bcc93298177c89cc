"""Heap settings for runs: freed memory is kept for the next run's arrays.

A run allocates and frees many arrays of the trace's size: costs, layouts, chunk buffers,
timings, records. With glibc's defaults, the free memory at the top of the heap goes back
to the operating system as soon as it exceeds 128 KiB to 64 MiB (a threshold that moves
with the allocations seen), and the next run faults every page of its arrays back in.
Measured on the demo's 44,771-op WorldKV trace, that made an event replay 1.5-2x slower
(6-7 ms against 3.5-4 ms) in a process whose heap had not been grown by other work first,
such as a fresh ``hwsim run`` or a sweep worker.

:func:`keep_freed_memory` asks glibc (``mallopt``) to keep up to :data:`TOP_PAD_BYTES`
free at the top of the heap, and to serve arrays below :data:`MMAP_THRESHOLD_BYTES` from
the heap (glibc's own upper bound for that threshold) rather than from pages mapped and
unmapped per array. Larger arrays are still mapped and given back when freed. With
another C library, or on another system, it does nothing.
"""

from __future__ import annotations

import ctypes
import sys

#: Free bytes glibc keeps at the top of the heap (``M_TOP_PAD``).
TOP_PAD_BYTES = 64 * 2**20
#: Allocations from this size up are mapped on their own (``M_MMAP_THRESHOLD``).
MMAP_THRESHOLD_BYTES = 32 * 2**20
# mallopt parameters, from glibc's malloc.h.
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3

_applied: bool | None = None


def keep_freed_memory() -> bool:
    """Apply the settings once per process; True when glibc took them."""
    global _applied
    if _applied is None:
        _applied = _mallopt(_M_TOP_PAD, TOP_PAD_BYTES) and _mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
    return _applied


def _mallopt(param: int, value: int) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version   # glibc only: musl has no such function  # noqa: B018
        return libc.mallopt(param, value) == 1
    except (OSError, AttributeError):
        return False
