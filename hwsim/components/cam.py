"""Content-addressable memory (CAM) units: retrieval by content rather than by address.

A CAM holds ``entries`` keys of ``key_bits`` bits and compares a search key with
``rows_per_cycle`` entries per cycle, so searching ``e`` entries takes
``ceil(e / rows_per_cycle)`` cycles plus the pipelined ``search_latency``. Search energy is
match-line / search-line dominated: ``entries searched x key bits x search_energy_per_bit``
(Pagiamtzis & Sheikholeslami, JSSC 2004: 2.89 fJ/bit/search at 0.18 um). Writes cost
``write_latency`` and ``write_energy_per_bit`` per entry.

Trace ops: ``cam_search`` (``elements`` = entries searched, default all; ``k`` = key bits,
default the unit's) and ``cam_write`` (``elements`` = entries written).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from hwsim.components.base import ComputeUnit, ceil_cycles, ceil_div, register, seconds_to_cycles
from hwsim.components.facts import ComponentFacts
from hwsim.config.fields import param
from hwsim.trace.columns import OpColumns


@register("cam_unit")
class CamUnit(ComputeUnit):
    """A CAM for KV chunk descriptors (pose keys, hashes)."""

    handles = {"cam_search": 3, "cam_write": 3}

    @dataclass(frozen=True, kw_only=True)
    class Config:
        entries: int = param(unit="count", minimum=1, help="keys the CAM holds")
        key_bits: int = param(unit="count", minimum=1, help="bits per key")
        rows_per_cycle: int = param(unit="count", minimum=1, help="entries compared per cycle")
        search_latency: float = param(0.0, unit="time", minimum=0.0, help="pipeline latency of a search, s")
        write_latency: float = param(0.0, unit="time", minimum=0.0, help="time to write one entry, s")
        search_energy_per_bit: float = param(unit="energy", per="bit",
                                             help="energy per key bit per entry searched, pJ")
        write_energy_per_bit: float = param(0.0, unit="energy", per="bit",
                                            help="energy per key bit written, pJ")
        count: int = param(1, unit="count", minimum=1, help="independent CAM banks searched concurrently")
        clock: float = param(0.0, unit="frequency", help="CAM clock (0 = the machine clock)")
        memory: str = param(unit="text", help="tier that holds the chunk data the CAM indexes")
        leakage_power: float = param(0.0, unit="power", help="static power, W")
        source: str = param("", unit="text", help="where the figures come from")
        provenance: dict = param({}, unit="map:text", help="per-constant source notes")

    def facts(self) -> ComponentFacts:
        """On-chip bytes: the keys of every bank (entries x key bits x banks / 8)."""
        cfg = self.config
        return replace(super().facts(), on_chip_bytes=cfg.entries * cfg.key_bits * cfg.count // 8)

    def _entries(self, ops: OpColumns) -> np.ndarray:
        elements = np.asarray(ops["elements"])
        return np.where(elements > 0, elements, self.config.entries)

    def _bits(self, ops: OpColumns) -> np.ndarray:
        k = np.asarray(ops["k"])
        return np.where(k > 0, k, self.config.key_bits)

    def cycles(self, ops: OpColumns) -> np.ndarray:
        cfg = self.config
        entries = self._entries(ops)
        search = np.asarray(ops["kind"]) == "cam_search"
        latency = seconds_to_cycles(cfg.search_latency, self.clock_hz)
        write_cycles = max(1, seconds_to_cycles(cfg.write_latency, self.clock_hz))
        # In float64 through ceil_cycles: entries x write cycles can pass int64 and must not wrap.
        cycles = np.where(search, ceil_div(entries, cfg.rows_per_cycle) + latency,
                          entries.astype(np.float64) * write_cycles)
        return ceil_cycles(cycles, ops)

    def energy_pj(self, ops: OpColumns) -> np.ndarray:
        cfg = self.config
        bits = self._entries(ops) * self._bits(ops).astype(np.float64)
        search = np.asarray(ops["kind"]) == "cam_search"
        return bits * np.where(search, cfg.search_energy_per_bit, cfg.write_energy_per_bit)

    def over_capacity(self, ops: OpColumns) -> np.ndarray:
        """Rows that search or write more entries than the CAM holds."""
        return self._entries(ops) > self.config.entries * self.config.count
