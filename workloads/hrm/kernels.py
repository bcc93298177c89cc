"""HRM-Text forward recurrence (WORKLOADS Eq 3.5–3.6) with Numba attention and norms.

The dense projections go to NumPy's BLAS; the parts that are loops in any implementation,
RoPE + masked softmax attention and the parameter-free RMSNorm, are Numba kernels. The math
and block structure are shared with the NumPy twin ``kernels_numpy.hrm_forward_numpy``,
which the tests compare against.
"""

from __future__ import annotations

import numba
import numpy as np

from workloads.hrm.kernels_numpy import (
    RMS_EPS,
    check_forward,
    init_hrm_params,
    recurrence,
    rope_tables,
)

__all__ = ["hrm_forward", "init_hrm_params"]


@numba.njit(cache=True)
def _rms_norm_rows(x, out):  # pragma: no cover - compiled
    """Parameter-free RMSNorm of every row of ``x [M, d]`` into ``out``."""
    M, d = x.shape
    for r in range(M):
        acc = 0.0
        for a in range(d):
            acc += x[r, a] * x[r, a]
        inv = 1.0 / np.sqrt(acc / d + RMS_EPS)
        for a in range(d):
            out[r, a] = x[r, a] * inv


def rms_norm(x: np.ndarray) -> np.ndarray:
    """x / √(mean(x²) + 1e-6) over the last axis (Numba)."""
    x2 = np.ascontiguousarray(x).reshape(-1, x.shape[-1])
    out = np.empty_like(x2)
    _rms_norm_rows(x2, out)
    return out.reshape(x.shape)


@numba.njit(cache=True)
def _rope(x, cos, sin, out):  # pragma: no cover - compiled
    """Rotate pairs (i, i + d_h/2) of ``x [B, n, H, d_h]`` by the position angles."""
    B, n, H, dh = x.shape
    half = dh // 2
    for b in range(B):
        for t in range(n):
            for h in range(H):
                for i in range(half):
                    x1, x2 = x[b, t, h, i], x[b, t, h, i + half]
                    out[b, t, h, i] = x1 * cos[t, i] - x2 * sin[t, i]
                    out[b, t, h, i + half] = x2 * cos[t, i] + x1 * sin[t, i]


@numba.njit(cache=True)
def _masked_attention(q, k, v, prefix_len, out):  # pragma: no cover - compiled
    """Causal (PrefixLM) softmax attention per head; float64 softmax with max subtraction."""
    B, n, H, dh = q.shape
    scale = 1.0 / np.sqrt(dh)
    logits = np.empty(n)
    acc = np.empty(dh)
    for b in range(B):
        for h in range(H):
            for i in range(n):
                last = prefix_len - 1 if i < prefix_len else i
                top = -np.inf
                for j in range(last + 1):
                    s = 0.0
                    for a in range(dh):
                        s += q[b, i, h, a] * k[b, j, h, a]
                    s *= scale
                    logits[j] = s
                    top = max(top, s)
                total = 0.0
                acc[:] = 0.0
                for j in range(last + 1):
                    p = np.exp(logits[j] - top)
                    total += p
                    for a in range(dh):
                        acc[a] += p * v[b, j, h, a]
                for a in range(dh):
                    out[b, i, h, a] = acc[a] / total


def rope_attention(q, k, v, cos, sin, prefix_len):
    """RoPE on q, k, then causal/PrefixLM attention; ``[B, n, H, d_h]`` in and out (Numba)."""
    q, k, v = (np.ascontiguousarray(x) for x in (q, k, v))
    q_rot, k_rot = np.empty_like(q), np.empty_like(k)
    _rope(q, cos, sin, q_rot)
    _rope(k, cos, sin, k_rot)
    out = np.empty_like(v)
    _masked_attention(q_rot, k_rot, v, prefix_len, out)
    return out


def hrm_forward(params: dict, tokens, N: int, T: int, *, prefix_len: int = 0):
    """HRM-Text forward (Eq 3.5–3.6): N H-cycles, each T applications of M_L then one of M_H.

    Args:
        params: from :func:`init_hrm_params`; tokens: ``[n]`` or ``[B, n]`` ints.
        N: H-cycles; T: L-steps per H-cycle; prefix_len: tokens attending bidirectionally
            (PrefixLM); 0 gives a plain causal mask.

    Returns:
        ``(z_H, z_L)``, each ``[n, d]`` or ``[B, n, d]`` like tokens, in the params dtype.
        z_H after the last H step is what the LM head reads.

    Raises:
        TypeError: tokens not integers.
        ValueError: token out of range, empty sequence, N/T < 1 or prefix_len < 0.
    """
    tokens, was_1d = check_forward(params, tokens, N, T, prefix_len)
    n, d = tokens.shape[1], params["embed"].shape[1]
    cos, sin = rope_tables(n, d // int(params["n_heads"]), params["embed"].dtype)
    # The mask slot carries prefix_len: the Numba kernel builds the visibility on the fly.
    ctx = (cos, sin, int(prefix_len), rope_attention, rms_norm)
    z_H, z_L = recurrence(params, tokens, N, T, ctx)
    return (z_H[0], z_L[0]) if was_1d else (z_H, z_L)
