"""NumPy twins of the Gated DeltaNet-2, KDA and GDN kernels, plus the shared input checks.

These functions are the readable statement of WORKLOADS §2.2–2.3; ``kernels.py`` computes
the same quantities faster and the tests compare the two. Conventions follow
flash-linear-attention (FLA):

* q, k: ``[B, T, H, K]``; v: ``[B, T, H, V]``; state S: ``[B, H, K, V]``, read as
  ``o_t = S_tᵀ (scale · q_t)``.
* ``g`` is the log decay (natural log, so α = exp(g) and g ≤ 0 is a decay).
* q and k are used as given: callers L2-normalise them per head beforehand (FLA with
  ``use_qk_l2norm_in_kernel=False``).
* float32 or float64 in, the same dtype out; the state is carried in the input dtype.
"""

from __future__ import annotations

import numpy as np

_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _float_array(name: str, x, dtype: np.dtype | None) -> np.ndarray:
    arr = np.asarray(x)
    if arr.dtype not in _FLOAT_DTYPES:
        raise TypeError(f"{name}: dtype {arr.dtype} not supported; expected float32 or float64")
    if dtype is not None and arr.dtype != dtype:
        raise TypeError(f"{name}: dtype {arr.dtype} does not match q dtype {dtype}")
    return arr


def _expect_shape(name: str, arr: np.ndarray, layout: str, dims: str, expected: tuple) -> None:
    if arr.shape != expected:
        values = ",".join(str(x) for x in expected)
        source = "q and v" if "V" in dims else "q"
        raise ValueError(
            f"{name}: expected shape {layout} with {dims} = {values} from {source}, got {arr.shape}"
        )


def _expect_finite(name: str, arr: np.ndarray) -> None:
    # min/max propagate NaN and expose ±inf, and are much cheaper than an isfinite pass.
    if arr.size == 0 or np.isfinite(arr.min()) and np.isfinite(arr.max()):
        return
    if np.isnan(arr).any():
        raise ValueError(f"{name} contains NaN")
    if np.isinf(arr).any():
        raise ValueError(f"{name} contains inf")


def check_inputs(q, k, v, gates, scale, initial_state, chunk_size=None):
    """Validate delta-rule kernel inputs and return them as arrays.

    Args:
        q, k: ``[B, T, H, K]`` float32/float64; v: ``[B, T, H, V]``, same dtype.
        gates: sequence of ``(name, array, axis)`` with axis ``"K"`` (shape ``[B, T, H, K]``),
            ``"V"`` (``[B, T, H, V]``) or ``"H"`` (``[B, T, H]``); gates must be finite.
        scale: query scale or None for ``K ** -0.5``.
        initial_state: None or ``[B, H, K, V]`` in the dtype of q.
        chunk_size: None (recurrent kernels) or an int ≥ 1.

    Returns:
        ``(q, k, v, gate_arrays, scale, initial_state)`` with scale a float.

    Raises:
        TypeError: an array is not float32/float64, dtypes are mixed, or chunk_size is no int.
        ValueError: a shape does not match q/v, a gate holds NaN/inf, or chunk_size < 1.
    """
    q = _float_array("q", q, None)
    if q.ndim != 4:
        raise ValueError(f"q: expected a 4-D array [B,T,H,K], got shape {q.shape}")
    B, T, H, K = q.shape
    k = _float_array("k", k, q.dtype)
    _expect_shape("k", k, "[B,T,H,K]", "B,T,H,K", (B, T, H, K))
    v = _float_array("v", v, q.dtype)
    if v.ndim != 4 or v.shape[:3] != (B, T, H):
        raise ValueError(
            f"v: expected shape [B,T,H,V] with B,T,H = {B},{T},{H} from q, got {v.shape}"
        )
    V = v.shape[3]
    shapes = {"K": ("[B,T,H,K]", "B,T,H,K", (B, T, H, K)),
              "V": ("[B,T,H,V]", "B,T,H,V", (B, T, H, V)),
              "H": ("[B,T,H]", "B,T,H", (B, T, H))}
    out = []
    for name, arr, axis in gates:
        arr = _float_array(name, arr, q.dtype)
        _expect_shape(name, arr, *shapes[axis])
        _expect_finite(name, arr)
        out.append(arr)
    if scale is None:
        scale = K**-0.5
    scale = float(scale)
    if not np.isfinite(scale):
        raise ValueError(f"scale: must be finite, got {scale}")
    if initial_state is not None:
        initial_state = _float_array("initial_state", initial_state, q.dtype)
        _expect_shape("initial_state", initial_state, "[B,H,K,V]", "B,H,K,V", (B, H, K, V))
    if chunk_size is not None:
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, int | np.integer):
            raise TypeError(f"chunk_size: expected an int, got {type(chunk_size).__name__}")
        if chunk_size < 1:
            raise ValueError(f"chunk_size: must be >= 1, got {chunk_size}")
    return q, k, v, out, scale, initial_state


