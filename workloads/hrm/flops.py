"""Closed-form forward FLOP counts of HRM-Text (WORKLOADS §3.4, Eq 3.8).

Pure Python integers, no Numba. A multiply-add is 2 FLOPs (WORKLOADS §0). The counts cover
the weight matrix products and the attention products; norms, RoPE, gates and the softmax
are not counted, as in Eq 3.8.
"""

from __future__ import annotations

from workloads.common.counts import check_counts


def block_params(d: int, d_ff: int) -> int:
    """P_blk = 5d² (gate, q, k, v, o) + 3·d·d_ff (SwiGLU gate, up, down)."""
    check_counts(d=d, d_ff=d_ff)
    return 5 * d * d + 3 * d * d_ff


def block_applications(N: int, T: int, layers_per_module: int) -> int:
    """Block applications per forward: N·(T + 1)·ℓ_m (N·T of M_L plus N of M_H)."""
    check_counts(N=N, T=T, layers_per_module=layers_per_module)
    return N * (T + 1) * layers_per_module


def forward_flops_per_token(d: int, d_ff: int, layers_per_module: int, N: int, T: int,
                            vocab: int = 0) -> int:
    """Eq 3.8 without attention: 2·P_blk·N(T + 1)·ℓ_m + 2·d·V.

    Args:
        d, d_ff: widths; layers_per_module: ℓ_m; N, T: H-cycles and L-steps per H-cycle;
        vocab: V for the LM head, 0 to leave the head out.

    Raises:
        TypeError, ValueError: an argument is not a non-negative int.
    """
    check_counts(vocab=vocab)
    return 2 * block_params(d, d_ff) * block_applications(N, T, layers_per_module) + 2 * d * vocab


def attention_flops_per_block(d: int, n_kv: int) -> int:
    """Attention FLOPs of one token in one block application: 4·d·n_kv (QKᵀ and PV).

    n_kv is the number of keys the token sees (i + 1 for causal position i).
    """
    check_counts(d=d, n_kv=n_kv)
    return 4 * d * n_kv


def attention_flops_per_token(d: int, n_kv: int, layers_per_module: int, N: int, T: int) -> int:
    """Eq 3.8 attention term for one token over a whole forward: 4·d·n_kv·N(T + 1)·ℓ_m."""
    return attention_flops_per_block(d, n_kv) * block_applications(N, T, layers_per_module)
