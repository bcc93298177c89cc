"""Vector / SIMD units: element-wise math, reductions, softmax, norms, small state updates."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from hwsim.components.base import ComputeUnit, ceil_cycles, ceil_div, register, text_equals
from hwsim.components.facts import ANY_DTYPE, ComponentFacts, Peak
from hwsim.config.fields import param
from hwsim.trace.columns import OpColumns


@register("vector_unit")
class VectorUnit(ComputeUnit):
    """``lanes`` lanes each retiring ``flops_per_lane`` FLOPs per cycle.

    An op takes ``ceil(flops / (lanes * flops_per_lane))`` cycles, and at least one cycle
    per ``lanes`` elements it touches (so a FLOP-free gather or top-k still costs time).

    A ``state_update`` is a recurrence: ``elements`` steps, each depending on the last, over
    ``batch`` independent states (sequences x heads), each split into ``ceil(n /
    state_tile_n)`` value tiles. A tile runs on one of ``num_units`` units (SMs) and pays at
    least ``step_latency`` per step (the dependent load-compute-store round trip), so a
    recurrence over few states cannot use the whole unit::

        tiles = batch * ceil(n / state_tile_n)
        step  = max(flops / (tiles * steps) / (lanes / num_units * flops_per_lane), step_latency)
        cycles = ceil(tiles / num_units) * steps * step

    With one unit and no step latency this is the plain FLOP count.
    """

    handles = {"vector": 2, "elementwise": 2, "state_update": 2, "similarity": 1, "topk": 1,
               "gather": 1, "cam_search": 0, "cam_write": 0, "attention": 0, "attention_bwd": 0, "gemm": 0,
               "quantize": 2, "dequantize": 2, "rotate": 2}

    @dataclass(frozen=True, kw_only=True)
    class Config:
        lanes: int = param(unit="count", minimum=1, help="SIMD lanes across the whole unit")
        flops_per_lane: float = param(2.0, unit="count", minimum=0.0, exclusive_minimum=True,
                                      help="FLOPs per lane per cycle (an FMA is 2)")
        count: int = param(1, unit="count", minimum=1, help="independent vector units")
        num_units: int = param(1, unit="count", minimum=1,
                               help="units (SMs) the lanes are split over; a recurrence tile runs on one")
        state_tile_n: int = param(64, unit="count", minimum=1,
                                  help="value columns of a recurrent state one unit updates")
        step_latency: float = param(0.0, unit="time", minimum=0.0,
                                    help="least time of one dependent step of a recurrence, s")
        op_overhead: float = param(0.0, unit="time", minimum=0.0, help="fixed time per op (launch), s")
        clock: float = param(0.0, unit="frequency", help="unit clock (0 = the machine clock)")
        memory: str = param(unit="text", help="memory tier the unit reads and writes through")
        energy_per_flop: float = param(0.0, unit="energy", per="FLOP", help="dynamic energy per FLOP, pJ")
        leakage_power: float = param(0.0, unit="power", help="static power, W")
        source: str = param("", unit="text", help="where the figures come from")
        provenance: dict = param({}, unit="map:text", help="per-constant source notes")

    def facts(self) -> ComponentFacts:
        """Peak: every lane of every unit retiring ``flops_per_lane`` per cycle."""
        cfg = self.config
        return replace(super().facts(), peaks=(Peak(ANY_DTYPE, float(cfg.lanes) * cfg.flops_per_lane * cfg.count
                                                    * self.clock_hz),))

    def cycles(self, ops: OpColumns) -> np.ndarray:
        cfg = self.config
        flops = np.asarray(ops["flops"], dtype=np.float64)
        elements = np.asarray(ops["elements"], dtype=np.int64)
        compute = ceil_cycles(flops / (cfg.lanes * cfg.flops_per_lane))
        touch = ceil_div(elements, cfg.lanes)
        out = np.maximum(compute, touch)
        recurrence = text_equals(ops, "kind", "state_update")
        if recurrence.any():
            out[recurrence] = recurrence_cycles(
                flops[recurrence], np.asarray(ops["batch"], dtype=np.int64)[recurrence],
                np.asarray(ops["n"], dtype=np.int64)[recurrence], elements[recurrence],
                units=cfg.num_units, tile_n=cfg.state_tile_n,
                unit_flops_per_cycle=cfg.lanes * cfg.flops_per_lane / cfg.num_units,
                step_cycles=cfg.step_latency * self.clock_hz)
        return out


def recurrence_cycles(flops: np.ndarray, batch: np.ndarray, n: np.ndarray, steps: np.ndarray, *,
                      units: int, tile_n: int, unit_flops_per_cycle, step_cycles: float) -> np.ndarray:
    """Cycles (int64) of recurrences over ``batch`` states of ``n`` value columns and ``steps``
    dependent steps; see :class:`VectorUnit`. ``unit_flops_per_cycle`` is one unit's rate
    (a number, or one per op)."""
    tiles = np.maximum(batch, 1) * ceil_div(np.maximum(n, 1), tile_n)
    steps = np.maximum(steps, 1)
    step = np.maximum(flops / (tiles * steps) / unit_flops_per_cycle, step_cycles)
    return ceil_cycles(ceil_div(tiles, units) * steps * step)
