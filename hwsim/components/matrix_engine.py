"""GPU-like matrix engines: peak FLOP/s per precision, tile and wave quantisation.

A GEMM of batch x (M x K) @ (K x N) is cut into output tiles of ``tile_m x tile_n``; each
tile runs on one of ``num_units`` units (SMs) and sweeps K in steps of ``tile_k``. Tiles run
in waves of ``num_units``, so a GEMM whose tile count is just above a multiple of the unit
count pays for a nearly empty last wave, as on real GPUs:

    cycles = ceil(tiles / num_units) * (2 * tile_m * tile_n * ceil(K / tile_k) * tile_k)
             / (peak_flops_per_cycle / num_units) / efficiency

Other op kinds (attention, state updates) are charged their FLOPs at ``efficiency`` of peak.
A GEMM with fewer rows than ``tile_m`` (decode: one token per sequence) uses the smallest
power-of-two tile of at least ``min_tile_m`` rows that covers them, as GEMM libraries pick
narrow tiles for skinny problems; ``op_overhead`` is a fixed cost per op (kernel launch).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from hwsim.components.base import ComputeUnit, ceil_cycles, ceil_div, register
from hwsim.config.fields import param
from hwsim.errors import ConfigError


def next_power_of_two(x: np.ndarray) -> np.ndarray:
    """Smallest power of two >= x (x >= 1), element-wise."""
    return np.left_shift(1, np.ceil(np.log2(np.maximum(x, 1))).astype(np.int64))


@register("matrix_engine")
class MatrixEngine(ComputeUnit):
    """Tensor-core style engine with per-precision peaks and tile/wave quantisation."""

    handles = {"gemm": 2, "attention": 2, "state_update": 1, "similarity": 1}

    @dataclass(frozen=True, kw_only=True)
    class Config:
        peak_flops: dict = param(unit="map:flops",
                                 help="dense peak FLOP/s per dtype, e.g. {bf16: 989.4 TFLOP/s}")
        num_units: int = param(1, unit="count", minimum=1, help="units (SMs) that run tiles in waves")
        tile_m: int = param(128, unit="count", minimum=1, help="output tile rows")
        tile_n: int = param(128, unit="count", minimum=1, help="output tile columns")
        tile_k: int = param(64, unit="count", minimum=1, help="reduction step of a tile")
        min_tile_m: int = param(16, unit="count", minimum=1, help="fewest rows a tile may have (skinny GEMMs)")
        op_overhead: float = param(0.0, unit="time", minimum=0.0, help="fixed time per op (launch), s")
        efficiency: float = param(1.0, unit="count", minimum=0.0, exclusive_minimum=True,
                                  help="fraction of peak a full tile sustains (0-1]")
        clock: float = param(0.0, unit="frequency", help="engine clock (0 = the machine clock)")
        memory: str = param(unit="text", help="memory tier operands stream from")
        energy_per_flop: float = param(0.0, unit="energy", help="dynamic energy per FLOP, pJ")
        leakage_power: float = param(0.0, unit="power", help="static power, W")
        source: str = param("", unit="text", help="where the figures come from")
        provenance: dict = param({}, unit="map:text", help="per-constant source notes")

    def __init__(self, name, config, ref_clock_hz) -> None:
        super().__init__(name, config, ref_clock_hz)
        if not config.peak_flops:
            raise ConfigError(f"components.{name}.peak_flops: give at least one dtype")
        if config.efficiency > 1:
            raise ConfigError(f"components.{name}.efficiency: must be <= 1, got {config.efficiency}")

    def flops_per_cycle(self, dtypes: np.ndarray) -> np.ndarray:
        """Whole-engine peak FLOP per cycle for each op's dtype (falls back to bf16, then the first)."""
        peaks = self.config.peak_flops
        fallback = peaks.get("bf16", next(iter(peaks.values())))
        codes, names = pd.factorize(dtypes)
        per_name = np.array([peaks.get(d, fallback) for d in names], dtype=np.float64)
        return per_name[codes] / self.clock_hz

    def cycles(self, ops: pd.DataFrame) -> np.ndarray:
        cfg = self.config
        kind = ops["kind"].to_numpy()
        peak = self.flops_per_cycle(ops["dtype"].to_numpy()) * cfg.efficiency
        out = ceil_cycles(ops["flops"].to_numpy() / peak)
        gemm = kind == "gemm"
        if gemm.any():
            m, n, k, batch = (ops[c].to_numpy()[gemm] for c in ("m", "n", "k", "batch"))
            tile_m = np.minimum(cfg.tile_m, np.maximum(cfg.min_tile_m, next_power_of_two(m)))
            tiles = ceil_div(m, tile_m) * ceil_div(n, cfg.tile_n) * batch
            waves = ceil_div(tiles, cfg.num_units)
            tile_flops = 2 * tile_m * cfg.tile_n * ceil_div(k, cfg.tile_k) * cfg.tile_k
            per_unit = peak[gemm] / cfg.num_units
            out[gemm] = ceil_cycles(waves * tile_flops / per_unit)
        return out