def kda_gates(beta: np.ndarray, K: int, V: int) -> tuple[np.ndarray, np.ndarray]:
    """Tie the GDN-2 gates to a per-head β: ``b = β·1_K``, ``w = β·1_V`` (WORKLOADS §2.2).

    Args:
        beta: ``[B, T, H]``.

    Returns:
        ``(b [B, T, H, K], w [B, T, H, V])`` broadcast views of beta.
    """
    shape = beta.shape
    return (np.broadcast_to(beta[..., None], (*shape, K)),
            np.broadcast_to(beta[..., None], (*shape, V)))


def gdn_decay(g: np.ndarray, K: int) -> np.ndarray:
    """Broadcast a per-head log decay ``[B, T, H]`` over the K key channels."""
    return np.broadcast_to(g[..., None], (*g.shape, K))


def _head_major(x: np.ndarray) -> np.ndarray:
    """``[B, T, H, D]`` -> ``[B, H, T, D]``."""
    return x.transpose(0, 2, 1, 3)


def gdn2_recurrent(q, k, v, g, b, w, scale=None, initial_state=None):
    """Token-serial Gated Delta Rule-2 (Eq 2.8–2.9), the four steps of WORKLOADS §2.2.

    Args:
        q, k: ``[B, T, H, K]``; v: ``[B, T, H, V]``; g: log decay ``[B, T, H, K]``;
        b: erase gate ``[B, T, H, K]``; w: write gate ``[B, T, H, V]``;
        scale: query scale (default ``K ** -0.5``); initial_state: ``[B, H, K, V]`` or None.

    Returns:
        ``(o [B, T, H, V], final_state [B, H, K, V])`` in the input dtype.

    Raises:
        TypeError, ValueError: see :func:`check_inputs`.
    """
    q, k, v, (g, b, w), scale, S0 = check_inputs(
        q, k, v, [("g", g, "K"), ("b", b, "K"), ("w", w, "V")], scale, initial_state)
    B, T, H, K = q.shape
    V = v.shape[3]
    S = np.zeros((B, H, K, V), q.dtype) if S0 is None else S0.copy()
    o = np.empty((B, T, H, V), q.dtype)
    for t in range(T):
        S = np.exp(g[:, t])[..., None] * S                       # 1. S̄ = D_t S
        r = np.einsum("bhkv,bhk->bhv", S, b[:, t] * k[:, t])     # r = S̄ᵀ (b ⊙ k)
        u = w[:, t] * v[:, t] - r                                # 2. u = w ⊙ v − r
        S = S + k[:, t, :, :, None] * u[:, :, None, :]           # 3. S = S̄ + k uᵀ
        o[:, t] = np.einsum("bhkv,bhk->bhv", S, q[:, t] * scale)  # 4. o = Sᵀ q·scale
    return o, S


