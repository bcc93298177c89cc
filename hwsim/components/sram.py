"""Banked on-chip SRAM: bandwidth that depends on the access pattern, capacity that spills.

An SRAM of ``num_banks`` banks, each ``bank_width`` bytes wide with ``ports`` accesses per
cycle, streams ``num_banks * bank_width * ports`` bytes per cycle when every bank is busy.
Gathers lose bandwidth to bank conflicts. The conflict model (``conflict_factor``) gives
the cycles an access pattern needs relative to a sequential stream; a bank serves one word
per cycle, so an access takes as long as its most-loaded bank:

* ``seq``: consecutive words hit consecutive banks: factor 1;
* ``strided``: items of ``w`` words whose starts are ``s`` words apart start only on banks
  that are multiples of ``g = gcd(s, num_banks)``; with per-bank request queues deep enough
  to absorb one stride period, the busiest bank carries ``ceil(w / g)`` words for every
  ``w / g`` of an average bank: factor ``g * ceil(w / g) / w`` (``g`` for single words);
* ``random``: items of ``w`` words (w rounded up to a power of two, aligned) land in one of
  ``n = num_banks / w`` bank groups uniformly at random, and the memory reorders requests
  only within a window of ``n`` items, which takes as many cycles as the expected maximum
  load of ``n`` balls in ``n`` bins (computed exactly: 2.13 for 4, 2.60 for 8, 3.96 for
  64); items of a full row or more (``w >= num_banks``) pay only the padding of their
  last row.

``tests/hwsim/test_sram.py`` checks each case against a brute-force count of bank
conflicts on small banks. A working set that does not fit ``capacity`` is moved to the
``spill_to`` tier before the run (see :mod:`hwsim.engine.placement`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import cache

import numpy as np

from hwsim.components.base import MemoryResource, ceil_cycles, register
from hwsim.components.facts import ComponentFacts
from hwsim.config.fields import param
from hwsim.trace.columns import OpColumns

#: Most banks an SRAM may have: the exact random-access conflict model costs O(banks^1.5).
MAX_BANKS = 4096


@cache
def expected_max_load(n: int) -> float:
    """Expected size of the fullest bin when ``n`` balls fall uniformly into ``n`` bins.

    Exact, in a form that neither overflows nor underflows for large ``n``: with ``X_i``
    independent Poisson(1) counts, the bin loads are the ``X_i`` conditioned on
    ``sum X_i = n``, so ``P(max <= m) = P(X <= m)^n P(sum Y_i = n) / P(sum X_i = n)``, where
    ``Y`` is ``X`` conditioned on ``X <= m`` and ``sum X_i`` is Poisson(n); and
    ``E[max] = sum_{m>=0} (1 - P(max <= m))``.
    """
    if n <= 1:
        return float(n)
    log_poisson_n = -n + n * math.log(n) - math.lgamma(n + 1)   # log P(Poisson(n) == n)
    expectation = 0.0
    for m in range(n):
        pmf = np.array([math.exp(-1.0 - math.lgamma(k + 1)) for k in range(m + 1)])
        mass = float(pmf.sum())
        hit = _sum_pmf_at(pmf / mass, n)
        p_at_most = math.exp(n * math.log(mass) + math.log(hit) - log_poisson_n) if hit > 0 else 0.0
        expectation += 1.0 - min(p_at_most, 1.0)
        if 1.0 - p_at_most < 1e-15:
            break
    return expectation


def _sum_pmf_at(pmf: np.ndarray, n: int) -> float:
    """P(the sum of ``n`` independent draws from ``pmf`` == ``n``), by repeated squaring of
    the distribution, truncated at ``n``."""
    result, power, k = np.array([1.0]), pmf, n
    while k:
        if k & 1:
            result = _convolve(result, power, n + 1)
        k >>= 1
        if k:
            power = _convolve(power, power, n + 1)
    return float(result[n]) if len(result) > n else 0.0


def _convolve(a: np.ndarray, b: np.ndarray, keep: int) -> np.ndarray:
    """The first ``keep`` terms of the convolution of two distributions (by FFT when they
    are long: quadratic direct convolution of 65,536 banks' distributions takes minutes)."""
    if min(len(a), len(b)) <= 64:
        return np.convolve(a, b)[:keep]
    size = len(a) + len(b) - 1
    nfft = 1 << (size - 1).bit_length()
    out = np.fft.irfft(np.fft.rfft(a, nfft) * np.fft.rfft(b, nfft), nfft)[:min(size, keep)]
    return np.maximum(out, 0.0)   # FFT round-off can leave tiny negative probabilities


def conflict_factor(access: str, item_bytes: float, stride_bytes: float, num_banks: int,
                    bank_width: int) -> float:
    """Cycles an access pattern needs per cycle of a sequential stream (>= 1)."""
    words = max(1, math.ceil(item_bytes / bank_width))
    if access == "seq":
        return 1.0
    if access == "strided":
        stride_words = max(1, round(stride_bytes / bank_width)) if stride_bytes > 0 else words
        g = math.gcd(stride_words, num_banks)
        return g * math.ceil(words / g) / words
    if access == "random":
        if words >= num_banks:
            return math.ceil(words / num_banks) * num_banks / words
        aligned = 1 << (words - 1).bit_length()
        return expected_max_load(num_banks // aligned)
    raise ValueError(f"unknown access pattern {access!r}")


@register("sram")
class Sram(MemoryResource):
    """Banked SRAM with pattern-dependent bandwidth, per-access energy and a capacity."""

    op_columns = ("op_id", "kind", "access", "bytes_read", "bytes_read2", "elements", "k")

    @dataclass(frozen=True, kw_only=True)
    class Config:
        capacity: float = param(unit="bytes", minimum=0.0, exclusive_minimum=True, help="capacity, bytes")
        num_banks: int = param(unit="count", minimum=1, maximum=65536,
                               help="independent banks (a power of two, at most 65,536)")
        bank_width: int = param(unit="bytes", minimum=1.0, help="bytes one bank reads or writes per access")
        ports: int = param(1, unit="count", minimum=1, help="accesses per bank per cycle")
        clock: float = param(0.0, unit="frequency", help="SRAM clock (0 = the machine clock)")
        latency: float = param(0.0, unit="time", minimum=0.0, help="access latency, s")
        read_energy: float = param(0.0, unit="energy", per="access", help="energy per bank read access, pJ")
        write_energy: float = param(0.0, unit="energy", per="access", help="energy per bank write access, pJ")
        leakage_power: float = param(0.0, unit="power", help="static power, W")
        spill_to: str = param("", unit="text", help="tier that takes spaces that do not fit (empty: fail)")
        source: str = param("", unit="text", help="where the figures come from")
        provenance: dict = param({}, unit="map:text", help="per-constant source notes")

        def problems(self):
            """Cross-field rules, checked when the machine is loaded."""
            if self.num_banks & (self.num_banks - 1):
                yield "num_banks", f"must be a power of two, got {self.num_banks}"
            elif self.num_banks > MAX_BANKS:
                yield "num_banks", f"at most {MAX_BANKS} banks (the conflict model's limit), got {self.num_banks}"

    @property
    def bandwidth(self) -> float:
        """Sequential bandwidth, bytes/s."""
        cfg = self.config
        return cfg.num_banks * cfg.bank_width * cfg.ports * (cfg.clock or self.ref_clock_hz)

    @property
    def bytes_per_cycle(self) -> float:
        return self.bandwidth / self.ref_clock_hz

    @property
    def peak_bytes_per_s(self) -> float:
        """The sequential bandwidth: every bank busy (gathers get less, see the module docstring)."""
        return self.bandwidth

    def facts(self) -> ComponentFacts:
        return replace(super().facts(), on_chip_bytes=int(self.config.capacity))

    def pattern_factor(self, ops: OpColumns) -> np.ndarray:
        """Bank-conflict factor per op from its ``access``, item size and stride (``k``)."""
        cfg = self.config
        access = np.asarray(ops["access"], dtype=object)
        factor = np.ones(len(ops))
        scattered = access != "seq"
        if not scattered.any():
            return factor
        nbytes = (np.asarray(ops["bytes_read"]) + np.asarray(ops["bytes_read2"]))[scattered]
        items = np.maximum(np.asarray(ops["elements"])[scattered], 1)
        stride = np.asarray(ops["k"])[scattered]
        cache: dict[tuple, float] = {}
        values = []
        for a, nb, it, st in zip(access[scattered], nbytes.tolist(), items.tolist(), stride.tolist(), strict=True):
            key = (a, math.ceil(nb / it / cfg.bank_width), st)
            if key not in cache:
                cache[key] = conflict_factor(a, nb / it, st, cfg.num_banks, cfg.bank_width)
            values.append(cache[key])
        factor[scattered] = values
        return factor

    def busy_cycles(self, nbytes: np.ndarray, ops: OpColumns | None = None, role: str = "read",
                    to: str | None = None) -> np.ndarray:
        base = nbytes / self.bytes_per_cycle
        if ops is not None and role == "read":
            base = base * self.pattern_factor(ops)
        return ceil_cycles(base)

    def channel_energy_pj(self, nbytes: np.ndarray, role: str = "read") -> np.ndarray:
        per_access = self.config.write_energy if role == "write" else self.config.read_energy
        return np.ceil(nbytes / self.config.bank_width) * per_access
