"""Memory tiers: HBM, CPU DRAM, CXL memory, SSD, on-chip SRAM as a flat tier."""

from __future__ import annotations

from dataclasses import dataclass

from hwsim.components.base import MemoryResource, register
from hwsim.config.fields import param


@register("memory_tier")
class MemoryTier(MemoryResource):
    """A memory with a capacity, a sustained bandwidth, an access latency and energy per bit.

    Reads and writes share the bandwidth; concurrent ops queue in the order they start.
    """

    @dataclass(frozen=True, kw_only=True)
    class Config:
        capacity: float = param(unit="bytes", minimum=0.0, exclusive_minimum=True, help="capacity, bytes")
        bandwidth: float = param(unit="bandwidth", minimum=0.0, exclusive_minimum=True,
                                 help="sustained bandwidth (reads + writes), bytes/s")
        latency: float = param(0.0, unit="time", minimum=0.0, help="first-byte latency, s")
        channels: int = param(1, unit="count", minimum=1, help="independent channels (reported)")
        energy_per_bit: float = param(0.0, unit="energy_bit", help="access energy, pJ/bit")
        leakage_power: float = param(0.0, unit="power", help="static / refresh power, W")
        on_chip: bool = param(False, unit="bool", help="on-chip storage (a flat SRAM): counts in a "
                              "design's on-chip bytes")
        source: str = param("", unit="text", help="where the figures come from")
        provenance: dict = param({}, unit="map:text", help="per-constant source notes")
