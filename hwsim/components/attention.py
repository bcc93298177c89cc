"""The timing of a fused (FlashAttention-style) attention kernel on a matrix engine.

An attention op of ``m`` queries over ``n`` keys with head dimension ``d`` and ``batch``
independent heads runs as *work units* spread over the engine's units (SMs). Forward, a
unit owns a block of ``Br`` queries and sweeps the visible key blocks of ``Bc`` keys; each
block costs two matmuls on the tensor cores and a softmax on the special-function and
vector units::

    matmul  = 4 * Br * Bc * d / (peak per unit x efficiency)          (QK^T and PV)
    softmax = Br * Bc / (exp per cycle per unit) + 4 * Br * Bc / (fp32 per cycle per unit)
    block   = max(matmul, softmax) + (1 - overlap) * min(matmul, softmax)

``overlap`` is how much of the shorter one the kernel hides under the other: FlashAttention-2
issues them one after the other (0), FlashAttention-3 ping-pongs warpgroups so that one's
softmax runs under the other's matmul (near 1). That is why the head dimension matters:
at d = 64 the exponentials take as long as the matmuls. Backward, a unit owns a block of
keys and sweeps the query blocks: five matmuls (``10 * Br * Bc * d``) and the softmax
recomputed. A causal mask skips the key blocks above the diagonal, so units do unequal
work; the engine time is::

    cycles = max(ceil(units / SMs) * mean unit, longest unit)
    unit   = blocks * block + tile overhead                              (prologue, epilogue)

When the units cannot fill the engine (decode: one query per sequence), the key range is
split across units (split-KV, as flash-decoding does) and the partial results are combined
at the cost of one more tile overhead. The visible fraction of the score matrix comes from
the op's FLOPs (``flops / (4 m n d batch)`` forward, ``/ (10 m n d batch)`` backward), so
causal, sliding-window and dense attention need no flag.

The block shapes are facts of the kernels (:data:`KERNELS`); efficiency, overlap and tile
overhead are properties of a kernel on a machine and live in the machine file.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: FLOPs per (query, key) pair and head-dimension element: QK^T + PV forward, five matmuls backward.
PASS_FLOPS = {"fwd": 4, "bwd": 10}
#: Softmax work on the vector units per score besides the exponential (max, subtract, sum, scale). [A]
SOFTMAX_FLOPS_PER_SCORE = 4


@dataclass(frozen=True)
class AttentionKernel:
    """Block shapes (``Br`` queries x ``Bc`` keys) of one attention kernel family, keyed by
    the largest head dimension each applies to."""

    name: str
    fwd: dict[int, tuple[int, int]]
    fwd_causal: dict[int, tuple[int, int]]
    bwd: dict[int, tuple[int, int]]
    min_rows: int          # fewest query rows a tile computes (the MMA instruction's M)
    source: str

    def blocks(self, pass_name: str, masked: bool, head_dim: int) -> tuple[int, int]:
        """``(Br, Bc)`` for a head dimension (the entry of the smallest bound >= it)."""
        table = self.bwd if pass_name == "bwd" else (self.fwd_causal if masked else self.fwd)
        for bound in sorted(table):
            if head_dim <= bound:
                return table[bound]
        return table[max(table)]


KERNELS: dict[str, AttentionKernel] = {
    "flash2": AttentionKernel(
        "flash2",
        fwd={64: (128, 128), 128: (128, 64), 256: (64, 64)},
        fwd_causal={64: (128, 128), 128: (128, 64), 256: (64, 64)},
        bwd={64: (128, 128), 128: (64, 128), 256: (64, 64)},
        min_rows=16,  # [S] sm80 mma.sync m16n8k16: decode's few query rows pad to 16
        source="[C] flash-attention csrc/flash_attn/src/flash_fwd_launch_template.h and "
               "flash_bwd_launch_template.h (sm80 kernel traits run on sm90)"),
    "flash3": AttentionKernel(
        "flash3",
        fwd={64: (192, 128), 128: (128, 176), 256: (128, 80)},
        fwd_causal={64: (192, 128), 128: (128, 128), 256: (128, 80)},
        bwd={64: (128, 128), 128: (64, 128), 256: (64, 64)},
        min_rows=64,  # [S] a Hopper warpgroup MMA (wgmma) computes 64 rows
        source="[C] flash-attention hopper/tile_size.h (tile_size_fwd_sm90, tile_size_bwd_sm90)"),
}

#: Attention passes a machine sets constants for; ``_fp8`` variants apply to fp8 operands.
PASSES = ("fwd", "bwd", "fwd_fp8", "bwd_fp8")


@dataclass(frozen=True)
class KernelOnMachine:
    """What one attention kernel achieves on one machine, for one pass (fitted constants)."""

    efficiency: float      # fraction of the dtype's tensor peak the inner loop sustains
    overlap: float         # fraction of the shorter of matmul and softmax hidden (0-1)
    tile_cycles: float     # overhead per work unit, reference cycles


def attention_cycles(m: np.ndarray, n: np.ndarray, d: np.ndarray, batch: np.ndarray, flops: np.ndarray,
                     *, kernel: AttentionKernel, pass_name: str, on_machine: KernelOnMachine,
                     units: int, unit_flops_per_cycle: np.ndarray, exp_per_cycle: float,
                     fp32_per_cycle: float) -> np.ndarray:
    """Cycles (float64) of attention ops of one kernel and pass.

    ``unit_flops_per_cycle`` is one unit's tensor peak for each op's dtype;
    ``exp_per_cycle`` and ``fp32_per_cycle`` are one unit's special-function and vector
    rates. Raises nothing: shapes are validated trace values (m, n, d, batch >= 1).
    """
    m, n, d, batch = (np.maximum(np.asarray(x, dtype=np.int64), 1) for x in (m, n, d, batch))
    dense = PASS_FLOPS[pass_name] * m.astype(np.float64) * n * d * batch
    visible = np.clip(np.asarray(flops, dtype=np.float64) / dense, 1e-12, 1.0)
    masked = visible < 0.999
    out = np.empty(len(m))
    for mask_value in (False, True):
        for head_dim in np.unique(d[masked == mask_value]).tolist():
            rows = (masked == mask_value) & (d == head_dim)
            br, bc = kernel.blocks(pass_name, mask_value, head_dim)
            out[rows] = _cycles(m[rows], n[rows], head_dim, batch[rows], visible[rows], br, bc,
                                pass_name, on_machine, units, unit_flops_per_cycle[rows],
                                exp_per_cycle, fp32_per_cycle, kernel.min_rows)
    return out


def _cycles(m, n, head_dim, batch, visible, br, bc, pass_name, on_machine, units, peak,
            exp_per_cycle, fp32_per_cycle, min_rows) -> np.ndarray:
    # The rows a unit owns and the ones it sweeps: queries forward, keys backward.
    owned, swept = (m, n) if pass_name == "fwd" else (n, m)
    own_block, sweep_block = (br, bc) if pass_name == "fwd" else (bc, br)
    rows_per_tile = np.minimum(own_block, np.maximum(min_rows, owned)) if pass_name == "fwd" \
        else np.full(len(m), own_block)
    matmul = PASS_FLOPS[pass_name] * rows_per_tile * sweep_block * head_dim / (peak * on_machine.efficiency)
    scores = rows_per_tile * sweep_block
    softmax = scores / exp_per_cycle + SOFTMAX_FLOPS_PER_SCORE * scores / fp32_per_cycle
    block = np.maximum(matmul, softmax) + (1.0 - on_machine.overlap) * np.minimum(matmul, softmax)
    tiles = -(-owned // own_block) * batch
    all_blocks = -(-swept // sweep_block)
    # Visible blocks per unit: all of them; for a causal mask over a square score matrix the
    # exact count of the blocks each unit touches; for other masks (sliding windows) the
    # visible share plus a partial block at each edge. The longest unit of a causal mask
    # sweeps every block.
    mean_blocks = all_blocks.astype(np.float64)
    longest = all_blocks.astype(np.float64)
    masked = visible < 0.999
    if masked.any():
        approx = np.minimum(all_blocks, visible * swept / sweep_block + (own_block / sweep_block + 1) / 2)
        mean_blocks = np.where(masked, approx, mean_blocks)
        longest = np.where(masked, np.minimum(all_blocks, np.ceil(2 * visible * swept / sweep_block + 1)), longest)
        causal = masked & (m == n) & (np.abs(visible - (n + 1) / (2.0 * n)) < 1e-3)
        for owned_tiles, blocks in set(zip((-(-owned[causal] // own_block)).tolist(),
                                           all_blocks[causal].tolist(), strict=True)):
            touched = np.minimum(blocks, -(-(np.arange(1, owned_tiles + 1) * own_block) // sweep_block))
            rows = causal & (-(-owned // own_block) == owned_tiles) & (all_blocks == blocks)
            mean_blocks[rows] = touched.mean()
            longest[rows] = touched.max()
    # Split-KV when the units cannot fill the engine.
    splits = np.where(tiles < units, np.maximum(1, np.minimum(all_blocks, units // np.maximum(tiles, 1))), 1)
    overhead = on_machine.tile_cycles * np.where(splits > 1, 2.0, 1.0)
    mean_unit = mean_blocks / splits * block + overhead
    longest_unit = np.ceil(longest / splits) * block + overhead
    return np.maximum(np.ceil(tiles * splits / units) * mean_unit, longest_unit)
