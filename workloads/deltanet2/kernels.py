"""Gated DeltaNet-2 kernels (recurrent and chunkwise), with KDA and GDN as special cases.

Public API (FLA conventions, see ``kernels_numpy`` for the readable twins):

* ``gdn2_recurrent`` / ``gdn2_chunked``: g, b ``[B, T, H, K]``, w ``[B, T, H, V]`` (Eq 2.8).
* ``kda_recurrent`` / ``kda_chunked``: g ``[B, T, H, K]``, beta ``[B, T, H]`` (Eq 2.7).
* ``gdn_recurrent`` / ``gdn_chunked``: g, beta ``[B, T, H]`` (Eq 2.6).

KDA and GDN expand their gates (``b = β·1``, ``w = β·1``, g broadcast over K) and run the one
GDN-2 code path, so GDN-2 with tied gates reproduces KDA bit for bit, and KDA with a
per-head decay reproduces GDN bit for bit.

q and k are used as given: callers L2-normalise them (FLA ``use_qk_l2norm_in_kernel=False``).
Inputs are float32 or float64; outputs and the carried state use the input dtype.

The recurrent kernel is a Numba loop over tokens; the B·H sequences are spread over the
cores by threads (the compiled code releases the GIL, and the result does not depend on
the thread count). The chunked kernel is the batched NumPy form of
:func:`kernels_numpy.gdn2_chunked` (its matrix products run in BLAS, so it needs no
compiled loop of its own; ``benchmarks/bench_kernels.py`` measures both kernels with the
same thread count).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise

import numba
import numpy as np

from workloads.deltanet2.kernels_numpy import check_inputs, gdn_decay, kda_gates
from workloads.deltanet2.kernels_numpy import gdn2_chunked as _numpy_gdn2_chunked

__all__ = ["gdn2_chunked", "gdn2_recurrent", "gdn_chunked", "gdn_recurrent", "kda_chunked",
           "kda_recurrent"]

# Below this many state multiply-adds per call (B·H·T·K·V) a second thread costs more to
# start than it saves.
_MIN_PARALLEL_WORK = 1 << 22


@numba.njit(cache=True, nogil=True)
def _recurrent_items(first, last, q, k, v, g, b, w, scale, S, o):  # pragma: no cover - compiled
    """Run the token-serial GDN-2 update in place for sequences ``first .. last − 1``.

    Sequence ``m`` is (batch m // H, head m % H). q, k, g, b: ``[B, T, H, K]``; v, w:
    ``[B, T, H, V]``; S: ``[B·H, K, V]`` (updated); o: ``[B, T, H, V]`` (written); scale has
    the dtype of q.
    """
    _, T, H, K = q.shape
    V = v.shape[3]
    u = np.empty(V, S.dtype)
    for m in range(first, last):
        bi, h = m // H, m % H
        Sh = S[m]
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


def _threads(B: int, H: int, T: int, K: int, V: int) -> int:
    """Threads for a recurrent call: one for small problems, else one per core (<= B·H)."""
    if B * H * T * K * V < _MIN_PARALLEL_WORK:
        return 1
    return max(1, min(_n_cores(), B * H))


def _split_run(kernel, n_items, n_workers, *args):
    """Run ``kernel(first, last, *args)`` over ``range(n_items)`` on up to n_workers threads.

    The kernels release the GIL and write disjoint items; each thread takes one contiguous
    range of items.
    """
    n_workers = min(n_workers, n_items)
    if n_workers <= 1:
        kernel(0, n_items, *args)
        return
    bounds = np.linspace(0, n_items, n_workers + 1).astype(int)
    with ThreadPoolExecutor(n_workers) as pool:
        jobs = [pool.submit(kernel, int(lo), int(hi), *args) for lo, hi in pairwise(bounds)]
        for job in jobs:
            job.result()


def _gdn2_recurrent(q, k, v, g, b, w, scale, S0):
    """Token-serial GDN-2 on validated inputs; returns ``(o [B,T,H,V], S [B,H,K,V])``."""
    B, T, H, K = q.shape
    V = v.shape[3]
    dt = q.dtype
    S = np.zeros((B * H, K, V), dt)
    if S0 is not None:
        S[:] = S0.reshape(B * H, K, V)
    o = np.empty((B, T, H, V), dt)
    _split_run(_recurrent_items, B * H, _threads(B, H, T, K, V),
               *(np.ascontiguousarray(x) for x in (q, k, v, g, b, w)), dt.type(scale), S, o)
    return o, S.reshape(B, H, K, V)


def _gdn2_chunked(q, k, v, g, b, w, scale, S0, C):
    """Chunkwise GDN-2 on validated inputs (the batched NumPy form)."""
    return _numpy_gdn2_chunked(q, k, v, g, b, w, scale, S0, C)


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
