"""Memory tiers: HBM, CPU DRAM, CXL memory, SSD, on-chip SRAM as a flat tier."""

from __future__ import annotations

from dataclasses import dataclass

from hwsim.components.base import MemoryResource, register
from hwsim.config.fields import param
from hwsim.errors import ConfigError


@register("memory_tier")
class MemoryTier(MemoryResource):
    """A memory with a capacity, a bandwidth, an access latency and energy per bit.

    Reads and writes share the bandwidth; concurrent ops queue in the order they start.
    ``bandwidth`` is the datasheet (pin) figure and ``efficiency`` the fraction of it that
    streaming kernels sustain (refresh, bank and turnaround losses), so the two stay
    separately sourced: ``bandwidth x efficiency`` is what every byte is charged at.
    """

    @dataclass(frozen=True, kw_only=True)
    class Config:
        capacity: float = param(unit="bytes", minimum=0.0, exclusive_minimum=True, help="capacity, bytes")
        bandwidth: float = param(unit="bandwidth", minimum=0.0, exclusive_minimum=True,
                                 help="datasheet bandwidth (reads + writes), bytes/s")
        efficiency: float = param(1.0, unit="count", minimum=0.0, exclusive_minimum=True,
                                  help="fraction of bandwidth streaming kernels sustain (0-1]")
        latency: float = param(0.0, unit="time", minimum=0.0, help="first-byte latency, s")
        channels: int = param(1, unit="count", minimum=1, help="independent channels (reported)")
        energy_per_bit: float = param(0.0, unit="energy_bit", help="access energy, pJ/bit")
        leakage_power: float = param(0.0, unit="power", help="static / refresh power, W")
        on_chip: bool = param(False, unit="bool", help="on-chip storage (a flat SRAM): counts in a "
                              "design's on-chip bytes")
        source: str = param("", unit="text", help="where the figures come from")
        provenance: dict = param({}, unit="map:text", help="per-constant source notes")

    def __init__(self, name, config, ref_clock_hz) -> None:
        super().__init__(name, config, ref_clock_hz)
        if config.efficiency > 1:
            raise ConfigError(f"components.{name}.efficiency: must be <= 1, got {config.efficiency}")
