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

The recurrent kernel is a Numba loop over tokens. The chunked kernel works through blocks
of chunks: a Numba pass does the gate algebra, every chunk-parallel product (Eq 2.12, 2.14,
2.16, 2.17) is one batched NumPy matmul over the block's chunks and heads (Numba's own
``np.dot`` would need SciPy's BLAS), a Numba forward substitution inverts I + T (Eq 2.13),
and only the state hand-off (Eq 2.15, 2.18) loops over chunks. The Numba passes release
the GIL and are split over the cores.

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

from workloads.deltanet2.kernels_numpy import check_inputs, gdn_decay, kda_gates

__all__ = ["gdn2_chunked", "gdn2_recurrent", "gdn_chunked", "gdn_recurrent", "kda_chunked",
           "kda_recurrent"]

# Tokens per sub-chunk of the strong-decay path (see the module docstring).
SUB_CHUNK = 16

# Largest |exponent| a decay factor may carry: exp(±60) is comfortably normal in float32 and
# exp(±600) in float64.
_MAX_EXPONENT = {np.dtype(np.float32): 60.0, np.dtype(np.float64): 600.0}

# Below this many chunks per worker the thread start-up costs more than it saves.
_MIN_ITEMS_PER_THREAD = 16

# (sequence, chunk) pairs processed together by the chunked kernel: large enough for
# well-batched matrix products, small enough for the work buffers to stay in cache.
_BLOCK_ITEMS = 128


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


@numba.njit(cache=True, nogil=True)
def _prepare_chunks(first, last, c0, q, k, v, g, b, w, scale, limit,
                    EQ, Kbar, Ktail, Z, gamma_end, safe):  # pragma: no cover - compiled
    """Per-chunk gate algebra of Eq 2.10–2.11 and 2.18 in one pass over the inputs.

    Works on a block of n chunks starting at chunk c0, for all B·H sequences, and handles
    the flat (sequence, chunk-in-block) items ``first..last-1``. Inputs q, k, g, b
    ``[B, T, H, K]`` and v, w ``[B, T, H, V]``; outputs (C rows per chunk, tokens past T read
    as zeros, which is exact): EQ ``[BH, n, 2C, K]`` = [Ē = γ⊙b⊙k ; Q_γ]; Kbar
    ``[BH, n, C, K]`` = γ^{-1}⊙k (zeros where unsafe); Ktail ``[BH, n, C, K]`` rows
    (γ_C/γ_r)⊙k_r; Z ``[BH, n, C, V]`` = w⊙v; gamma_end ``[BH, n, K]``; safe ``[BH, n]``
    true where every |G| ≤ limit, so γ and γ^{-1} are finite and normal.
    """
    _, T, H, K = q.shape
    V = v.shape[3]
    n_block, C = Kbar.shape[1], Kbar.shape[2]
    Gc = np.empty((C, K), Kbar.dtype)
    gm = np.empty(K, Kbar.dtype)
    for item in range(first, last):
        sq, c = item // n_block, item % n_block
        bi, h = sq // H, sq % H
        t0 = (c0 + c) * C
        n_rows = max(0, min(C, T - t0))
        grows = False
        for r in range(C):
            # Rows past T repeat the last cumulative decay (g = 0 padding).
            Gr, gr = Gc[r], g[bi, min(t0 + r, T - 1), h]
            for i in range(K):
                step = gr[i] if r < n_rows else 0.0
                Gr[i] = step if r == 0 else Gc[r - 1, i] + step
                grows |= step > 0
        # With g ≤ 0 the largest |G| sits in the last row; otherwise scan them all.
        big = 0.0
        for r in range(C - 1 if not grows else 0, C):
            for i in range(K):
                big = max(big, abs(Gc[r, i]))
        ok = big <= limit
        safe[sq, c] = ok
        gend = gamma_end[sq, c]
        for i in range(K):
            gend[i] = np.exp(Gc[C - 1, i])
        EQ[sq, c, n_rows:C] = 0.0
        EQ[sq, c, C + n_rows:] = 0.0
        Kbar[sq, c, n_rows:] = 0.0
        Ktail[sq, c, n_rows:] = 0.0
        Z[sq, c, n_rows:] = 0.0
        for r in range(n_rows):
            t = t0 + r
            kr, br, qr = k[bi, t, h], b[bi, t, h], q[bi, t, h]
            er, qg, kbar, ktail = EQ[sq, c, r], EQ[sq, c, C + r], Kbar[sq, c, r], Ktail[sq, c, r]
            Gr = Gc[r]
            for i in range(K):
                gm[i] = np.exp(Gr[i])
            for i in range(K):
                er[i] = gm[i] * br[i] * kr[i]
                qg[i] = gm[i] * qr[i] * scale
            if ok:
                for i in range(K):
                    kb = kr[i] / gm[i]
                    kbar[i] = kb
                    ktail[i] = gend[i] * kb
            else:
                kbar[:] = 0.0
                for i in range(K):
                    ktail[i] = kr[i] * np.exp(Gc[C - 1, i] - Gr[i])
            zr, wr, vr = Z[sq, c, r], w[bi, t, h], v[bi, t, h]
            for j in range(V):
                zr[j] = wr[j] * vr[j]