def gdn2_chunked(q, k, v, g, b, w, scale=None, initial_state=None, chunk_size=64):
    """Chunkwise (WY) Gated Delta Rule-2, Eq 2.10–2.18, chunk after chunk.

    Same arguments, returns and errors as :func:`gdn2_recurrent`, plus ``chunk_size`` (C ≥ 1);
    the last chunk may be shorter. The pairwise decays γ_r/γ_s of Eq 2.12 and 2.16 are formed
    as exp(G_r − G_s) on the lower triangle only, so no γ^{-1} is ever built and strong
    decays cannot overflow.
    """
    q, k, v, (g, b, w), scale, S0 = check_inputs(
        q, k, v, [("g", g, "K"), ("b", b, "K"), ("w", w, "V")], scale, initial_state,
        chunk_size)
    B, T, H, K = q.shape
    V = v.shape[3]
    S = np.zeros((B, H, K, V), q.dtype) if S0 is None else S0.copy()
    o = np.empty((B, H, T, V), q.dtype)
    for t0 in range(0, T, chunk_size):
        qc, kc, vc, gc, bc, wc = (_head_major(x[:, t0:t0 + chunk_size])
                                  for x in (q, k, v, g, b, w))
        c = qc.shape[2]
        G = np.cumsum(gc, axis=2)                                       # (2.10)
        gamma = np.exp(G)
        E = gamma * bc * kc                                             # Ē   (2.11)
        Z = wc * vc
        Qg = gamma * qc * scale
        lower = np.tril(np.ones((c, c), dtype=bool))
        diff = G[:, :, :, None, :] - G[:, :, None, :, :]                # G_r − G_s
        decay = np.exp(np.where(lower[:, :, None], diff, -np.inf))     # γ_r/γ_s for r ≥ s
        Tm = np.einsum("bhrk,bhrsk,bhsk->bhrs", bc * kc, decay, kc)
        Tm = np.tril(Tm, -1)                                            # (2.12)
        YU = np.linalg.solve(np.eye(c, dtype=Tm.dtype) + Tm, np.concatenate([E, Z], axis=-1))  # (2.13–14)
        Y, U = YU[..., :K], YU[..., K:]
        R = U - Y @ S                                                   # (2.15)
        Aqk = np.einsum("bhrk,bhrsk,bhsk->bhrs", qc * scale, decay, kc)  # (2.16)
        o[:, :, t0:t0 + c] = Qg @ S + Aqk @ R                           # (2.17)
        K_tail = kc * np.exp(G[:, :, -1:] - G)
        S = gamma[:, :, -1, :, None] * S + np.swapaxes(K_tail, -1, -2) @ R  # (2.18)
    return o.transpose(0, 2, 1, 3).astype(q.dtype, copy=False), S.astype(q.dtype, copy=False)


def kda_recurrent(q, k, v, g, beta, scale=None, initial_state=None):
    """Kimi Delta Attention (Eq 2.7) token by token: g ``[B, T, H, K]``, beta ``[B, T, H]``.

    Runs :func:`gdn2_recurrent` with ``b = β·1_K`` and ``w = β·1_V``.
    """
    q, k, v, (g, beta), _, _ = check_inputs(
        q, k, v, [("g", g, "K"), ("beta", beta, "H")], scale, initial_state)
    b, w = kda_gates(beta, q.shape[3], v.shape[3])
    return gdn2_recurrent(q, k, v, g, b, w, scale, initial_state)


def kda_chunked(q, k, v, g, beta, scale=None, initial_state=None, chunk_size=64):
    """Kimi Delta Attention (Eq 2.7) chunkwise; see :func:`kda_recurrent`."""
    q, k, v, (g, beta), _, _ = check_inputs(
        q, k, v, [("g", g, "K"), ("beta", beta, "H")], scale, initial_state, chunk_size)
    b, w = kda_gates(beta, q.shape[3], v.shape[3])
    return gdn2_chunked(q, k, v, g, b, w, scale, initial_state, chunk_size)


def gdn_recurrent(q, k, v, g, beta, scale=None, initial_state=None):
    """Gated DeltaNet (Eq 2.6) token by token: g and beta ``[B, T, H]`` (one per head)."""
    q, k, v, (g, beta), _, _ = check_inputs(
        q, k, v, [("g", g, "H"), ("beta", beta, "H")], scale, initial_state)
    return kda_recurrent(q, k, v, gdn_decay(g, q.shape[3]), beta, scale, initial_state)


def gdn_chunked(q, k, v, g, beta, scale=None, initial_state=None, chunk_size=64):
    """Gated DeltaNet (Eq 2.6) chunkwise; see :func:`gdn_recurrent`."""
    q, k, v, (g, beta), _, _ = check_inputs(
        q, k, v, [("g", g, "H"), ("beta", beta, "H")], scale, initial_state, chunk_size)
    return kda_chunked(q, k, v, gdn_decay(g, q.shape[3]), beta, scale, initial_state,
                       chunk_size)
