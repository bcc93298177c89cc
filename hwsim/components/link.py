"""Links between memory tiers (on-package, PCIe, NVLink-C2C, CXL)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from hwsim.components.base import MemoryResource, register
from hwsim.components.facts import Bandwidth, ComponentFacts
from hwsim.config.fields import param


@register("link")
class Link(MemoryResource):
    """A full-duplex link joining two tiers: ``bandwidth`` is per direction.

    The engine keeps one queue per direction, so a host-to-device copy and a
    device-to-host copy overlap while two copies in one direction share the bandwidth.
    Each direction sustains ``bandwidth x efficiency``; ``efficiency_to`` overrides the
    fraction per direction, keyed by the tier the direction leads to (measured NVLink-C2C
    reaches 77% of its peak towards the GPU and 66% towards the CPU).
    """

    @dataclass(frozen=True, kw_only=True)
    class Config:
        between: tuple = param(unit="list", help="the two tiers the link joins, e.g. [hbm, cpu_dram]")
        bandwidth: float = param(unit="bandwidth", minimum=0.0, exclusive_minimum=True,
                                 help="datasheet bandwidth per direction, bytes/s")
        efficiency: float = param(1.0, unit="count", minimum=0.0, exclusive_minimum=True,
                                  help="fraction of bandwidth a direction sustains (0-1]")
        efficiency_to: dict = param({}, unit="map:count",
                                    help="per-direction efficiency keyed by the destination tier")
        latency: float = param(0.0, unit="time", minimum=0.0, help="one-way latency, s")
        energy_per_bit: float = param(0.0, unit="energy_bit", help="transfer energy, pJ/bit")
        leakage_power: float = param(0.0, unit="power", help="static power, W")
        source: str = param("", unit="text", help="where the figures come from")
        provenance: dict = param({}, unit="map:text", help="per-constant source notes")

        def problems(self):
            """Cross-field rules, checked when the machine is loaded."""
            names = list(self.between)
            if len(names) != 2 or not all(isinstance(n, str) for n in names) or names[0] == names[1]:
                yield "between", f"expected two different tier names, got {names}"
            fractions = {"efficiency": self.efficiency,
                         **{f"efficiency_to.{to}": v for to, v in self.efficiency_to.items()}}
            for to in self.efficiency_to:
                if to not in names:
                    yield f"efficiency_to.{to}", f"not one of the tiers the link joins ({', '.join(map(str, names))})"
            for key, value in fractions.items():
                if not 0 < value <= 1:
                    yield key, f"must be in (0, 1], got {value:g}"

    role = "link"

    def facts(self) -> ComponentFacts:
        """A link's record: no capacity, one bandwidth per direction, each its own queue
        (``<name>:<a>-><b>``, as the engine names it)."""
        ends = list(self.config.between)
        directions = [(ends[0], ends[1]), (ends[1], ends[0])]
        return replace(super().facts(), capacity_bytes=0.0, bandwidth=tuple(
            Bandwidth(f"{a}->{b}", f"{self.name}:{a}->{b}", self.peak_bytes_per_s,
                      self.sustained_bytes_per_s("transit", to=b)) for a, b in directions))

    def bytes_per_cycle_to(self, to: str | None) -> float:
        """Sustained bytes per reference cycle in the direction that leads to tier ``to``."""
        fraction = self.config.efficiency_to.get(to, self.config.efficiency) if to else self.config.efficiency
        return self.config.bandwidth * fraction / self.ref_clock_hz