@numba.njit(cache=True, nogil=True)
def _invert_and_mask(first, last, scores, A):  # pragma: no cover - compiled
    """Write ``A = (I + T)^{-1}`` ``[M, C, C]`` for chunks ``first..last-1`` (Eq 2.13).

    scores ``[M, 2C, C]`` stacks [T ; A_qk]: only T's strict lower part is read and A_qk is
    masked to its lower triangle in place. Row-oriented forward substitution,
    A_r = e_r − Σ_{s<r} T_rs A_s, costs (C³ − C)/6 multiply-adds per chunk.
    """
    C = scores.shape[2]
    for m in range(first, last):
        Am = A[m]
        Am[:] = 0
        for r in range(C):
            Am[r, r] = 1
            for s in range(r):
                t = scores[m, r, s]
                for j in range(s + 1):
                    Am[r, j] -= t * Am[s, j]
            for s in range(r + 1, C):
                scores[m, C + r, s] = 0


def _split_run(kernel, n_items, *args):
    """Run ``kernel(first, last, *args)`` over ``range(n_items)`` split across the cores.

    The kernels release the GIL and write disjoint items; small jobs stay on this thread.
    """
    n_workers = min(os.cpu_count() or 1, n_items // _MIN_ITEMS_PER_THREAD)
    if n_workers <= 1:
        kernel(0, n_items, *args)
        return
    bounds = np.linspace(0, n_items, n_workers + 1).astype(int)
    with ThreadPoolExecutor(n_workers) as pool:
        jobs = [pool.submit(kernel, int(lo), int(hi), *args)
                for lo, hi in pairwise(bounds)]
        for job in jobs:
            job.result()


@numba.njit(cache=True, nogil=True)
def _pairwise_scores(G, e, qs, k, chunks, r0, r1, Tm, Aqk):  # pragma: no cover - compiled
    """Rows r0..r1 of T and A_qk for the listed chunks from exp(G_r − G_s): the slow,
    always-safe form of Eq 2.12 and 2.16 for sub-chunks too strong to factorise."""
    K = G.shape[2]
    for m in chunks:
        for r in range(r0, r1):
            for s in range(r + 1):
                acc_t = 0.0
                acc_q = 0.0
                for i in range(K):
                    d = np.exp(G[m, r, i] - G[m, s, i]) * k[m, s, i]
                    acc_t += e[m, r, i] * d
                    acc_q += qs[m, r, i] * d
                Tm[m, r, s] = acc_t if s < r else 0.0
                Aqk[m, r, s] = acc_q


def _subchunk_scores(G, e, qs, k):
    """T (Eq 2.12) and A_qk (Eq 2.16), each ``[M, C, C]``, for strongly decaying chunks.

    G is the within-chunk cumulative log decay, e = b ⊙ k, qs = scale·q, all ``[M, C, K]``.
    For rows in sub-chunk [r0, r1) the pair decay γ_r/γ_s is split at the boundary before
    r0 as exp(G_r − G_ref)·exp(G_ref − G_s): both factors are ≤ 1 for earlier columns and
    bounded by the sub-chunk's own gate sum on its diagonal block.
    """
    M, C, K = k.shape
    limit = _MAX_EXPONENT[k.dtype]
    Tm = np.zeros((M, C, C), k.dtype)
    Aqk = np.zeros((M, C, C), k.dtype)
    for r0 in range(0, C, SUB_CHUNK):
        r1 = min(r0 + SUB_CHUNK, C)
        n = r1 - r0
        ref = G[:, r0 - 1:r0] if r0 else np.zeros((M, 1, K), k.dtype)
        row_x = G[:, r0:r1] - ref
        col_x = ref - G[:, :r1]
        # Clipping keeps exp finite; clipped sub-chunks are recomputed exactly below.
        row_f = np.exp(np.minimum(row_x, limit))
        col_k = k[:, :r1] * np.exp(np.minimum(col_x, limit))
        rows = np.concatenate([e[:, r0:r1] * row_f, qs[:, r0:r1] * row_f], axis=1)
        scores = rows @ np.swapaxes(col_k, 1, 2)
        Tm[:, r0:r1, :r1] = scores[:, :n]
        Aqk[:, r0:r1, :r1] = scores[:, n:]
        unsafe = np.maximum(row_x.max(axis=(1, 2)), col_x.max(axis=(1, 2))) > limit
        if unsafe.any():
            _pairwise_scores(G, e, qs, k, np.flatnonzero(unsafe), r0, r1, Tm, Aqk)
    return np.tril(Tm, -1), np.tril(Aqk)


def _fix_unsafe_scores(scores, safe, c0, q, k, g, b, scale):
    """Overwrite the scores of a block's chunks flagged unsafe with the sub-chunk form.

    scores ``[BH, n, 2C, C]`` and safe ``[BH, n]`` cover chunks c0 .. c0 + n − 1.
    """
    H, K = q.shape[2], q.shape[3]
    C = scores.shape[3]
    seqs, chunks = np.nonzero(~safe)
    if seqs.size == 0:
        return

    def gather(x):
        out = np.zeros((seqs.size, C, K), x.dtype)
        for n, (sq, c) in enumerate(zip(seqs, chunks, strict=True)):
            rows = x[sq // H, (c0 + c) * C:(c0 + c + 1) * C, sq % H]
            out[n, :rows.shape[0]] = rows
        return out

    kb = gather(k)
    G = np.cumsum(gather(g), axis=1)
    Tm, Aqk = _subchunk_scores(G, gather(b) * kb, gather(q) * scale, kb)
    scores[seqs, chunks, :C] = Tm
    scores[seqs, chunks, C:] = Aqk


def _gdn2_chunked(q, k, v, g, b, w, scale, S0, C):
    """Chunkwise GDN-2 on validated inputs; returns ``(o [B,T,H,V], S [B,H,K,V])``.

    Chunks are processed in blocks of about ``_BLOCK_ITEMS / (B·H)`` so the work buffers
    stay cache-sized and are reused: fresh large arrays cost a page fault per 4 KiB.
    """
    B, T, H, K = q.shape
    V = v.shape[3]
    dt = q.dtype
    n_seq, N = B * H, -(-T // C)
    n_blocks = -(-N // max(1, _BLOCK_ITEMS // n_seq))
    nb = -(-N // n_blocks)                  # chunks per block; the last may run past N
    q, k, v, g, b, w = (np.ascontiguousarray(x) for x in (q, k, v, g, b, w))
    scale = dt.type(scale)
    EQ = np.empty((n_seq, nb, 2 * C, K), dt)
    Kbar, Ktail = np.empty((2, n_seq, nb, C, K), dt)
    Z, U, R, out, AR = np.empty((5, n_seq, nb, C, V), dt)
    gamma_end = np.empty((n_seq, nb, K), dt)
    safe = np.empty((n_seq, nb), np.bool_)
    scores = np.empty((n_seq, nb, 2 * C, C), dt)
    A = np.empty((n_seq, nb, C, C), dt)
    P = np.empty((n_seq, 2 * C, V), dt)
    write = np.empty((n_seq, K, V), dt)
    S = np.zeros((n_seq, K, V), dt)
    if S0 is not None:
        S[:] = S0.reshape(n_seq, K, V)
    Ebar, Aqk, K_tail_t = EQ[:, :, :C], scores[:, :, C:], np.swapaxes(Ktail, -1, -2)
    o = np.empty((B, T, H, V), dt)
    for c0 in range(0, N, nb):
        _split_run(_prepare_chunks, n_seq * nb, c0, q, k, v, g, b, w, scale,
                   _MAX_EXPONENT[dt], EQ, Kbar, Ktail, Z, gamma_end, safe)
        np.matmul(EQ, np.swapaxes(Kbar, -1, -2), out=scores)   # [Ē ; Q_γ] K̄ᵀ (2.12, 2.16)
        _fix_unsafe_scores(scores, safe, c0, q, k, g, b, scale)
        _split_run(_invert_and_mask, n_seq * nb, scores.reshape(n_seq * nb, 2 * C, C),
                   A.reshape(n_seq * nb, C, C))                 # (2.13)
        np.matmul(A, Ebar, out=Ebar)                           # Y = A Ē     (2.14)
        np.matmul(A, Z, out=U)                                 # U = A Z
        n_real = min(nb, N - c0)
        R[:, n_real:] = 0                                      # chunks past the end
        for c in range(n_real):
            np.matmul(EQ[:, c], S, out=P)                      # [Y ; Q_γ] S_0
            np.subtract(U[:, c], P[:, :C], out=R[:, c])        # (2.15)
            out[:, c] = P[:, C:]
            np.matmul(K_tail_t[:, c], R[:, c], out=write)
            S *= gamma_end[:, c, :, None]
            S += write                                         # (2.18)
        np.matmul(Aqk, R, out=AR)
        out += AR                                              # (2.17)
        t0, t1 = c0 * C, min(T, (c0 + nb) * C)
        o[:, t0:t1] = out.reshape(B, H, nb * C, V)[:, :, :t1 - t0].transpose(0, 2, 1, 3)
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
