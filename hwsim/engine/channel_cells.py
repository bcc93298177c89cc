"""The memory-channel costs of signatures as sparse cells: (signature, channel) pairs that
move bytes, keep the channel busy or spend energy, and nothing for the rest.

An op crosses a few channels (a tier or two, a link direction, the fabric ports of its
collective) and a machine of several devices has hundreds, so a dense ``[signatures,
channels]`` table would be almost all zeros; the cells are what the cost pass writes and
what the timing, the records and the totals read::

    sig[i], channel[i]   the cell's signature and channel (sorted by signature, then channel)
    bytes[i]             int64 bytes of one op through the channel
    busy[i]              int64 cycles the channel is occupied by them
    energy[i]            float64 pJ of those bytes

``offsets[s]:offsets[s + 1]`` are signature ``s``'s cells (a CSR layout). :meth:`dense`
gives the table for callers that want one (a machine of few channels).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

_EMPTY_I = np.zeros(0, dtype=np.int64)


@dataclass(frozen=True)
class ChannelCells:
    """The nonzero (signature, channel) cells of ``signatures`` signatures on ``channels``
    channels (see the module docstring)."""

    signatures: int
    channels: int
    sig: np.ndarray
    channel: np.ndarray
    bytes: np.ndarray
    busy: np.ndarray
    energy: np.ndarray
    offsets: np.ndarray = field(repr=False)
    #: :func:`_in_order_steps` of the signatures' segments, when known with the cells.
    sum_steps: list | None = field(default=None, repr=False, compare=False)

    def dense(self, name: str) -> np.ndarray:
        """``[signatures, channels]`` table of one of ``bytes``, ``busy``, ``energy``."""
        values = getattr(self, name)
        out = np.zeros((self.signatures, self.channels), dtype=values.dtype)
        out[self.sig, self.channel] = values
        return out

    def _per_signature(self, values: np.ndarray, combine: np.ufunc, dtype) -> np.ndarray:
        """``combine`` folded over each signature's cells of ``values``, in channel order (0
        for a signature with no cell), by :func:`_fold_steps`."""
        out = np.zeros(self.signatures, dtype=dtype)
        has = np.flatnonzero(np.diff(self.offsets))
        if has.size:
            first = self.offsets[has]
            steps = self.sum_steps if self.sum_steps is not None else _in_order_steps(first, len(values))
            out[has] = _fold_steps(combine, values, first, steps)
        return out

    def max_busy(self) -> np.ndarray:
        """int64 per signature: the busiest channel's cycles (0 with no cell); computed
        once (the op durations and the naming of unit-less transfers both need it)."""
        return self._max_busy

    @cached_property
    def _max_busy(self) -> np.ndarray:
        out = self._per_signature(self.busy, np.maximum, np.int64)
        out.flags.writeable = False
        return out

    def energy_sum(self) -> np.ndarray:
        """float64 per signature: pJ over its channels (cells added in channel order)."""
        return self._per_signature(self.energy, np.add, np.float64)

    def busiest_channel(self) -> np.ndarray:
        """int64 per signature: the channel it keeps busiest (the first on ties), -1 for a
        signature that keeps none busy."""
        out = np.full(self.signatures, -1, dtype=np.int64)
        peak = self.max_busy()
        top = (self.busy == peak[self.sig]) & (self.busy > 0)
        cells = np.flatnonzero(top)
        if cells.size:
            sigs = self.sig[cells]
            first = np.concatenate(([True], sigs[1:] != sigs[:-1]))   # cells are in channel order per signature
            out[sigs[first]] = self.channel[cells[first]]
        return out

    def held(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The cells that keep a channel busy: (signature offsets, channels, busy cycles),
        the CSR the event replay reads."""
        keep = self.busy > 0
        return _offsets(self.sig[keep], self.signatures), self.channel[keep], self.busy[keep]

    def merged(self, other: ChannelCells) -> ChannelCells:
        """These cells and ``other``'s, of other signatures (no signature has cells in
        both): one sorted set, nothing added up."""
        if not len(other.sig):
            return self
        if not len(self.sig):
            return other
        key = np.concatenate([self.sig * self.channels + self.channel, other.sig * other.channels + other.channel])
        order = np.argsort(key, kind="stable")   # two sorted runs: a merge
        fields = [np.concatenate([getattr(self, name), getattr(other, name)])[order]
                  for name in ("sig", "channel", "bytes", "busy", "energy")]
        offsets = self.offsets + other.offsets   # per signature, one of the two counts is zero
        return ChannelCells(self.signatures, self.channels, *fields, offsets)

    def scaled_energy(self, scale: np.ndarray) -> ChannelCells:
        """These cells with each signature's energy multiplied by ``scale[signature]``."""
        return ChannelCells(self.signatures, self.channels, self.sig, self.channel, self.bytes, self.busy,
                            self.energy * scale[self.sig], self.offsets, self.sum_steps)


