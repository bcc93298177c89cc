"""Fast Gated DeltaNet-2 kernels (recurrent and chunkwise), with KDA and GDN as special cases.

Public API (FLA conventions, see ``kernels_numpy`` for the readable twins):

* ``gdn2_recurrent`` / ``gdn2_chunked``: g, b ``[B, T, H, K]``, w ``[B, T, H, V]`` (Eq 2.8).
* ``kda_recurrent`` / ``kda_chunked``: g ``[B, T, H, K]``, beta ``[B, T, H]`` (Eq 2.7).
* ``gdn_recurrent`` / ``gdn_chunked``: g, beta ``[B, T, H]`` (Eq 2.6).

KDA and GDN expand their gates (``b = β·1``, ``w = β·1``, g broadcast over K) and run the one
GDN-2 code path, so GDN-2 with tied gates reproduces KDA bit for bit, and KDA with a
per-head decay reproduces GDN bit for bit.

q and k are used as given: callers L2-normalise them (FLA ``use_qk_l2norm_in_kernel=False``).
Inputs are float32 or float64; outputs and the carried state use the input dtype.

The recurrent kernel is a Numba loop over tokens. The chunked kernel (``chunked_core``) runs
each sequence chunk after chunk inside compiled code: gate algebra, the chunk's matrix
products (through a register-tiled kernel of its own, no BLAS) and the state hand-off, with
the work buffers cache-resident and triangular blocks skipped. Sequences are spread over the
cores by threads (the compiled code releases the GIL); with fewer sequences than cores, a
sequence is split by value columns, on which the delta rule acts independently.

Decays: the scores use γ_r·γ_s^{-1}, which overflows for strong decay (|Σg| over a chunk
beyond ~60 in float32, ~600 in float64). Such chunks are redone in 16-token sub-chunks with
the split point inside the chunk, and sub-chunks still too strong pair by pair from
exp(G_r − G_s), so any finite log decay gives finite, exact results.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise

import numba
import numpy as np

from workloads.deltanet2.chunked_core import chunked_items
from workloads.deltanet2.kernels_numpy import check_inputs, gdn_decay, kda_gates

__all__ = ["gdn2_chunked", "gdn2_recurrent", "gdn_chunked", "gdn_recurrent", "kda_chunked",
           "kda_recurrent"]

# Largest |exponent| a decay factor may carry: exp(±60) is comfortably normal in float32 and
# exp(±600) in float64.
_MAX_EXPONENT = {np.dtype(np.float32): 60.0, np.dtype(np.float64): 600.0}

# Below this many state multiply-adds per chunk pass (B·H·T·K·V) a second thread costs more
# to start than it saves.
_MIN_PARALLEL_WORK = 1 << 22

# Value columns per work item below which a sequence is not split across threads.
_MIN_SPLIT_COLUMNS = 32

# Jobs per thread in _split_run: enough to even out uneven progress, few enough that each
# job's work buffers are set up rarely.
_JOBS_PER_WORKER = 8


@numba.njit(cache=True, nogil=True)
def _recurrent_core(q, k, v, g, b, w, scale, S, o):  # pragma: no cover - compiled
    """Run the token-serial GDN-2 update in place.

    q, k, g, b: ``[B, T, H, K]``; v, w: ``[B, T, H, V]``; S: ``[B, H, K, V]`` (updated);
    o: ``[B, T, H, V]`` (written); scale has the dtype of q.
    """
    B, T, H, K = q.shape
    V = v.shape[3]
    u = np.empty(V, S.dtype)
    for bi in range(B):
        for h in range(H):
            Sh = S[bi, h]
            for t in range(T):
                # Steps 1–2 share one sweep over S: decay the row, then add it into r = S̄ᵀe.
                u[:] = 0
                for i in range(K):
                    a = np.exp(g[bi, t, h, i])
                    e = b[bi, t, h, i] * k[bi, t, h, i]
                    for j in range(V):
                        s = Sh[i, j] * a
                        Sh[i, j] = s
                        u[j] += s * e
                for j in range(V):
                    u[j] = w[bi, t, h, j] * v[bi, t, h, j] - u[j]
                # Steps 3–4 share the second sweep: rank-1 write, then read with q.
                orow = o[bi, t, h]
                orow[:] = 0
                for i in range(K):
                    kk = k[bi, t, h, i]
                    qq = q[bi, t, h, i] * scale
                    for j in range(V):
                        s = Sh[i, j] + kk * u[j]
                        Sh[i, j] = s
                        orow[j] += s * qq


def _n_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - platforms without affinity masks
        return os.cpu_count() or 1


def _chunked_workers(B: int, H: int, T: int, K: int, V: int) -> tuple[int, int]:
    """``(threads, slices)`` for the chunked kernel: threads to run, value slices per sequence.

    One thread for small problems (a thread costs more to start than it saves); otherwise
    one per core, and each sequence split into value-column slices when there are fewer
    sequences than cores.
    """
    n_seq = B * H
    n_workers = _n_cores() if n_seq * T * K * V >= _MIN_PARALLEL_WORK else 1
    n_parts = 1
    if 0 < n_seq < n_workers:
        n_parts = max(1, min(-(-n_workers // n_seq), V // _MIN_SPLIT_COLUMNS))
    return min(n_workers, max(1, n_seq * n_parts)), n_parts


def _split_run(kernel, n_items, n_workers, *args):
    """Run ``kernel(first, last, *args)`` over ``range(n_items)`` on up to n_workers threads.

    The kernels release the GIL and write disjoint items. The items go out in up to
    ``_JOBS_PER_WORKER`` jobs per thread, taken in turn by whichever thread is free, so a
    core slowed by other load ends up with less of the work.
    """
    n_workers = min(n_workers, n_items)
    if n_workers <= 1:
        kernel(0, n_items, *args)
        return
    n_jobs = min(n_items, _JOBS_PER_WORKER * n_workers)
    bounds = np.linspace(0, n_items, n_jobs + 1).astype(int)
    with ThreadPoolExecutor(n_workers) as pool:
        jobs = [pool.submit(kernel, int(lo), int(hi), *args)
                for lo, hi in pairwise(bounds)]
        for job in jobs:
            job.result()


def _gdn2_chunked(q, k, v, g, b, w, scale, S0, C):
    """Chunkwise GDN-2 on validated inputs; returns ``(o [B,T,H,V], S [B,H,K,V])``.

    Each (sequence, value-column slice) runs start to end in :mod:`chunked_core`; the items
    are spread over the cores, and sequences are split by value columns only when there are
    fewer sequences than cores.
    """
    B, T, H, K = q.shape
    V = v.shape[3]
    dt = q.dtype
    n_seq = B * H
    q, k, v, g, b, w = (np.ascontiguousarray(x) for x in (q, k, v, g, b, w))
    S = np.zeros((n_seq, K, V), dt)
    if S0 is not None:
        S[:] = S0.reshape(n_seq, K, V)
    o = np.empty((B, T, H, V), dt)
    n_workers, n_parts = _chunked_workers(B, H, T, K, V)
    _split_run(chunked_items, n_seq * n_parts, n_workers, n_parts, q, k, v, g, b, w,
               dt.type(scale), dt.type(_MAX_EXPONENT[dt]), C, S, o)
    return o, S.reshape(B, H, K, V)


def _gdn2_recurrent(q, k, v, g, b, w, scale, S0):
    """Token-serial GDN-2 on validated inputs; returns ``(o [B,T,H,V], S [B,H,K,V])``."""
    B, T, H, K = q.shape
    V = v.shape[3]
    dt = q.dtype
    S = np.zeros((B, H, K, V), dt) if S0 is None else np.array(S0, dtype=dt)
    o = np.empty((B, T, H, V), dt)
    _recurrent_core(*(np.ascontiguousarray(x) for x in (q, k, v, g, b, w)),
                    dt.type(scale), S, o)
    return o, S


def gdn2_recurrent(q, k, v, g, b, w, scale=None, initial_state=None):
    """Gated Delta Rule-2, token by token (Eq 2.8–2.9, the 4-step reference of §2.2).

    Args:
        q, k: ``[B, T, H, K]`` (caller-normalised); v: ``[B, T, H, V]``.
        g: log decay ``[B, T, H, K]`` (α = exp(g)); b: erase gate ``[B, T, H, K]``;
            w: write gate ``[B, T, H, V]``.
        scale: query scale, default ``K ** -0.5``.
        initial_state: ``[B, H, K, V]`` or None (zeros).

    Returns:
        ``(o [B, T, H, V], final_state [B, H, K, V])`` in the dtype of q.

    Raises:
        TypeError: dtype not float32/float64, or mixed dtypes.
        ValueError: shape mismatch (message names the argument) or NaN/inf in a gate.
    """
    q, k, v, (g, b, w), scale, S0 = check_inputs(
        q, k, v, [("g", g, "K"), ("b", b, "K"), ("w", w, "V")], scale, initial_state)
    return _gdn2_recurrent(q, k, v, g, b, w, scale, S0)


def gdn2_chunked(q, k, v, g, b, w, scale=None, initial_state=None, chunk_size=64):
    """Gated Delta Rule-2, chunkwise WY form (Eq 2.10–2.18), any T.

    Same arguments, returns and errors as :func:`gdn2_recurrent`, plus ``chunk_size``
    (C ≥ 1, default 64; a last partial chunk is handled). Raises ValueError for
    ``chunk_size < 1`` and TypeError for a non-integer chunk_size.
    """
    q, k, v, (g, b, w), scale, S0 = check_inputs(
        q, k, v, [("g", g, "K"), ("b", b, "K"), ("w", w, "V")], scale, initial_state,
        chunk_size)
    return _gdn2_chunked(q, k, v, g, b, w, scale, S0, int(chunk_size))


def kda_recurrent(q, k, v, g, beta, scale=None, initial_state=None):
    """Kimi Delta Attention (Eq 2.7), token by token: g ``[B, T, H, K]``, beta ``[B, T, H]``.

    Other arguments, returns ``(o, final_state)`` and errors as :func:`gdn2_recurrent`.
    """
    q, k, v, (g, beta), scale, S0 = check_inputs(
        q, k, v, [("g", g, "K"), ("beta", beta, "H")], scale, initial_state)
    b, w = kda_gates(beta, q.shape[3], v.shape[3])
    return _gdn2_recurrent(q, k, v, g, b, w, scale, S0)


def kda_chunked(q, k, v, g, beta, scale=None, initial_state=None, chunk_size=64):
    """Kimi Delta Attention (Eq 2.7), chunkwise; arguments as :func:`kda_recurrent`."""
    q, k, v, (g, beta), scale, S0 = check_inputs(
        q, k, v, [("g", g, "K"), ("beta", beta, "H")], scale, initial_state, chunk_size)
    b, w = kda_gates(beta, q.shape[3], v.shape[3])
    return _gdn2_chunked(q, k, v, g, b, w, scale, S0, int(chunk_size))


def gdn_recurrent(q, k, v, g, beta, scale=None, initial_state=None):
    """Gated DeltaNet (Eq 2.6), token by token: g and beta ``[B, T, H]`` (one per head).

    Other arguments, returns ``(o, final_state)`` and errors as :func:`gdn2_recurrent`.
    """
    q, k, v, (g, beta), scale, S0 = check_inputs(
        q, k, v, [("g", g, "H"), ("beta", beta, "H")], scale, initial_state)
    b, w = kda_gates(beta, q.shape[3], v.shape[3])
    return _gdn2_recurrent(q, k, v, gdn_decay(g, q.shape[3]), b, w, scale, S0)


def gdn_chunked(q, k, v, g, beta, scale=None, initial_state=None, chunk_size=64):
    """Gated DeltaNet (Eq 2.6), chunkwise; arguments as :func:`gdn_recurrent`."""
    q, k, v, (g, beta), scale, S0 = check_inputs(
        q, k, v, [("g", g, "H"), ("beta", beta, "H")], scale, initial_state, chunk_size)
    b, w = kda_gates(beta, q.shape[3], v.shape[3])
    return _gdn2_chunked(q, k, v, gdn_decay(g, q.shape[3]), b, w, scale, S0,
                         int(chunk_size))
