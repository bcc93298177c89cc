"""Numba kernels for WorldKV retrieval, compression and window attention (WORKLOADS §1.2–1.4).

Same public API and results as the NumPy twins in ``kernels_numpy`` (up to rounding):

* ``chunk_pose_scores`` / ``select_chunks``: World Retrieval, Eq 1.7–1.12.
* ``compress_chunk_keys``: World Compression, Eq 1.13–1.16.
* ``window_attention`` and ``assemble_window``: attention over ``[sink | retrieved | recent]``.

The loops do exactly the operations counted by ``workloads.worldkv.flops``.
"""

from __future__ import annotations

import numba
import numpy as np

from workloads.worldkv.kernels_numpy import (
    COSINE_EPS,
    _accumulator_dtype,
    _positive_int,
    assemble_window,
    check_attention,
    check_compression,
    check_poses,
    retrieval_candidates,
)

__all__ = ["assemble_window", "chunk_pose_scores", "compress_chunk_keys", "retrieval_candidates",
           "select_chunks", "window_attention"]


@numba.njit(cache=True)
def _chunk_mean(poses, chunk, c, t, R):  # pragma: no cover - compiled
    """Mean translation t ``[3]`` and element-wise mean rotation R ``[3, 3]`` of a chunk."""
    t[:] = 0.0
    R[:] = 0.0
    for f in range(chunk * c, chunk * c + c):
        for a in range(3):
            t[a] += poses[f, a, 3]
            for b in range(3):
                R[a, b] += poses[f, a, b]
    for a in range(3):
        t[a] /= c
        for b in range(3):
            R[a, b] /= c


@numba.njit(cache=True)
def _pose_scores(poses, chunk, c, candidates):  # pragma: no cover - compiled
    """D of Eq 1.11 for each candidate chunk; float64 ``[n]``."""
    n = candidates.size
    t_j, R_j = np.empty(3), np.empty((3, 3))
    t_c, R_c = np.empty(3), np.empty((3, 3))
    _chunk_mean(poses, chunk, c, t_j, R_j)
    d_t, d_R = np.empty(n), np.empty(n)
    max_t = max_R = 0.0
    for i in range(n):
        _chunk_mean(poses, candidates[i], c, t_c, R_c)
        acc = 0.0
        for a in range(3):
            diff = t_c[a] - t_j[a]
            acc += diff * diff
        d_t[i] = acc                                           # (1.9)
        trace = 0.0
        for a in range(3):
            for b in range(3):
                trace += R_c[a, b] * R_j[a, b]                 # tr(R_cᵀ R_j)
        cos = min(max((trace - 1.0) / 2.0, -1.0), 1.0)
        d_R[i] = np.arccos(cos)                                # (1.10)
        max_t = max(max_t, d_t[i])
        max_R = max(max_R, d_R[i])
    norm_t = max_t if max_t > 0 else 1.0
    norm_R = max_R if max_R > 0 else 1.0
    out = np.empty(n)
    for i in range(n):
        out[i] = 0.5 * (d_t[i] / norm_t) + 0.5 * (d_R[i] / norm_R)   # (1.11)
    return out


def chunk_pose_scores(poses, chunk: int, c: int, candidates) -> np.ndarray:
    """Pose distance D (Eq 1.9–1.11) from chunk ``chunk`` to each candidate chunk.

    Args:
        poses: camera-to-world poses ``[n_latent_frames, 4, 4]``.
        chunk: index j of the chunk being generated; c: latent frames per chunk.
        candidates: chunk indices ``[n]``.

    Returns:
        float64 ``[n]``: ½·δ_t/max δ_t + ½·δ_R/max δ_R (squared translation distance and
        geodesic angle of chunk-mean poses); a term with a zero maximum stays unnormalised.

    Raises:
        TypeError, ValueError: bad poses, chunk size or chunk index.
    """
    candidates = np.ascontiguousarray(candidates, dtype=np.int64).reshape(-1)
    poses = check_poses(poses, [chunk, *candidates.tolist()], c)
    return _pose_scores(np.ascontiguousarray(poses), int(chunk), int(c), candidates)


