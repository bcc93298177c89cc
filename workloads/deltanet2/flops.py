"""Closed-form forward FLOP counts of the Gated DeltaNet-2 core (WORKLOADS §2.2 and Eq 2.19).

Pure Python integers, no Numba, so trace generators can import this module cheaply.
Conventions (WORKLOADS §0): a multiply-add is 2 FLOPs, any other element-wise op (add,
multiply, divide, exp) is 1 FLOP, and an ``m×k @ k×n`` product counts ``2·m·k·n`` FLOPs
(dense, no triangular savings). Counts are per sequence (batch 1); multiply by B.
The same counts hold for KDA and GDN, which run the GDN-2 code path with tied gates.
"""

from __future__ import annotations

from workloads.common.counts import check_counts


def _check(**dims: int) -> None:
    """Every dimension an int >= 1, except the token count T, which may be 0."""
    check_counts(1, floors={"T": 0}, **dims)


def gdn2_recurrent_token_flops(K: int, V: int) -> int:
    """FLOPs of one token of one head in the 4-step token-serial kernel.

    Terms (d_k = K, d_v = V):

    * step 1, decay: K exps for α = exp(g) and K·V multiplies for D_t S;
    * step 2, residual: K multiplies for e = b ⊙ k, 2·K·V for r = S̄ᵀe, V multiplies for
      w ⊙ v and V subtractions for u = w ⊙ v − r;
    * step 3, write: 2·K·V for the rank-1 update S += k uᵀ (multiply + add);
    * step 4, read: K multiplies for q·scale and 2·K·V for o = Sᵀq.

    Total 7·K·V + 3·K + 2·V. WORKLOADS §2.2 rounds the element-wise part up to
    4·d_k + 3·d_v; the exact count of the four steps is the one returned here.

    Raises:
        TypeError, ValueError: a dimension is not a positive int.
    """
    _check(K=K, V=V)
    return 7 * K * V + 3 * K + 2 * V


def gdn2_recurrent_flops(T: int, H: int, K: int, V: int) -> int:
    """Forward FLOPs of the token-serial kernel for T tokens and H heads.

    Equals ``T·H·gdn2_recurrent_token_flops(K, V)``.

    Raises:
        TypeError, ValueError: T < 0 or another dimension < 1, or a non-int.
    """
    _check(T=T, H=H, K=K, V=V)
    return T * H * gdn2_recurrent_token_flops(K, V)


def gdn2_chunk_flops(C: int, K: int, V: int) -> int:
    """FLOPs of one chunk of C tokens of one head in the chunkwise WY form (Eq 2.19).

    Dense matrix products (2 FLOPs per multiply-add):

    * 6·C·K·V: Y S_0 (2.15), Q_γ S_0 (2.17) and K_tailᵀ R (2.18), each C×K×V;
    * 6·C²·K: T = Ē K̄ᵀ (2.12), A_qk = Q_γ K̄ᵀ (2.16) and Y = A Ē (2.14);
    * 4·C²·V: U = A Z (2.14) and A_qk R (2.17);
    * (C³ − C)/3: forward substitution for A = (I + T)^{-1} (2.13), (C³ − C)/6 multiply-adds
      for a unit lower-triangular C×C inverse (WORKLOADS writes ≈ C³/3).

    Element-wise terms:

    * 10·C·K: cumsum G (1), γ = exp(G) (1), γ^{-1} = exp(−G) (1), Q_γ = γ ⊙ q·scale (2),
      Ē = γ ⊙ b ⊙ k (2), K̄ = γ^{-1} ⊙ k (1), K_tail = (γ_C ⊙ γ_r^{-1}) ⊙ k_r (2);
    * 3·C·V: Z = w ⊙ v (1), R = U − Y S_0 (1), O = Q_γ S_0 + A_qk R (1);
    * 2·K·V: S_C = γ_C ⊙ S_0 (1) plus K_tailᵀ R (1).

    For C = 64, K = V = 128 this is 11,760,960 FLOPs (WORKLOADS: ≈ 11.76 MFLOP).

    Raises:
        TypeError, ValueError: a dimension is not a positive int.
    """
    _check(C=C, K=K, V=V)
    matmul = 6 * C * K * V + 6 * C * C * K + 4 * C * C * V
    solve = (C**3 - C) // 3
    elementwise = 10 * C * K + 3 * C * V + 2 * K * V
    return matmul + solve + elementwise


def gdn2_chunked_flops(T: int, H: int, K: int, V: int, chunk_size: int) -> int:
    """Forward FLOPs of the chunkwise kernel for T tokens and H heads, chunk length C.

    The ⌊T/C⌋ full chunks cost :func:`gdn2_chunk_flops` (C, K, V) each; a last partial
    chunk of C' = T mod C tokens costs ``gdn2_chunk_flops(C', K, V)`` (its own length).

    Raises:
        TypeError, ValueError: T < 0 or another dimension < 1, or a non-int.
    """
    _check(T=T, H=H, K=K, V=V, chunk_size=chunk_size)
    full, tail = divmod(T, chunk_size)
    per_head = full * gdn2_chunk_flops(chunk_size, K, V)
    if tail:
        per_head += gdn2_chunk_flops(tail, K, V)
    return H * per_head