def _offsets(sig: np.ndarray, signatures: int) -> np.ndarray:
    """CSR row pointers of cells sorted by signature: signature ``s``'s are
    ``offsets[s]:offsets[s + 1]``."""
    offsets = np.zeros(signatures + 1, dtype=np.int64)
    np.cumsum(np.bincount(sig, minlength=signatures), out=offsets[1:])
    return offsets


def _column(value, n: int, dtype) -> np.ndarray:
    """``value`` as an array of ``n`` (a scalar repeated)."""
    array = np.asarray(value, dtype=dtype)
    return array if array.ndim else np.full(n, array, dtype=dtype)


def _in_order_steps(first: np.ndarray, n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """For :func:`_fold_steps` over segments of ``n`` values starting at ``first``: per
    position ``k >= 1`` in a segment, the segments longer than ``k`` and where their
    ``k``-th value is (the same for every run of one layout, so found once)."""
    length = np.diff(np.r_[first, n])
    steps = []
    for k in range(1, int(length.max(initial=1))):
        longer = np.flatnonzero(length > k)
        steps.append((longer, first[longer] + k))
    return steps


def _fold_steps(combine: np.ufunc, values: np.ndarray, first: np.ndarray,
                steps: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """``combine`` (``np.add``, ``np.maximum``) folded over each segment of ``values``
    starting at ``first``, left to right (``((a + b) + c)``, as adding into a dense table
    does; ``np.add.reduceat`` may associate a float segment otherwise). Segments are short,
    a cell or two: a loop over the position in the segment (``steps``, see
    :func:`_in_order_steps`), vectorised over segments, beats ``reduceat``."""
    out = values[first].copy()
    for longer, at in steps:
        out[longer] = combine(out[longer], values[at])
    return out


class CellsLayout:
    """Where contributions added as a fixed sequence of parts land among the sorted cells:
    part ``k`` adds to the cells (``rows[k][i]``, ``channel[k]``). The sort and the segments
    of equal cells are found once; :meth:`build` then takes the parts' values, which may
    change from run to run (a sweep point changes bandwidths, not the channels an op
    crosses). Equal cells add up in part order, as :class:`CellsBuilder`'s do."""

    def __init__(self, signatures: int, channels: int, rows: list[np.ndarray], channel: list,
                 nbytes: list | None = None) -> None:
        self.signatures, self.channels = signatures, channels
        self.lengths = [len(r) for r in rows]
        self.nbytes = None
        if not rows:
            return
        every_row = np.concatenate([np.asarray(r, dtype=np.int64) for r in rows])
        every_channel = np.concatenate([_column(c, n, np.int64) for c, n in zip(channel, self.lengths, strict=True)])
        key = every_row * channels + every_channel
        self.order = np.argsort(key, kind="stable")   # equal cells keep the order they were added in
        key = key[self.order]
        self.first = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
        # No two parts add to one cell (most ops cross each channel once): values then need
        # no adding up, only the reordering.
        self._distinct = len(self.first) == len(key)
        self.key = key[self.first]
        self._steps = _in_order_steps(self.first, len(key))
        if nbytes is not None:   # bytes fixed with the layout: added up once
            self.nbytes = self._added(self._gathered(nbytes, np.int64))
        # The cells when none of them is all zero (the usual case), and their segments.
        self.sig, self.channel = np.divmod(self.key, channels)
        self.offsets = _offsets(self.sig, signatures)
        counts = np.diff(self.offsets)
        self._sig_steps = _in_order_steps(self.offsets[np.flatnonzero(counts)], len(self.key))

    @property
    def size(self) -> int:
        """Values the parts add, all parts together."""
        return sum(self.lengths)

    def positions(self, part: int) -> np.ndarray:
        """Where part ``part``'s values go in cell order (the order :meth:`build_gathered`
        takes them in): int64, one per row of the part."""
        inverse, starts = self._part_positions
        return inverse[starts[part]:starts[part + 1]]

    @cached_property
    def _part_positions(self) -> tuple[np.ndarray, list[int]]:
        """The cell-order position of every value the parts add, and where each part's start."""
        inverse = np.empty(self.size, dtype=np.int64)
        inverse[self.order] = np.arange(self.size, dtype=np.int64)
        return inverse, np.cumsum([0, *self.lengths]).tolist()

    def _added(self, values: np.ndarray) -> np.ndarray:
        """Integer values in cell order (a new array), the parts of each cell added up."""
        return values if self._distinct else _fold_steps(np.add, values, self.first, self._steps)

    def _gathered(self, values: list, dtype) -> np.ndarray:
        """The parts' values (arrays per row, or scalars) in cell order."""
        return np.concatenate([_column(v, n, dtype) for v, n in zip(values, self.lengths, strict=True)])[self.order]

    def build(self, nbytes: list | None, busy: list, energy: list) -> ChannelCells:
        """The cells of the parts' bytes (None: those given to the layout), busy cycles and
        pJ (per part: an array per row, or a scalar), equal ones added up, all-zero ones left
        out, sorted by (signature, channel)."""
        if not self.lengths:
            return ChannelCells(self.signatures, self.channels, _EMPTY_I, _EMPTY_I, _EMPTY_I, _EMPTY_I,
                                np.zeros(0), np.zeros(self.signatures + 1, dtype=np.int64))
        if nbytes is not None:
            nbytes = self._gathered(nbytes, np.int64)
        return self.build_gathered(nbytes, self._gathered(busy, np.int64), self._gathered(energy, np.float64))

    def build_gathered(self, nbytes: np.ndarray | None, busy: np.ndarray, energy: np.ndarray) -> ChannelCells:
        """:meth:`build` from the parts' values already in cell order (every part's values
        at its :meth:`positions`): int64 bytes (None: those given to the layout) and busy
        cycles, float64 pJ."""
        if not self.lengths:
            return self.build(None, [], [])
        nbytes = self.nbytes if nbytes is None else self._added(nbytes)
        busy = self._added(busy)
        energy = energy if self._distinct else _fold_steps(np.add, energy, self.first, self._steps)
        keep = (nbytes != 0) | (busy != 0) | (energy != 0)
        if keep.all():
            return ChannelCells(self.signatures, self.channels, self.sig, self.channel, nbytes, busy, energy,
                                self.offsets, self._sig_steps)
        sig, channel = self.sig[keep], self.channel[keep]
        return ChannelCells(self.signatures, self.channels, sig, channel, nbytes[keep], busy[keep], energy[keep],
                            _offsets(sig, self.signatures))


class CellsBuilder:
    """Collects cost contributions to (signature, channel) cells in any order; equal cells
    add up, in the order they were added (:meth:`build`)."""

    def __init__(self, signatures: int, channels: int) -> None:
        self.signatures, self.channels = signatures, channels
        self._parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []

    def add(self, rows: np.ndarray, channel, nbytes, busy, energy) -> None:
        """Add to the cells (``rows[i]``, ``channel``) — ``channel`` one index or an array
        per row — the given bytes, busy cycles and pJ (arrays per row, or scalars)."""
        rows = np.asarray(rows, dtype=np.int64)
        n = len(rows)
        if n == 0:
            return
        self._parts.append((rows, _column(channel, n, np.int64), _column(nbytes, n, np.int64),
                            _column(busy, n, np.int64), _column(energy, n, np.float64)))

    def add_block(self, rows: np.ndarray, channels: np.ndarray, nbytes: np.ndarray, busy: np.ndarray,
                  energy: np.ndarray) -> None:
        """Add ``[rows, channels]`` blocks of bytes, busy cycles and pJ."""
        if len(rows) == 0 or len(channels) == 0:
            return
        grid_rows = np.repeat(np.asarray(rows, dtype=np.int64), len(channels))
        grid_channels = np.tile(np.asarray(channels, dtype=np.int64), len(rows))
        self._parts.append((grid_rows, grid_channels, np.asarray(nbytes, dtype=np.int64).ravel(),
                            np.asarray(busy, dtype=np.int64).ravel(), np.asarray(energy, dtype=np.float64).ravel()))

    def build(self) -> ChannelCells:
        """The cells, equal ones added up, all-zero ones left out, sorted by (signature, channel)."""
        rows, channels, nbytes, busy, energy = (list(column) for column in zip(*self._parts, strict=True)) \
            if self._parts else ([], [], [], [], [])
        return CellsLayout(self.signatures, self.channels, rows, channels).build(nbytes, busy, energy)
