"""Links between memory tiers (on-package, PCIe, NVLink-C2C, CXL)."""

from __future__ import annotations

from dataclasses import dataclass

from hwsim.components.base import MemoryResource, register
from hwsim.config.fields import param
from hwsim.errors import ConfigError


@register("link")
class Link(MemoryResource):
    """A full-duplex link joining two tiers: ``bandwidth`` is per direction.

    The engine keeps one queue per direction, so a host-to-device copy and a
    device-to-host copy overlap while two copies in one direction share the bandwidth.
    """

    @dataclass(frozen=True, kw_only=True)
    class Config:
        between: tuple = param(unit="list", help="the two tiers the link joins, e.g. [hbm, cpu_dram]")
        bandwidth: float = param(unit="bandwidth", minimum=0.0, exclusive_minimum=True,
                                 help="bandwidth per direction, bytes/s")
        latency: float = param(0.0, unit="time", minimum=0.0, help="one-way latency, s")
        energy_per_bit: float = param(0.0, unit="energy_bit", help="transfer energy, pJ/bit")
        leakage_power: float = param(0.0, unit="power", help="static power, W")
        source: str = param("", unit="text", help="where the figures come from")
        provenance: dict = param({}, unit="map:text", help="per-constant source notes")

    def __init__(self, name, config, ref_clock_hz) -> None:
        super().__init__(name, config, ref_clock_hz)
        if len(config.between) != 2 or config.between[0] == config.between[1]:
            raise ConfigError(f"components.{name}.between: expected two different tier names, "
                              f"got {list(config.between)}")
