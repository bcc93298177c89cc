"""The tile-and-wave timing of a GEMM on a GPU-like matrix engine.

A GEMM of ``batch x (m x k) @ (k x n)`` is cut into output tiles of ``tm x tn``; each tile
runs on one unit (an SM) and sweeps ``k`` in steps of ``tk``. A *data-parallel* kernel runs
the tiles in waves of ``units``, so a GEMM whose tile count is just above a multiple of the
unit count pays for a nearly empty last wave::

    iteration = 2 * tm * tn * tk / (peak per unit x efficiency)          cycles
    epilogue  = tm * tn * output bytes / epilogue bytes per cycle          cycles
    data_parallel = ceil(tiles / units) * (ceil(k / tk) * iteration + epilogue) + overhead

A *stream-K* kernel (split-K generalised, as cuBLAS and CUTLASS run skinny and
partial-wave problems) spreads the ``tiles x ceil(k / tk)`` iterations evenly over all
units and pays a second epilogue for the partial tiles it must reduce::

    stream_k = ceil(tiles * ceil(k / tk) / units) * iteration
               + 2 * ceil(tiles / units) * epilogue + overhead

A library picks the fastest kernel it has: the time of an op is the minimum over the
candidate tile shapes (and over stream-K where the dtype has it). A tile with more rows
than the GEMM shrinks to the smallest power of two covering them (at least ``min_tile_m``),
as libraries pick narrow tiles for decode-shaped GEMMs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TileShape:
    """One output tile of a GEMM kernel: ``m x n`` outputs, ``k`` reduction step (elements)."""

    m: int
    n: int
    k: int


def parse_tiles(text: str, tile_k: int, where: str) -> tuple[TileShape, ...]:
    """``"64x128 128x256"`` (or ``"128x128x64"`` with an explicit k) as tile shapes.

    Raises ValueError naming ``where`` for a malformed entry.
    """
    shapes = []
    for item in text.replace(",", " ").split():
        parts = item.lower().split("x")
        if len(parts) not in (2, 3) or not all(p.isdigit() and int(p) > 0 for p in parts):
            raise ValueError(f"{where}: {item!r} is not a tile shape like 128x256 or 128x256x64")
        m, n = int(parts[0]), int(parts[1])
        shapes.append(TileShape(m, n, int(parts[2]) if len(parts) == 3 else tile_k))
    if not shapes:
        raise ValueError(f"{where}: give at least one tile shape, e.g. '128x128'")
    return tuple(shapes)


def next_power_of_two(x: np.ndarray) -> np.ndarray:
    """Smallest power of two >= x (x >= 1), element-wise."""
    return np.left_shift(1, np.ceil(np.log2(np.maximum(x, 1))).astype(np.int64))


def ceil_div(a, b) -> np.ndarray:
    """Integer ceiling division on int64 arrays."""
    return -(-np.asarray(a, dtype=np.int64) // np.asarray(b, dtype=np.int64))


def gemm_cycles(m: np.ndarray, n: np.ndarray, k: np.ndarray, batch: np.ndarray, *,
                unit_flops_per_cycle: np.ndarray, out_bytes: np.ndarray, shapes: tuple[TileShape, ...],
                units: int, min_tile_m: int, stream_k: np.ndarray, epilogue_bytes_per_cycle: float,
                overhead_cycles: float) -> np.ndarray:
    """Cycles (float64) of each GEMM: the fastest candidate tile, data-parallel or stream-K.

    ``unit_flops_per_cycle`` is each op's sustained FLOP/cycle of one unit (peak x
    efficiency for its dtype), ``out_bytes`` the bytes per output element, ``stream_k`` a
    bool per op (its dtype has stream-K kernels). ``epilogue_bytes_per_cycle`` of 0 means
    the epilogue is hidden (no cost).
    """
    best = np.full(len(m), np.inf)
    for shape in shapes:
        tm = np.minimum(shape.m, np.maximum(min_tile_m, next_power_of_two(m)))
        tiles = ceil_div(m, tm) * ceil_div(n, shape.n) * batch
        kiters = ceil_div(k, shape.k)
        iteration = 2.0 * tm * shape.n * shape.k / unit_flops_per_cycle
        epilogue = (tm * shape.n * out_bytes / epilogue_bytes_per_cycle if epilogue_bytes_per_cycle
                    else np.zeros(len(m)))
        waves = ceil_div(tiles, units)
        data_parallel = waves * (kiters * iteration + epilogue) + overhead_cycles
        best = np.minimum(best, data_parallel)
        if stream_k.any():
            split = ceil_div(tiles * kiters, units) * iteration + 2 * waves * epilogue + overhead_cycles
            best = np.where(stream_k, np.minimum(best, split), best)
    return best
