"""DMA engines: move data between tiers while compute proceeds.

``count`` engines each keep up to ``queue_depth`` descriptors in flight, so up to
``count * queue_depth`` transfers overlap their ``setup_latency``; the bytes of all of an
engine group's transfers share its ``bandwidth`` (a queue of its own, like a link), and
cross the source tier, the links and the destination tier as any transfer does. A transfer
on a copy stream therefore overlaps compute on another stream; two transfers contend for
the engines' bandwidth and for every channel on their paths.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from hwsim.components.base import ComputeUnit, ceil_cycles, register, seconds_to_cycles
from hwsim.components.facts import Bandwidth, ComponentFacts
from hwsim.config.fields import param
from hwsim.trace.columns import OpColumns


@register("dma_engine")
class DmaEngine(ComputeUnit):
    """A group of DMA engines; runs ``transfer`` and ``gather`` ops."""

    handles = {"transfer": 3, "gather": 3}
    moves_data = True

    @dataclass(frozen=True, kw_only=True)
    class Config:
        count: int = param(1, unit="count", minimum=1, help="DMA engines")
        queue_depth: int = param(1, unit="count", minimum=1, help="descriptors in flight per engine")
        bandwidth: float = param(unit="bandwidth", minimum=0.0, exclusive_minimum=True,
                                 help="bytes/s all engines together can move")
        setup_latency: float = param(0.0, unit="time", minimum=0.0, help="per-descriptor setup time, s")
        clock: float = param(0.0, unit="frequency", help="engine clock (0 = the machine clock)")
        memory: str = param(unit="text", help="tier the engines sit beside")
        energy_per_bit: float = param(0.0, unit="energy_bit", help="engine energy per bit moved, pJ/bit")
        leakage_power: float = param(0.0, unit="power", help="static power, W")
        source: str = param("", unit="text", help="where the figures come from")
        provenance: dict = param({}, unit="map:text", help="per-constant source notes")

    @property
    def instances(self) -> int:
        return self.config.count * self.config.queue_depth

    @property
    def bytes_per_cycle(self) -> float:
        return self.config.bandwidth / self.ref_clock_hz

    def facts(self) -> ComponentFacts:
        """Every descriptor in flight is an instance; the group's bandwidth is one queue of its own."""
        bandwidth = float(self.config.bandwidth)
        return replace(super().facts(), bandwidth=(Bandwidth("move", self.name, bandwidth, bandwidth),))

    @property
    def latency_cycles(self) -> int:
        return 0

    def cycles(self, ops: OpColumns) -> np.ndarray:
        setup = seconds_to_cycles(self.config.setup_latency, self.clock_hz)
        return np.full(len(ops), setup, dtype=np.int64)

    def energy_pj(self, ops: OpColumns) -> np.ndarray:
        return np.zeros(len(ops))

    def busy_cycles(self, nbytes: np.ndarray, ops: OpColumns | None = None, role: str = "read",
                    to: str | None = None) -> np.ndarray:
        return ceil_cycles(nbytes / self.bytes_per_cycle)

    def channel_energy_pj(self, nbytes: np.ndarray, role: str = "read") -> np.ndarray:
        return nbytes * 8.0 * self.config.energy_per_bit
