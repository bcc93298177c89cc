"""Memory tiers: HBM, CPU DRAM, CXL memory, SSD, on-chip SRAM as a flat tier."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from hwsim.components.base import MemoryResource, ceil_cycles, register
from hwsim.components.facts import ComponentFacts
from hwsim.config.fields import param


@register("memory_tier")
class MemoryTier(MemoryResource):
    """A memory with a capacity, a bandwidth, an access latency and energy per bit.

    Reads and writes share the bandwidth; concurrent ops queue in the order they start.
    ``bandwidth`` is the datasheet (pin) figure and ``efficiency`` the fraction of it that
    streaming reads sustain (refresh and bank losses), so the two stay separately sourced.
    Writes cost more than reads on DRAM (bus turnarounds, write recovery), so written
    bytes are charged at ``bandwidth x write_efficiency``: on an H100 this one pair of
    fractions gives all five BabelStream kernels (read-only dot 3.18 TB/s, copy 2.90,
    triad 2.97) within 1%::

        busy = read bytes / (bandwidth x efficiency) + written bytes / (bandwidth x write_efficiency)
    """

    @dataclass(frozen=True, kw_only=True)
    class Config:
        capacity: float = param(unit="bytes", minimum=0.0, exclusive_minimum=True, help="capacity, bytes")
        bandwidth: float = param(unit="bandwidth", minimum=0.0, exclusive_minimum=True,
                                 help="datasheet bandwidth (reads + writes), bytes/s")
        efficiency: float = param(1.0, unit="count", minimum=0.0, exclusive_minimum=True,
                                  help="fraction of bandwidth streaming reads sustain (0-1]")
        write_efficiency: float = param(0.0, unit="count", minimum=0.0,
                                        help="fraction of bandwidth writes sustain (0-1]; 0 = efficiency")
        latency: float = param(0.0, unit="time", minimum=0.0, help="first-byte latency, s")
        channels: int = param(1, unit="count", minimum=1, help="independent channels (reported)")
        energy_per_bit: float = param(0.0, unit="energy_bit", help="access energy, pJ/bit")
        leakage_power: float = param(0.0, unit="power", help="static / refresh power, W")
        on_chip: bool = param(False, unit="bool", help="on-chip storage (a flat SRAM): counts in a "
                              "design's on-chip bytes")
        source: str = param("", unit="text", help="where the figures come from")
        provenance: dict = param({}, unit="map:text", help="per-constant source notes")

        def problems(self):
            """Cross-field rules, checked when the machine is loaded."""
            for key in ("efficiency", "write_efficiency"):
                if getattr(self, key) > 1:
                    yield key, f"must be <= 1, got {getattr(self, key):g}"

    def busy_cycles(self, nbytes: np.ndarray, ops=None, role: str = "read", to: str | None = None) -> np.ndarray:
        """Cycles the tier is busy with ``nbytes``; written bytes at the write efficiency."""
        fraction = self.config.write_efficiency or self.config.efficiency
        if role != "write" or fraction == self.config.efficiency:
            return super().busy_cycles(nbytes, ops, role, to)
        return ceil_cycles(nbytes / (self.config.bandwidth * fraction / self.ref_clock_hz), ops)

    def sustained_bytes_per_s(self, role: str = "read", to: str | None = None) -> float:
        if role == "write":
            return self.config.bandwidth * (self.config.write_efficiency or self.config.efficiency)
        return super().sustained_bytes_per_s(role, to)

    def facts(self) -> ComponentFacts:
        record = super().facts()
        return replace(record, on_chip_bytes=int(self.config.capacity)) if self.config.on_chip else record