def select_chunks(poses, j: int, c: int, s: int, r: int, m: int, k: int) -> np.ndarray:
    """World Retrieval (Eq 1.8–1.12): the k candidates with the smallest pose distance D.

    Args:
        poses: ``[n_latent_frames, 4, 4]``; j: chunk being generated; c: latent frames per
            chunk; s, r, m: sink, retrieved and recent sizes in latent frames; k: chunks to pick.

    Returns:
        int64 chunk indices in ascending-D order, ties broken by the lower chunk index; all
        candidates if there are fewer than k.

    Raises:
        TypeError, ValueError: a bad size or index, or bad poses.
    """
    k = _positive_int("k", k, 0)
    candidates = retrieval_candidates(j, c, s, r, m)
    scores = chunk_pose_scores(poses, j, c, candidates)
    return candidates[np.argsort(scores, kind="stable")[:k]]


@numba.njit(cache=True)
def _anchor_similarity(x, F_s):  # pragma: no cover - compiled
    """Cosine similarity of rows F_s.. of x ``[c·F_s, d]`` to the mean of rows 0..F_s-1."""
    n, d = x.shape
    mu = np.zeros(d, x.dtype)
    for i in range(F_s):
        for a in range(d):
            mu[a] += x[i, a]                                   # centroid: F_s·d adds
    mu_sq = x.dtype.type(0.0)
    for a in range(d):
        mu[a] /= F_s
        mu_sq += mu[a] * mu[a]
    mu_norm = np.sqrt(mu_sq)
    sim = np.empty(n - F_s, x.dtype)
    for i in range(F_s, n):
        dot = x.dtype.type(0.0)
        sq = x.dtype.type(0.0)
        for a in range(d):
            dot += x[i, a] * mu[a]                             # 2d
            sq += x[i, a] * x[i, a]                            # 2d
        sim[i - F_s] = dot / (np.sqrt(sq) * mu_norm + COSINE_EPS)   # sqrt, ×, ÷ (+ eps)
    return sim


@numba.njit(cache=True)
def _lowest(sim, count):  # pragma: no cover - compiled
    """Indices of the ``count`` smallest entries, ties to the lower index (stable sort)."""
    return np.argsort(sim, kind="mergesort")[:count]


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
        TypeError, ValueError: keys not float ``[c·F_s, d]``, bad sizes, rho outside (0, 1].
    """
    keys, keep = check_compression(keys, F_s, c, rho)
    x = np.ascontiguousarray(keys, dtype=_accumulator_dtype(keys))
    sim = _anchor_similarity(x, F_s)
    if pooled:
        kept = _lowest(sim, (c - 1) * keep)
    else:
        kept = np.concatenate([_lowest(sim[f * F_s:(f + 1) * F_s], keep) + f * F_s
                               for f in range(c - 1)] or [np.zeros(0, np.int64)])
    return np.concatenate([np.arange(F_s), np.sort(kept) + F_s]).astype(np.int64)


@numba.njit(cache=True)
def _attention(q, k, v, scale, out):  # pragma: no cover - compiled
    """Unmasked softmax attention per head, float64 accumulation, max subtraction."""
    n_q, H, dh = q.shape
    n_kv, dv = k.shape[0], v.shape[2]
    logits = np.empty(n_kv)
    acc = np.empty(dv)
    for h in range(H):
        for i in range(n_q):
            top = -np.inf
            for j in range(n_kv):
                s = 0.0
                for a in range(dh):
                    s += np.float64(q[i, h, a]) * np.float64(k[j, h, a])
                s *= scale
                logits[j] = s
                top = max(top, s)
            total = 0.0
            acc[:] = 0.0
            for j in range(n_kv):
                p = np.exp(logits[j] - top)
                total += p
                for a in range(dv):
                    acc[a] += p * v[j, h, a]
            for a in range(dv):
                out[i, h, a] = acc[a] / total


def window_attention(q, k_window, v_window, scale=None) -> np.ndarray:
    """Softmax attention of a query block over the whole window (Eq 1.4), no mask.

    Args:
        q: ``[Nq, H, dh]``; k_window: ``[Nkv, H, dh]``; v_window: ``[Nkv, H, dv]``.
        scale: logit scale, default ``dh ** -0.5``.

    Returns:
        ``[Nq, H, dv]`` in the dtype of q; accumulated in float64 with max subtraction.

    Raises:
        TypeError, ValueError: bad dtypes or shapes, or an empty window.
    """
    q, k, v, scale = check_attention(q, k_window, v_window, scale)
    out = np.empty((q.shape[0], q.shape[1], v.shape[2]), q.dtype)
    _attention(np.ascontiguousarray(q), np.ascontiguousarray(k), np.ascontiguousarray(v),
               scale, out)
    return out
