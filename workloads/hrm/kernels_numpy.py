"""NumPy twin of the HRM-Text forward recurrence (WORKLOADS §3.2–3.3), plus parameter init.

Readable statement of the math that ``kernels.py`` runs with Numba attention and norms:

* parameter-free RMSNorm, eps 1e-6;
* pre-norm blocks ``x += Attn(RMSNorm(x)); x += SwiGLU(RMSNorm(x))``;
* attention with one projection producing (gate, q, k, v), each n_heads·d_h = d wide,
  RoPE (θ = 10,000, rotate-half pairing i ↔ i + d_h/2) on q and k, causal mask (optionally
  PrefixLM: the first ``prefix_len`` tokens see each other), output
  ``W_o(σ(gate) ⊙ Attn(q, k, v))``; no biases;
* module M = RMSNorm ∘ Block_ℓ ∘ … ∘ Block_1, separate weights for M_L and M_H;
* z_H⁰ = √d·E[x], z_L⁰ = 1_n ⊗ z_L0; N H-cycles of T L-steps (Eq 3.5–3.6).

Shapes: tokens ``[n]`` or ``[B, n]``; states ``[..., n, d]`` matching the token batch.
"""

from __future__ import annotations

import math

import numpy as np

RMS_EPS = 1e-6
ROPE_THETA = 10_000.0
TRUNCATION = 2.0


def _trunc_normal(rng: np.random.Generator, shape: tuple, std: float, dtype) -> np.ndarray:
    """Normal(0, std²) samples redrawn until they lie within ±2·std."""
    x = rng.standard_normal(shape)
    bad = np.abs(x) > TRUNCATION
    while bad.any():
        x[bad] = rng.standard_normal(int(bad.sum()))
        bad = np.abs(x) > TRUNCATION
    return (x * std).astype(dtype)


def init_hrm_params(rng: np.random.Generator, d: int, n_heads: int, d_ff: int,
                    layers_per_module: int, vocab: int, dtype=np.float64) -> dict:
    """Random HRM-Text parameters with the released LeCun-normal scales (WORKLOADS §3.5).

    Args:
        rng: random generator (the only source of randomness).
        d: width; n_heads: attention heads (d/n_heads must be even for RoPE);
        d_ff: SwiGLU width; layers_per_module: ℓ_m blocks in each of M_L, M_H; vocab: tokens.
        dtype: float32 or float64.

    Returns:
        dict of arrays: ``embed [vocab, d]`` (std 1/√d), ``z_L0 [d]`` (truncated N(0, 1)),
        ``n_heads`` (0-d int), and per module ``m`` in {"L", "H"}: ``m.w_gqkv [ℓ, d, 4d]``,
        ``m.w_o [ℓ, d, d]``, ``m.w_gate_up [ℓ, d, 2·d_ff]`` (std 1/√d) and
        ``m.w_down [ℓ, d_ff, d]`` (std 1/√d_ff).

    Raises:
        ValueError: a size < 1, d not divisible by n_heads, or an odd head dim.
    """
    for name, value in (("d", d), ("n_heads", n_heads), ("d_ff", d_ff),
                        ("layers_per_module", layers_per_module), ("vocab", vocab)):
        if int(value) < 1:
            raise ValueError(f"{name}: must be >= 1, got {value}")
    if d % n_heads or (d // n_heads) % 2:
        raise ValueError(f"d: must be n_heads x an even head dim, got d={d}, n_heads={n_heads}")
    ell = layers_per_module
    params = {"embed": _trunc_normal(rng, (vocab, d), d**-0.5, dtype),
              "z_L0": _trunc_normal(rng, (d,), 1.0, dtype),
              "n_heads": np.array(n_heads, dtype=np.int64)}
    for m in ("L", "H"):
        params[f"{m}.w_gqkv"] = _trunc_normal(rng, (ell, d, 4 * d), d**-0.5, dtype)
        params[f"{m}.w_o"] = _trunc_normal(rng, (ell, d, d), d**-0.5, dtype)
        params[f"{m}.w_gate_up"] = _trunc_normal(rng, (ell, d, 2 * d_ff), d**-0.5, dtype)
        params[f"{m}.w_down"] = _trunc_normal(rng, (ell, d_ff, d), d_ff**-0.5, dtype)
    return params


def check_forward(params: dict, tokens, N: int, T: int, prefix_len: int):
    """Validate forward inputs; return ``(tokens as int64 [B, n], was_1d)``.

    Raises:
        TypeError: tokens not integers.
        ValueError: token out of range, empty sequence, N/T < 1 or prefix_len < 0.
    """
    tokens = np.asarray(tokens)
    if tokens.dtype.kind not in "iu":
        raise TypeError(f"tokens: dtype {tokens.dtype} not supported; expected integers")
    was_1d = tokens.ndim == 1
    tokens = np.atleast_2d(tokens).astype(np.int64)
    if tokens.ndim != 2 or tokens.shape[1] == 0:
        raise ValueError(f"tokens: expected shape [n] or [B, n] with n >= 1, got {tokens.shape}")
    vocab = params["embed"].shape[0]
    if tokens.min() < 0 or tokens.max() >= vocab:
        raise ValueError(f"tokens: ids must lie in [0, {vocab}), got {tokens.min()}..{tokens.max()}")
    for name, value, low in (("N", N, 1), ("T", T, 1), ("prefix_len", prefix_len, 0)):
        if int(value) < low:
            raise ValueError(f"{name}: must be >= {low}, got {value}")
    return tokens, was_1d


def rope_tables(n: int, head_dim: int, dtype) -> tuple[np.ndarray, np.ndarray]:
    """cos and sin of position·θ^{−2i/d_h}, each ``[n, d_h/2]``."""
    inv_freq = ROPE_THETA ** (-np.arange(0, head_dim, 2, dtype=np.float64) / head_dim)
    angle = np.arange(n, dtype=np.float64)[:, None] * inv_freq[None, :]
    return np.cos(angle).astype(dtype), np.sin(angle).astype(dtype)


def rms_norm(x: np.ndarray) -> np.ndarray:
    """Parameter-free RMSNorm over the last axis: x / √(mean(x²) + 1e-6)."""
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + RMS_EPS)


