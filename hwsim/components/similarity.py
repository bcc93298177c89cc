"""Similarity engines: dot-product lanes with norm units and a streaming top-k selector.

For WorldKV's key-key cosine similarities (compression) and pose scoring (retrieval):

* ``similarity`` ops (``elements`` vectors of width ``k``, FLOPs given) run on ``lanes``
  dot-product lanes of ``vector_width`` multiply-adds each, with norms computed alongside:
  ``ceil(flops / (2 * lanes * vector_width))`` cycles;
* ``topk`` ops stream ``elements`` scores through a selector that consumes
  ``topk_per_cycle`` scores per cycle, plus ``ceil(log2(k))`` cycles to drain its sorter.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from hwsim.components.base import ComputeUnit, ceil_div, register
from hwsim.components.facts import ANY_DTYPE, ComponentFacts, Peak
from hwsim.config.fields import param
from hwsim.trace.columns import OpColumns


@register("similarity_engine")
class SimilarityEngine(ComputeUnit):
    """Dot-product lanes + top-k selector; preferred over a vector unit for its two kinds."""

    handles = {"similarity": 3, "topk": 3}

    @dataclass(frozen=True, kw_only=True)
    class Config:
        lanes: int = param(unit="count", minimum=1, help="dot-product lanes")
        vector_width: int = param(unit="count", minimum=1, help="multiply-adds per lane per cycle")
        topk_per_cycle: int = param(1, unit="count", minimum=1, help="scores the top-k selector takes per cycle")
        count: int = param(1, unit="count", minimum=1, help="independent engines")
        clock: float = param(0.0, unit="frequency", help="engine clock (0 = the machine clock)")
        memory: str = param(unit="text", help="tier the engine reads keys from")
        energy_per_flop: float = param(0.0, unit="energy", per="FLOP",
                                        help="energy per FLOP of a dot product, pJ")
        energy_per_compare: float = param(0.0, unit="energy", per="compare",
                                           help="energy per score compared by top-k, pJ")
        leakage_power: float = param(0.0, unit="power", help="static power, W")
        source: str = param("", unit="text", help="where the figures come from")
        provenance: dict = param({}, unit="map:text", help="per-constant source notes")

    def facts(self) -> ComponentFacts:
        """Peak: every lane's multiply-adds (2 FLOPs each) per cycle on every engine."""
        cfg = self.config
        return replace(super().facts(), peaks=(Peak(ANY_DTYPE, 2.0 * cfg.lanes * cfg.vector_width * cfg.count
                                                    * self.clock_hz),))

    def cycles(self, ops: OpColumns) -> np.ndarray:
        cfg = self.config
        kind = np.asarray(ops["kind"])
        dot = ceil_div(np.asarray(ops["flops"]), 2 * cfg.lanes * cfg.vector_width)
        k = np.maximum(np.asarray(ops["k"]), 1)
        select = ceil_div(np.asarray(ops["elements"]), cfg.topk_per_cycle) + np.ceil(np.log2(k)).astype(np.int64)
        return np.where(kind == "topk", select, dot)

    def energy_pj(self, ops: OpColumns) -> np.ndarray:
        cfg = self.config
        topk = np.asarray(ops["kind"]) == "topk"
        return np.where(topk, np.asarray(ops["elements"]) * cfg.energy_per_compare,
                        np.asarray(ops["flops"]) * cfg.energy_per_flop)
