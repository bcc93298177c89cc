"""NumPy twins of the Gated DeltaNet-2, KDA and GDN kernels, plus the shared input checks.

These functions are the readable statement of WORKLOADS §2.2–2.3 and the oracle of the
tests. The chunked form is batched NumPy (every chunk of every sequence at once, only the
state carried chunk to chunk in a loop) and is also what ``kernels.py`` runs; the
token-serial recurrence is a loop over tokens here and a compiled loop in ``kernels.py``.
Conventions follow flash-linear-attention (FLA):

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


#: Largest |exponent| a decay factor may carry: exp(±60) is comfortably normal in float32 and
#: exp(±600) in float64.
MAX_EXPONENT = {np.dtype(np.float32): 60.0, np.dtype(np.float64): 600.0}
#: Rows per block of the strong-decay scores and of the block forward substitution.
SUB_CHUNK = 16
#: Chunks computed together by the chunked form: enough to amortise NumPy's per-call cost,
#: few enough that the temporaries stay in cache.
CHUNKS_PER_PASS = 8


def gdn2_chunked(q, k, v, g, b, w, scale=None, initial_state=None, chunk_size=64):
    """Chunkwise (WY) Gated Delta Rule-2, Eq 2.10–2.18, many chunks at once.

    Same arguments, returns and errors as :func:`gdn2_recurrent`, plus ``chunk_size`` (C ≥ 1).
    The sequence is cut into chunks of C tokens (the last one zero-padded: a padded row has
    no decay, key or value, so it changes nothing). Everything inside a chunk depends only
    on the chunk's own inputs and is computed for ``CHUNKS_PER_PASS`` chunks of every
    sequence at once; only the state S_0 carried from chunk to chunk runs chunk after chunk:

    * G = cumsum g, γ = exp G (2.10); Ē = γ ⊙ b ⊙ k, Q_γ = γ ⊙ q·scale, K̄ = γ^{-1} ⊙ k (2.11);
    * T = strict_lower(Ē K̄ᵀ) (2.12), A_qk = lower(Q_γ K̄ᵀ) (2.16);
    * [Y | U] = (I + T)^{-1} [Ē | w ⊙ v] (2.13–2.14), by block forward substitution;
    * per chunk: R = U − Y S_0 (2.15), O = Q_γ S_0 + A_qk R (2.17),
      S_C = Diag(γ_C) S_0 + K_tailᵀ R with K_tail = exp(G_C − G) ⊙ k (2.18).

    γ^{-1} overflows where a chunk's |G| exceeds ``MAX_EXPONENT``; such chunks take their
    scores from :func:`_block_scores`, so any finite log decay g <= 0 gives finite, exact
    results.
    """
    q, k, v, (g, b, w), scale, S0 = check_inputs(
        q, k, v, [("g", g, "K"), ("b", b, "K"), ("w", w, "V")], scale, initial_state,
        chunk_size)
    B, T, H, K = q.shape
    V = v.shape[3]
    C, dt = int(chunk_size), q.dtype
    S = np.zeros((B, H, K, V), dt) if S0 is None else S0.copy()
    o = np.empty((B, T, H, V), dt)
    span = C * CHUNKS_PER_PASS
    for t0 in range(0, T, span):
        part = slice(t0, t0 + span)
        o[:, part], S = _chunk_pass(*(x[:, part] for x in (q, k, v, g, b, w)), scale, S, C)
    return o, S


def _chunk_pass(q, k, v, g, b, w, scale, S, C):
    """Eq 2.10–2.18 over consecutive chunks of ``[B, T', H, D]`` inputs from state ``S``."""
    B, T, H, K = q.shape
    V = v.shape[3]
    limit = MAX_EXPONENT[q.dtype]
    N = -(-T // C)
    q, k, v, g, b, w = (_chunks(x, N, C) for x in (q, k, v, g, b, w))   # [B, H, N, C, D]
    G = np.cumsum(g, axis=-2)                                           # (2.10)
    gamma = np.exp(G)
    E, Qg = gamma * b * k, gamma * q * scale                            # Ē, Q_γ (2.11)
    Kbar_T = np.swapaxes(k * np.exp(np.minimum(-G, limit)), -1, -2)     # K̄ᵀ, finite everywhere
    Tm, Aqk = np.tril(E @ Kbar_T, -1), np.tril(Qg @ Kbar_T)             # (2.12), (2.16)
    strong = np.max(np.abs(G), axis=(-2, -1)) > limit                   # chunks where γ^{-1} overflows
    if strong.any():
        Tm[strong] = np.tril(_block_scores(b[strong] * k[strong], k[strong], G[strong], limit), -1)
        Aqk[strong] = _block_scores(q[strong] * scale, k[strong], G[strong], limit)
    YU = _unit_lower_solve(Tm, np.concatenate([E, w * v], axis=-1))     # (2.13–2.14)
    Y, U = YU[..., :K], YU[..., K:]
    K_tail_T = np.swapaxes(k * np.exp(G[..., -1:, :] - G), -1, -2)
    o = np.empty((B, H, N, C, V), q.dtype)
    for n in range(N):                                                  # chunk after chunk
        R = U[:, :, n] - Y[:, :, n] @ S                                 # (2.15)
        o[:, :, n] = Qg[:, :, n] @ S + Aqk[:, :, n] @ R                 # (2.17)
        S = gamma[:, :, n, -1, :, None] * S + K_tail_T[:, :, n] @ R     # (2.18)
    return o.reshape(B, H, N * C, V)[:, :, :T].transpose(0, 2, 1, 3), S


def _chunks(x: np.ndarray, N: int, C: int) -> np.ndarray:
    """``[B, T, H, D]`` -> ``[B, H, N, C, D]``, zero-padded to N·C tokens."""
    B, T, H, D = x.shape
    out = np.zeros((B, H, N * C, D), x.dtype)
    out[:, :, :T] = x.transpose(0, 2, 1, 3)
    return out.reshape(B, H, N, C, D)


def _block_scores(left, k, G, limit):
    """Σ_i left[r,i] k[s,i] exp(G[r,i] − G[s,i]) for s <= r (0 above), chunks ``[M, C, K]``.

    Rows are taken in blocks of ``SUB_CHUNK``, each referred to the decay at its first row
    r0: left_r exp(G_r − G_r0) · k_s exp(G_r0 − G_s). Every exponent is <= 0 for the columns
    before the block and at most the block's own decay span inside it; a block whose span
    still exceeds ``limit`` takes its diagonal part pair by pair, where exp(G_r − G_s) <= 1.
    """
    M, C, _ = G.shape
    out = np.zeros((M, C, C), G.dtype)
    for r0 in range(0, C, SUB_CHUNK):
        r1 = min(r0 + SUB_CHUNK, C)
        ref = G[:, r0:r0 + 1]
        rows = left[:, r0:r1] * np.exp(G[:, r0:r1] - ref)
        cols = k[:, :r1] * np.exp(np.minimum(ref - G[:, :r1], limit))
        out[:, r0:r1, :r1] = rows @ cols.transpose(0, 2, 1)
        strong = np.flatnonzero(np.max(ref - G[:, r1 - 1:r1], axis=(1, 2)) > limit)
        if strong.size:
            Gs = G[strong, r0:r1]
            lower = np.tril(np.ones((r1 - r0, r1 - r0), dtype=bool))[:, :, None]
            pair = np.exp(np.where(lower, Gs[:, :, None] - Gs[:, None], -np.inf))
            out[strong, r0:r1, r0:r1] = np.einsum("mrk,mrsk,msk->mrs", left[strong, r0:r1], pair,
                                                  k[strong, r0:r1])
    return np.tril(out)


def _unit_lower_solve(Tm, X):
    """(I + Tm)^{-1} X for strictly lower Tm ``[..., C, C]``, by blocks of ``SUB_CHUNK`` rows."""
    C = Tm.shape[-1]
    out = np.empty_like(X)
    for r0 in range(0, C, SUB_CHUNK):
        r1 = min(r0 + SUB_CHUNK, C)
        rhs = X[..., r0:r1, :] - Tm[..., r0:r1, :r0] @ out[..., :r0, :]
        block = np.eye(r1 - r0, dtype=Tm.dtype) + Tm[..., r0:r1, r0:r1]
        out[..., r0:r1, :] = np.linalg.inv(block) @ rhs
    return out


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
