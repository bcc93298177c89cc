"""NumPy twins of the WorldKV kernels (WORKLOADS §1.2–1.4), plus the shared input checks.

Readable statement of the math that ``kernels.py`` computes with Numba:

* World Retrieval (Eq 1.7–1.12): chunk-mean camera poses, a max-normalised blend of squared
  translation distance and geodesic rotation angle, the k closest candidates.
* World Compression (Eq 1.13–1.16): keep the anchor frame plus the non-anchor keys least
  similar (cosine) to the anchor frame's mean key.
* Window attention (Eq 1.4) over the ``[sink | retrieved | recent]`` window (§1.2).

Poses are camera-to-world ``[n_latent_frames, 4, 4]`` float64 (OpenCV convention); chunk j
covers latent frames ``j·c .. j·c + c − 1``.
"""

from __future__ import annotations

import math

import numpy as np

COSINE_EPS = 1e-8


def _positive_int(name: str, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name}: expected an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name}: must be >= {minimum}, got {value}")
    return int(value)


def check_poses(poses, chunks, c: int) -> np.ndarray:
    """Validate poses ``[n, 4, 4]`` (finite) against chunk indices; return float64 poses.

    Raises:
        ValueError: bad shape, non-finite values, or a chunk with no poses.
        TypeError: c or a chunk index is not an int.
    """
    c = _positive_int("c", c)
    poses = np.asarray(poses, dtype=np.float64)
    if poses.ndim != 3 or poses.shape[1:] != (4, 4):
        raise ValueError(f"poses: expected shape [n, 4, 4], got {poses.shape}")
    if not np.isfinite(poses).all():
        raise ValueError("poses contains NaN or inf")
    for j in chunks:
        _positive_int("chunk", j, minimum=0)
        if (int(j) + 1) * c > poses.shape[0]:
            raise ValueError(f"chunk {j}: needs latent frames up to {(int(j) + 1) * c - 1}, "
                             f"poses has {poses.shape[0]}")
    return poses


def chunk_means(poses: np.ndarray, chunks: np.ndarray, c: int) -> tuple[np.ndarray, np.ndarray]:
    """Chunk-mean translation ``[n, 3]`` and element-wise mean rotation ``[n, 3, 3]`` (Eq 1.7).

    The mean rotation is not re-orthonormalised, as in the released code.
    """
    frames = np.asarray(chunks)[:, None] * c + np.arange(c)          # [n, c]
    return poses[frames, :3, 3].mean(axis=1), poses[frames, :3, :3].mean(axis=1)


def chunk_pose_scores(poses, chunk: int, c: int, candidates) -> np.ndarray:
    """Pose distance D (Eq 1.9–1.11) from chunk ``chunk`` to each candidate chunk.

    Args:
        poses: camera-to-world poses ``[n_latent_frames, 4, 4]``.
        chunk: index j of the chunk being generated; c: latent frames per chunk.
        candidates: chunk indices ``[n]``.

    Returns:
        float64 ``[n]``: ½·δ_t/max δ_t + ½·δ_R/max δ_R, with δ_t the squared translation
        distance and δ_R the geodesic angle (radians) between chunk-mean poses; a term whose
        maximum over the candidates is zero is left unnormalised.

    Raises:
        TypeError, ValueError: see :func:`check_poses`.
    """
    candidates = np.asarray(candidates, dtype=np.int64).reshape(-1)
    poses = check_poses(poses, [chunk, *candidates.tolist()], c)
    if candidates.size == 0:
        return np.zeros(0)
    t_j, R_j = chunk_means(poses, np.array([chunk]), c)
    t_c, R_c = chunk_means(poses, candidates, c)
    d_t = ((t_c - t_j) ** 2).sum(axis=1)                                        # (1.9)
    trace = np.einsum("nab,ab->n", R_c, R_j[0])                    # tr(R_cᵀ R_j)
    d_R = np.arccos(np.clip((trace - 1.0) / 2.0, -1.0, 1.0))                    # (1.10)
    max_t, max_R = d_t.max(), d_R.max()
    return 0.5 * d_t / (max_t if max_t > 0 else 1.0) + 0.5 * d_R / (max_R if max_R > 0 else 1.0)


