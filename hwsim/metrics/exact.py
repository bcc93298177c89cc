"""Exactly rounded sums of float64 values, fed in batches in any order.

A run's energy totals add millions of per-op energies. Summed in floating point the result
would depend on the order and the grouping of the additions (batch size, streamed or in
memory, which ops share a cost signature). Here every sum is kept exact and rounded once:
equal multisets of values give bit-identical totals, whatever the batches.

Each value is ``mantissa x 2**exponent`` with a 53-bit integer mantissa, read straight from
its bits. A batch's values (each with a repeat count: ``count`` ops of equal energy) are
binned by (label, exponent); the mantissas are cut into two limbs of 27 and 26 bits, and
``np.bincount`` adds ``limb x count`` per bin. Those float64 additions are exact because
every partial sum stays below 2**53 (a call adds fewer than 2**26 ops). The few bin totals
are then added as Python integers.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Sequence

import numpy as np

from hwsim.memo import remember

MANTISSA_BITS = 53
LIMB_BITS = 27
#: Every finite double is an integer multiple of 2**-BIAS.
BIAS = 1074
#: Most ops one call may add (keeps each bin's float64 partial sums exact).
MAX_OPS_PER_CALL = 2**26
#: Batches of up to this many values have their sums remembered (see ExactSums.add), the
#: last MEMO_SIZE of them.
MEMO_MAX_VALUES = 4096
MEMO_SIZE = 64
#: Batches an ExactSums remembers having added (see ExactSums.history).
HISTORY_MAX = 64
_MEMO: dict[tuple[bytes, bytes, bytes], tuple[dict[int, int], dict[int, float]]] = {}


def scaled_to_float(value: int) -> float:
    """An exact sum kept as ``sum x 2**BIAS`` (an integer), rounded once to float64.

    ``value / 2**BIAS`` would round correctly but divides integers of over a thousand bits
    (most of a summary's cost). The same rounding, cheaply: the integer is cut to at most
    1,000 bits with a sticky bit for what was cut (far below the 53 bits kept, so the
    conversion rounds as the full value would), converted, and scaled by a power of two
    (exact while the result is a normal double; others take the division).
    """
    size = abs(value).bit_length()
    if size - BIAS < -1021:   # a subnormal result: ldexp would round a second time
        return value / (1 << BIAS)
    cut = max(size - 1000, 0)
    magnitude = abs(value)
    kept = (magnitude >> cut) | (1 if cut and magnitude & ((1 << cut) - 1) else 0)
    try:
        result = math.ldexp(float(kept), cut - BIAS)
    except OverflowError:   # beyond the largest double, as a float sum would be
        return math.inf if value > 0 else -math.inf
    return -result if value < 0 else result


def exact_sum(values: np.ndarray, counts: np.ndarray | None = None) -> float:
    """``sum(values * counts)`` computed exactly and rounded once to float64."""
    sums = ExactSums()
    code = sums.label_code("sum")
    sums.add(np.full(len(values), code, dtype=np.int64), values, counts)
    return sums.total(["sum"])


class ExactSums:
    """Exact sums per label, accumulated batch by batch; :meth:`total` rounds once."""

    def __init__(self) -> None:
        self._labels: dict[Hashable, int] = {}
        self._exact: dict[int, int] = {}      # label code -> sum x 2**BIAS (exact integer)
        self._special: dict[int, float] = {}  # label code -> float sum of non-finite values
        # The memo key of every batch added, in order, while each was looked up: equal
        # histories (of sums with equal labels) hold equal sums. None once one was not.
        self._history: list[tuple[bytes, bytes, bytes]] | None = []

    def label_code(self, label: Hashable) -> int:
        """The code of one label (added if new)."""
        return self._labels.setdefault(label, len(self._labels))

    def adopt_labels(self, labels: Sequence[Hashable]) -> None:
        """Give a set of sums with no labels yet these, coded 0, 1, ... in order (the codes
        :meth:`label_code` would give them one by one)."""
        if self._labels:
            raise ValueError("adopt_labels: these sums have labels already")
        self._labels = dict(zip(labels, range(len(labels)), strict=True))

    def label_codes(self, labels: Sequence[Hashable]) -> np.ndarray:
        """Codes of ``labels`` (added if new), for :meth:`add`."""
        return np.array([self.label_code(label) for label in labels], dtype=np.int64)

    def add(self, codes: np.ndarray, values: np.ndarray, counts: np.ndarray | None = None) -> None:
        """Add ``values`` (each ``counts`` times) to the labels of ``codes``."""
        values = np.asarray(values, dtype=np.float64)
        codes = np.asarray(codes, dtype=np.int64)
        counts = np.ones(len(values), dtype=np.int64) if counts is None else np.asarray(counts, dtype=np.int64)
        if len(values) > MEMO_MAX_VALUES:
            self._history = None
            self._add(codes, values, counts)
            return
        # The runs of a sweep add the same energies again and again (a point that changes a
        # bandwidth changes no energy): the sums of a batch seen before are looked up.
        key = (codes.tobytes(), values.tobytes(), counts.tobytes())
        found = _MEMO.get(key)
        if found is None:
            part = ExactSums()
            part._add(codes, values, counts)
            found = remember(_MEMO, key, (part._exact, part._special), MEMO_SIZE)
        if self._history is not None:
            # A run of many batches gains nothing from it (the totals cost it once) and
            # would keep every key alive.
            if len(self._history) < HISTORY_MAX:
                self._history.append(key)
            else:
                self._history = None
        for target, sums in ((self._exact, found[0]), (self._special, found[1])):
            for code, value in sums.items():
                target[code] = target.get(code, 0) + value

    def _add(self, codes: np.ndarray, values: np.ndarray, counts: np.ndarray) -> None:
        keep = values != 0
        if not keep.all():
            values, codes, counts = values[keep], codes[keep], counts[keep]
        if len(values) == 0:
            return
        finite = np.isfinite(values)
        if not finite.all():
            for code, value, count in zip(codes[~finite].tolist(), values[~finite].tolist(),
                                          counts[~finite].tolist(), strict=True):
                self._special[code] = self._special.get(code, 0.0) + value * count
            values, codes, counts = values[finite], codes[finite], counts[finite]
            if len(values) == 0:
                return
        if len(values) <= 32:   # a few values: integer arithmetic in Python is quicker
            exact = self._exact
            for code, value, count in zip(codes.tolist(), values.tolist(), counts.tolist(), strict=True):
                numerator, denominator = value.as_integer_ratio()   # denominator: a power of two
                exact[code] = exact.get(code, 0) + ((numerator * count) << BIAS) // denominator
            return
        if int(counts.sum()) >= MAX_OPS_PER_CALL:
            half = len(values) // 2
            if half == 0:
                raise ValueError("exact sums: one value repeated 2**36 times or more")
            self._add(codes[:half], values[:half], counts[:half])
            self._add(codes[half:], values[half:], counts[half:])
            return
        bits = values.view(np.int64)
        field = (bits >> 52) & 0x7FF                                  # biased exponent
        mantissa = (bits & ((1 << 52) - 1)) | np.where(field > 0, 1 << 52, 0)
        exponent = np.maximum(field, 1) - 1075                        # value = mantissa x 2**exponent
        signed_counts = np.where(bits < 0, -counts, counts)
        low = int(exponent.min())
        width = int(exponent.max()) - low + 1
        bins = codes * width + (exponent - low)
        if int(codes.max()) * width < 1 << 20:
            distinct = None   # bin directly: labels x exponents is small
        else:
            distinct, bins = np.unique(bins, return_inverse=True)
        size = int(bins.max()) + 1
        unit = bool((signed_counts == 1).all())
        limb_sums = []
        for k in range(0, MANTISSA_BITS, LIMB_BITS):
            limb = (mantissa >> k) & ((1 << LIMB_BITS) - 1)
            limb_sums.append(np.bincount(bins, weights=limb if unit else limb * signed_counts, minlength=size))
        used = np.flatnonzero(np.bincount(bins, minlength=size))
        keys = used if distinct is None else distinct[used]
        exact = self._exact
        for b, key in zip(used.tolist(), keys.tolist(), strict=True):
            value = 0
            for k, sums in zip(range(0, MANTISSA_BITS, LIMB_BITS), limb_sums, strict=True):
                value += int(sums[b]) << k
            code, shift = divmod(key, width)
            exact[code] = exact.get(code, 0) + (value << (shift + low + BIAS))

    def total(self, labels: Iterable[Hashable]) -> float:
        """The exact sum over ``labels`` (unknown labels count 0), rounded once."""
        return self.rounded(labels)

    def rounded(self, labels: Iterable[Hashable], exact: dict[Hashable, int] | None = None) -> float:
        """:meth:`total`, from the exact sums of :meth:`exact_sums` when given them."""
        return self.rounded_codes([self._labels[label] for label in labels if label in self._labels], exact)

    def rounded_codes(self, codes: Sequence[int], exact: dict[int, int] | None = None) -> float:
        """:meth:`rounded` over label codes."""
        exact = self.exact_sums() if exact is None else exact
        special = [self._special[c] for c in codes if c in self._special]
        if special:
            return float(sum(special))
        return scaled_to_float(sum(exact.get(c, 0) for c in codes))

    def history(self) -> tuple | None:
        """What identifies these sums among sums of the same labels: the batches added, in
        order, when every one was small enough to be remembered; else None."""
        return None if self._history is None else tuple(self._history)

    def labels(self) -> list[Hashable]:
        """Every label, in code order (``labels()[code]``)."""
        return list(self._labels)

    def used_codes(self) -> list[int]:
        """Codes of the labels that hold a value (exact or not finite), in ascending order."""
        return sorted({*self._exact, *self._special})

    def special_sums(self) -> dict[int, float]:
        """Float sums of the labels given values that are not finite (read-only)."""
        return self._special

    def exact_sums(self) -> dict[int, int]:
        """Each label code's exact sum, times 2**BIAS (read-only)."""
        return self._exact

    def totals(self) -> dict[Hashable, float]:
        """Every label's exactly rounded total."""
        return {label: self.total([label]) for label in self._labels}