def apply_rope(x: np.ndarray, cos: np.ndarray, sin: np.ndarray) -> np.ndarray:
    """Rotate pairs (i, i + d_h/2) of ``x [B, n, H, d_h]`` by the position angles."""
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    c, s = cos[None, :, None, :], sin[None, :, None, :]
    return np.concatenate([x1 * c - x2 * s, x2 * c + x1 * s], axis=-1)


def visible(n: int, prefix_len: int) -> np.ndarray:
    """Boolean ``[n, n]`` mask: query i sees key j if j ≤ i or both lie in the prefix."""
    i = np.arange(n)
    return (i[None, :] <= i[:, None]) | ((i[:, None] < prefix_len) & (i[None, :] < prefix_len))


def rope_attention(q, k, v, cos, sin, mask):
    """RoPE on q, k then masked softmax attention, ``[B, n, H, d_h]`` → ``[B, n, H, d_h]``.

    The softmax is taken in float64 with max subtraction; q·k is scaled by d_h^{-1/2}.
    """
    q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
    scale = q.shape[-1] ** -0.5
    logits = np.einsum("bihd,bjhd->bhij", q, k).astype(np.float64) * scale
    logits = np.where(mask, logits, -np.inf)
    p = np.exp(logits - logits.max(axis=-1, keepdims=True))
    p /= p.sum(axis=-1, keepdims=True)
    return np.einsum("bhij,bjhd->bihd", p, v.astype(np.float64)).astype(q.dtype)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def block(params: dict, module: str, layer: int, x: np.ndarray, ctx) -> np.ndarray:
    """One pre-norm block of ``module`` on ``x [B, n, d]``.

    ``ctx = (cos, sin, mask, attend, norm)``: RoPE tables, visibility mask and the attention
    (``attend(q, k, v, cos, sin, mask)``) and RMSNorm implementations to use.
    """
    cos, sin, mask, attend, norm = ctx
    B, n, d = x.shape
    H = int(params["n_heads"])
    gate, q, k, v = np.split(norm(x) @ params[f"{module}.w_gqkv"][layer], 4, axis=-1)
    q, k, v = (y.reshape(B, n, H, d // H) for y in (q, k, v))
    attn = attend(q, k, v, cos, sin, mask).reshape(B, n, d)
    x = x + (_sigmoid(gate) * attn) @ params[f"{module}.w_o"][layer]
    g, u = np.split(norm(x) @ params[f"{module}.w_gate_up"][layer], 2, axis=-1)
    return x + (g * _sigmoid(g) * u) @ params[f"{module}.w_down"][layer]


def run_module(params: dict, module: str, x: np.ndarray, ctx) -> np.ndarray:
    """M(x) = RMSNorm ∘ Block_ℓ ∘ … ∘ Block_1 (x); ``ctx`` as in :func:`block`."""
    for layer in range(params[f"{module}.w_o"].shape[0]):
        x = block(params, module, layer, x, ctx)
    return ctx[4](x)


def recurrence(params: dict, tokens: np.ndarray, N: int, T: int, ctx):
    """Eq 3.5–3.6 on ``tokens [B, n]``: N H-cycles of T L-steps; returns ``(z_H, z_L)``."""
    z_H, z_L = initial_states(params, tokens)
    for _ in range(N):
        for _ in range(T):
            z_L = run_module(params, "L", z_L + z_H, ctx)
        z_H = run_module(params, "H", z_H + z_L, ctx)
    return z_H, z_L


def initial_states(params: dict, tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """z_H⁰ = √d·E[x] and z_L⁰ broadcast over positions (Eq 3.5), each ``[B, n, d]``."""
    embed = params["embed"]
    z_H = embed[tokens] * embed.dtype.type(math.sqrt(embed.shape[1]))
    return z_H, np.broadcast_to(params["z_L0"], z_H.shape).copy()


def hrm_forward_numpy(params: dict, tokens, N: int, T: int, *, prefix_len: int = 0):
    """HRM-Text forward (Eq 3.5–3.6) in plain NumPy.

    Args:
        params: from :func:`init_hrm_params`; tokens: ``[n]`` or ``[B, n]`` ints.
        N: H-cycles; T: L-steps per H-cycle; prefix_len: PrefixLM prefix (0 = causal).

    Returns:
        ``(z_H, z_L)``, each ``[n, d]`` or ``[B, n, d]`` like tokens, in the params dtype.

    Raises:
        TypeError, ValueError: see :func:`check_forward`.
    """
    tokens, was_1d = check_forward(params, tokens, N, T, prefix_len)
    n, d = tokens.shape[1], params["embed"].shape[1]
    cos, sin = rope_tables(n, d // int(params["n_heads"]), params["embed"].dtype)
    ctx = (cos, sin, visible(n, prefix_len), rope_attention, rms_norm)
    z_H, z_L = recurrence(params, tokens, N, T, ctx)
    return (z_H[0], z_L[0]) if was_1d else (z_H, z_L)