def retrieval_candidates(j: int, c: int, s: int, r: int, m: int) -> np.ndarray:
    """Candidate chunks of Eq 1.8: ⌈s/c⌉ ≤ j' < j − max(1, ⌊(W − s − r)/c⌋), W = s + r + m.

    Args:
        j: chunk being generated; c: latent frames per chunk; s, r, m: sink, retrieved and
            recent window sizes in latent frames.

    Returns:
        int64 chunk indices in ascending order (possibly empty).
    """
    j, c = _positive_int("j", j, 0), _positive_int("c", c)
    s, r, m = (_positive_int(n, x, 0) for n, x in (("s", s), ("r", r), ("m", m)))
    window = s + r + m
    first = math.ceil(s / c)
    stop = j - max(1, (window - s - r) // c)
    return np.arange(first, max(first, stop), dtype=np.int64)


def select_chunks(poses, j: int, c: int, s: int, r: int, m: int, k: int) -> np.ndarray:
    """World Retrieval (Eq 1.8–1.12): the k candidates with the smallest pose distance D.

    Returns:
        int64 chunk indices in ascending-D order (the window order of §1.2), ties broken by
        the lower chunk index; all candidates if there are fewer than k.

    Raises:
        TypeError, ValueError: a bad size or index, or bad poses.
    """
    k = _positive_int("k", k, 0)
    candidates = retrieval_candidates(j, c, s, r, m)
    scores = chunk_pose_scores(poses, j, c, candidates)
    order = np.argsort(scores, kind="stable")
    return candidates[order[:k]]


def check_compression(keys, F_s: int, c: int, rho: float) -> tuple[np.ndarray, int]:
    """Validate compression inputs; return ``(keys, keep_per_frame)``.

    Raises:
        TypeError: keys not float, or F_s/c not ints.
        ValueError: keys not ``[c·F_s, d]``, or rho outside (0, 1].
    """
    F_s, c = _positive_int("F_s", F_s), _positive_int("c", c)
    keys = np.asarray(keys)
    if keys.dtype.kind != "f":
        raise TypeError(f"keys: dtype {keys.dtype} not supported; expected a float dtype")
    if keys.ndim != 2 or keys.shape[0] != c * F_s:
        raise ValueError(f"keys: expected shape [c*F_s, d] with c*F_s = {c * F_s}, "
                         f"got {keys.shape}")
    if not 0.0 < float(rho) <= 1.0:
        raise ValueError(f"rho: must be in (0, 1], got {rho}")
    return keys, max(1, math.ceil(float(rho) * F_s))


def _accumulator_dtype(keys: np.ndarray) -> np.dtype:
    """float64 keys stay float64; anything narrower is computed in float32 (released code)."""
    return np.dtype(np.float64) if keys.dtype == np.float64 else np.dtype(np.float32)


def anchor_similarity(keys: np.ndarray, F_s: int) -> np.ndarray:
    """Cosine similarity of every non-anchor key to the anchor centroid (Eq 1.13–1.14).

    Args:
        keys: ``[c·F_s, d]`` (heads concatenated).

    Returns:
        ``[(c − 1)·F_s]`` similarities in float32 (float64 for float64 keys).
    """
    x = keys.astype(_accumulator_dtype(keys), copy=False)
    mu = x[:F_s].mean(axis=0)                                                    # (1.13)
    rest = x[F_s:]
    norms = np.sqrt((rest * rest).sum(axis=1)) * np.sqrt((mu * mu).sum())
    return (rest @ mu) / (norms + x.dtype.type(COSINE_EPS))                       # (1.14)


def compress_chunk_keys(keys, F_s: int, c: int, rho: float, pooled: bool = True) -> np.ndarray:
    """World Compression (Eq 1.13–1.16): indices of the tokens a chunk keeps.

    Args:
        keys: ``[c·F_s, d]`` keys of one chunk and layer, heads concatenated.
        F_s: tokens per latent frame; c: latent frames per chunk; rho: keep ratio in (0, 1].
        pooled: keep the (c − 1)·⌈ρF_s⌉ least similar non-anchor tokens jointly (default);
            otherwise the ⌈ρF_s⌉ least similar of each non-anchor frame.

    Returns:
        Sorted int64 indices: the anchor frame 0..F_s − 1 plus the kept tokens,
        ``F_s + (c − 1)·max(1, ⌈ρF_s⌉)`` of them. Ties keep the lower index.

    Raises:
        TypeError, ValueError: see :func:`check_compression`.
    """
    keys, keep = check_compression(keys, F_s, c, rho)
    sim = anchor_similarity(keys, F_s)
    if pooled:
        kept = np.argsort(sim, kind="stable")[:(c - 1) * keep]
    else:
        per_frame = sim.reshape(c - 1, F_s)
        lowest = np.argsort(per_frame, axis=1, kind="stable")[:, :keep]
        kept = (lowest + F_s * np.arange(c - 1)[:, None]).reshape(-1)
    return np.concatenate([np.arange(F_s), np.sort(kept) + F_s]).astype(np.int64)


def check_attention(q, k, v, scale):
    """Validate ``q [Nq, H, dh]``, ``k [Nkv, H, dh]``, ``v [Nkv, H, dv]``; return them and scale.

    Raises:
        TypeError: a dtype is not float32/float64.
        ValueError: shapes disagree or the window is empty.
    """
    arrays = []
    for name, x in (("q", q), ("k_window", k), ("v_window", v)):
        x = np.asarray(x)
        if x.dtype not in (np.float32, np.float64):
            raise TypeError(f"{name}: dtype {x.dtype} not supported; expected float32 or float64")
        if x.ndim != 3:
            raise ValueError(f"{name}: expected a 3-D array [N, H, d], got shape {x.shape}")
        arrays.append(x)
    q, k, v = arrays
    if k.shape[1:] != q.shape[1:]:
        raise ValueError(f"k_window: expected shape [Nkv, H, dh] with H, dh = "
                         f"{q.shape[1]},{q.shape[2]} from q, got {k.shape}")
    if v.shape[:2] != k.shape[:2]:
        raise ValueError(f"v_window: expected shape [Nkv, H, dv] with Nkv, H = "
                         f"{k.shape[0]},{k.shape[1]} from k_window, got {v.shape}")
    if k.shape[0] == 0:
        raise ValueError("k_window: the window holds no tokens")
    return q, k, v, float(q.shape[2] ** -0.5 if scale is None else scale)


def window_attention(q, k_window, v_window, scale=None) -> np.ndarray:
    """Softmax attention of a query block over the whole window (Eq 1.4), no mask.

    Args:
        q: ``[Nq, H, dh]``; k_window: ``[Nkv, H, dh]``; v_window: ``[Nkv, H, dv]``.
        scale: logit scale, default ``dh ** -0.5``.

    Returns:
        ``[Nq, H, dv]`` in the dtype of q; computed in float64 with max subtraction.
    """
    q, k, v, scale = check_attention(q, k_window, v_window, scale)
    logits = np.einsum("qhd,khd->hqk", q.astype(np.float64), k.astype(np.float64)) * scale
    p = np.exp(logits - logits.max(axis=-1, keepdims=True))
    o = np.einsum("hqk,khd->qhd", p, v.astype(np.float64)) / p.sum(axis=-1).T[..., None]
    return o.astype(q.dtype)


def assemble_window(sink_kv, retrieved_kv_list, recent_kv) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate ``(K, V)`` pairs along tokens in window order: sink, retrieved, recent (§1.2).

    Args:
        sink_kv: ``(K, V)`` of the sink frames, or None for no sink.
        retrieved_kv_list: ``(K, V)`` per retrieved chunk, in retrieval (ascending-D) order.
        recent_kv: ``(K, V)`` of the recent frames, current chunk included.

    Returns:
        ``(K_window, V_window)``, each ``[Nkv, H, d]``.

    Raises:
        ValueError: a pair whose K and V hold different token counts.
    """
    parts = [p for p in (sink_kv, *retrieved_kv_list, recent_kv) if p is not None]
    for i, (k_part, v_part) in enumerate(parts):
        if np.shape(k_part)[0] != np.shape(v_part)[0]:
            raise ValueError(f"window part {i}: K has {np.shape(k_part)[0]} tokens, "
                             f"V has {np.shape(v_part)[0]}")
    return (np.concatenate([p[0] for p in parts], axis=0),
            np.concatenate([p[1] for p in parts], axis=0))
