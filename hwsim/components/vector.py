"""Vector / SIMD units: element-wise math, reductions, softmax, norms, small state updates."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from hwsim.components.base import ComputeUnit, ceil_cycles, ceil_div, register
from hwsim.config.fields import param


@register("vector_unit")
class VectorUnit(ComputeUnit):
    """``lanes`` lanes each retiring ``flops_per_lane`` FLOPs per cycle.

    An op takes ``ceil(flops / (lanes * flops_per_lane))`` cycles, and at least one cycle
    per ``lanes`` elements it touches (so a FLOP-free gather or top-k still costs time).
    """

    handles = {"vector": 2, "elementwise": 2, "state_update": 2, "similarity": 1, "topk": 1,
               "gather": 1, "cam_search": 0, "cam_write": 0, "attention": 0, "gemm": 0}

    @dataclass(frozen=True, kw_only=True)
    class Config:
        lanes: int = param(unit="count", minimum=1, help="SIMD lanes across the whole unit")
        flops_per_lane: float = param(2.0, unit="count", minimum=0.0, exclusive_minimum=True,
                                      help="FLOPs per lane per cycle (an FMA is 2)")
        count: int = param(1, unit="count", minimum=1, help="independent vector units")
        op_overhead: float = param(0.0, unit="time", minimum=0.0, help="fixed time per op (launch), s")
        clock: float = param(0.0, unit="frequency", help="unit clock (0 = the machine clock)")
        memory: str = param(unit="text", help="memory tier the unit reads and writes through")
        energy_per_flop: float = param(0.0, unit="energy", help="dynamic energy per FLOP, pJ")
        leakage_power: float = param(0.0, unit="power", help="static power, W")
        source: str = param("", unit="text", help="where the figures come from")
        provenance: dict = param({}, unit="map:text", help="per-constant source notes")

    def cycles(self, ops: pd.DataFrame) -> np.ndarray:
        cfg = self.config
        flops = ops["flops"].to_numpy(dtype=np.float64)
        compute = ceil_cycles(flops / (cfg.lanes * cfg.flops_per_lane))
        touch = ceil_div(ops["elements"].to_numpy(), cfg.lanes)
        return np.maximum(compute, touch)
