"""Closed-form FLOP counts of the WorldKV kernels (WORKLOADS §1.3–1.5).

Pure Python integers, no Numba. Conventions (WORKLOADS §0): a multiply-add is 2 FLOPs; any
other scalar op (add, subtract, multiply, divide, compare, sqrt, arccos) is 1 FLOP; sorts
and top-k selections are not counted.
"""

from __future__ import annotations

from workloads.common.counts import check_counts


def compression_flops(F_s: int, c: int, d: int) -> int:
    """World Compression cost of one chunk in one layer (WORKLOADS §1.4).

    Terms:

    * F_s·d: adds forming the anchor-frame key sum (Eq 1.13);
    * (c − 1)·F_s·(4d + 3) for the non-anchor tokens (Eq 1.14): 2d for ⟨k_n, μ⟩, 2d for
      ‖k_n‖², then a sqrt, a multiply by ‖μ‖ and a divide.

    As in WORKLOADS, the one-off centroid scaling and ‖μ‖ (3d + 1), the + 1e-8 and the
    top-k are left out.

    Args:
        F_s: tokens per latent frame; c: latent frames per chunk; d: key width (all heads).

    Raises:
        TypeError, ValueError: an argument is not a non-negative int.
    """
    check_counts(F_s=F_s, c=c, d=d)
    return F_s * d + max(c - 1, 0) * F_s * (4 * d + 3)


#: Chunk mean (Eq 1.7) per chunk and latent frame: 12 adds (3 translation + 9 rotation
#: entries), plus 12 divides by c per chunk.
MEAN_FLOPS_PER_FRAME = 12
#: δ_t (Eq 1.9): 3 subtracts and 3 multiply-adds.
TRANSLATION_FLOPS = 9
#: δ_R (Eq 1.10): 9 multiply-adds for tr(R̄ᵀR̄), subtract 1, halve, 2 compares for the clip,
#: arccos.
ROTATION_FLOPS = 23
#: Running maxima of δ_t and δ_R (2 compares) and D = ½·δ_t/M_t + ½·δ_R/M_R (2 divides,
#: 2 multiplies, 1 add).
BLEND_FLOPS = 7


def pose_scoring_flops(n_candidates: int, c: int) -> int:
    """World Retrieval scoring of one chunk step (Eq 1.7–1.11), shared by all layers.

    ``(n + 1)·12·(c + 1)`` for the chunk means of the current chunk and the n candidates,
    plus ``n·(9 + 23 + 7)`` for δ_t, δ_R, the maxima and D per candidate:
    ``n·(12c + 51) + 12(c + 1)``. The final sort is not counted.

    Args:
        n_candidates: candidate chunks (Eq 1.8); c: latent frames per chunk.

    Raises:
        TypeError, ValueError: an argument is not a non-negative int.
    """
    check_counts(n_candidates=n_candidates, c=c)
    per_mean = MEAN_FLOPS_PER_FRAME * (c + 1)
    per_candidate = per_mean + TRANSLATION_FLOPS + ROTATION_FLOPS + BLEND_FLOPS
    return n_candidates * per_candidate + per_mean


def attention_flops(Nq: int, Nkv: int, d: int) -> int:
    """Attention FLOPs of one layer and pass: 4·Nq·Nkv·d (Eq 1.18, QKᵀ and PV).

    d is the model width (all heads); softmax exps are not counted.

    Raises:
        TypeError, ValueError: an argument is not a non-negative int.
    """
    check_counts(Nq=Nq, Nkv=Nkv, d=d)
    return 4 * Nq * Nkv * d
