"""Numba core of the chunkwise Gated DeltaNet-2 kernel (WORKLOADS Eq 2.10–2.18).

One call of :func:`chunked_items` runs whole sequences chunk after chunk with work buffers
(about 0.4 MiB at C = 64, K = V = 128 in float32) that stay in the core's L2 cache and are
reused by every chunk. A work item is one (sequence, value-column slice) pair: the delta
rule acts on the state's value columns independently, so a sequence can be split over the
cores by columns when there are fewer sequences than cores (each slice then recomputes the
gate algebra and scores). Results do not depend on the split.

Per chunk (C rows; S_0 = state entering the chunk, K×V):

1. gate algebra (Eq 2.10–2.11, 2.18): Ē, Q_γ, K̄, K_tail (C×K), Z = W ⊙ V, γ_C;
2. scores T = strict_lower(Ē K̄ᵀ) and A_qk = lower(Q_γ K̄ᵀ) (Eq 2.12, 2.16);
3. R = (I + T)^{-1} (Z − Ē S_0) = U − Y S_0 (Eq 2.13–2.15) by blocked forward substitution:
   neither the inverse A nor Y = A Ē and U = A Z is formed, which saves the C³/3 inverse
   and two C×C×K products;
4. O = Q_γ S_0 + A_qk R (Eq 2.17) and S_C = Diag(γ_C) S_0 + K_tailᵀ R (Eq 2.18).

Every product runs through one register-tiled kernel (:func:`_tile_typing`: a 6- or 4-row
by two-vector block of the result, emitted as LLVM vector code so that the accumulators stay
in registers) on zero-padded row-major buffers, at roughly BLAS speed without BLAS's packing
and call overhead for these small products. Products with a triangular factor skip its zero
blocks: the scores compute only the blocks on or below the diagonal, and A_qk R and the
solve for R stop each sum at the diagonal. While a chunk computes, the next chunk's input
rows are prefetched a few at a time (:func:`_prefetch_ahead`).

Decays: K̄ = γ^{-1} ⊙ k overflows for strong decay (|G| over a chunk beyond ``limit``, 60
in float32, 600 in float64). Such chunks get their scores from 16-token sub-chunks with
the split point inside the chunk, and sub-chunks still too strong pair by pair from
exp(G_r − G_s) (:func:`_strong_decay_scores`), so any finite log decay gives finite, exact
results.
"""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic, overload

# Tokens per sub-chunk of the strong-decay path.
SUB_CHUNK = 16

# Reassociation lets LLVM vectorise reductions and use FMA; no flag assumes finite values,
# so the ±inf of a clipped decay still propagates as IEEE arithmetic says. The kernels also
# use NumPy's error model: a float division by zero gives inf rather than raising, and
# without the per-element check LLVM vectorises the division loops.
_FASTMATH = {"reassoc", "contract"}

# Rows of a result tile: the wide tile holds 6 × 2 vector accumulators (with the two
# vectors of B and a broadcast, 15 of the 16 AVX registers), the narrow one fills in the
# rows a multiple of 6 leaves. Either tile is two 32-byte vectors wide: 16 float32 or 8
# float64.
_WIDE_ROWS = 6
_TILE_ROWS = 4
_VECTOR_BYTES = 32
# Buffer padding: row counts that tiles cover (multiples of _TILE_ROWS) and column counts
# that tiles cover (multiples of both tile widths).
_PAD_COLUMNS = 16


def _tile_intrinsic(rows):
    """The tile intrinsic for ``rows`` rows (see :func:`_tile_typing`)."""

    def tile(typingctx, a, a_off, lda, a_step, b, b_off, ldb, c, c_off, ldc, n_k, init, negate):
        return _tile_typing(rows, a, a_off, lda, a_step, b, b_off, ldb, c, c_off, ldc, n_k,
                            init, negate)

    tile.__name__ = tile.__qualname__ = f"_tile{rows}"
    return intrinsic(tile)


def _tile_typing(rows, a, a_off, lda, a_step, b, b_off, ldb, c, c_off, ldc, n_k, init, negate):
    """One result tile: ``C[r, 0:w] = (init ? C[r, 0:w] : 0) ± Σ_k A[r, k] B[k, 0:w]``.

    For r < rows and k < n_k, with w = 64 bytes of elements (16 float32, 8 float64); A, B and
    C are float arrays of one dtype, addressed from their data pointers by element offsets:
    A[r, k] at ``a_off + r·lda + k·a_step`` (a_step = 1 for a row-major A, or lda = 1 to
    read a row-major array transposed), B[k, :] at ``b_off + k·ldb`` and C[r, :] at
    ``c_off + r·ldc``, each row of B and C contiguous. Subtracts the sum when ``negate``.

    The 2·rows vector accumulators live in registers across the loop over k, each step
    loading one row of B (two vectors), broadcasting ``rows`` elements of A and issuing
    2·rows fused multiply-adds: the register blocking of a BLAS micro-kernel, which Numba's
    loop vectoriser does not produce from plain loops.
    """
    arrays = (a, b, c)
    if not all(isinstance(x, types.Array) for x in arrays):
        return None
    if a.dtype not in (types.float32, types.float64) or any(x.dtype != a.dtype for x in arrays):
        return None
    sig = types.none(a, a_off, lda, a_step, b, b_off, ldb, c, c_off, ldc, n_k, init, negate)

    def codegen(context, builder, signature, args):
        argtys = signature.args
        elt = context.get_value_type(argtys[0].dtype)
        itemsize = context.get_abi_sizeof(elt)
        lanes = _VECTOR_BYTES // itemsize
        vec = ir.VectorType(elt, lanes)
        intp = context.get_value_type(types.intp)

        def address(i):
            data = context.make_array(argtys[i])(context, builder, args[i]).data
            return builder.ptrtoint(data, intp)

        def index(i):
            return context.cast(builder, args[i], argtys[i], types.intp)

        def pointer(base, offset, ty):
            byte = builder.mul(offset, ir.Constant(intp, itemsize))
            return builder.inttoptr(builder.add(base, byte), ty.as_pointer())

        def const(x):
            return ir.Constant(intp, x)

        A, B, C = address(0), address(4), address(7)
        a_off, lda, a_step, b_off, ldb, c_off, ldc, n_k = (
            index(i) for i in (1, 2, 3, 5, 6, 8, 9, 10))
        init = context.cast(builder, args[11], argtys[11], types.boolean)
        negate = context.cast(builder, args[12], argtys[12], types.boolean)
        suffix = f"v{lanes}f{8 * itemsize}"
        fmuladd = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(vec, [vec, vec, vec]), f"llvm.fmuladd.{suffix}")
        c_cells = [builder.add(builder.add(c_off, builder.mul(const(r), ldc)), const(h * lanes))
                   for r in range(rows) for h in range(2)]
        zero = ir.Constant(vec, None)
        accumulators = []
        for _ in c_cells:
            slot = cgutils.alloca_once(builder, vec)    # promoted to a register by LLVM
            builder.store(zero, slot)
            accumulators.append(slot)
        a_rows = [builder.add(a_off, builder.mul(const(r), lda)) for r in range(rows)]
        undef = ir.Constant(vec, ir.Undefined)
        first_lane = ir.Constant(ir.IntType(32), 0)
        broadcast = ir.Constant(ir.VectorType(ir.IntType(32), lanes), None)
        with cgutils.for_range(builder, n_k) as loop:
            k = loop.index
            b_row = builder.add(b_off, builder.mul(k, ldb))
            b_vecs = [builder.load(pointer(B, builder.add(b_row, const(h * lanes)), vec),
                                   align=itemsize) for h in range(2)]
            for r in range(rows):
                a_cell = builder.add(a_rows[r], builder.mul(k, a_step))
                x = builder.load(pointer(A, a_cell, elt), align=itemsize)
                x = builder.shuffle_vector(builder.insert_element(undef, x, first_lane), undef,
                                           broadcast)
                for h in range(2):
                    slot = accumulators[2 * r + h]
                    builder.store(builder.call(fmuladd, [x, b_vecs[h], builder.load(slot)]),
                                  slot)
        # The flags act once per tile, outside the loop: C = (init ? C : 0) ± sum.
        for cell, slot in zip(c_cells, accumulators, strict=True):
            ptr = pointer(C, cell, vec)
            start = builder.select(init, builder.load(ptr, align=itemsize), zero)
            total = builder.load(slot)
            builder.store(builder.select(negate, builder.fsub(start, total),
                                         builder.fadd(start, total)), ptr, align=itemsize)
        return context.get_dummy_value()

    return sig, codegen


_tile = _tile_intrinsic(_TILE_ROWS)
_wide_tile = _tile_intrinsic(_WIDE_ROWS)


@numba.njit(cache=True, nogil=True, inline="always")
def _round_up(x, m):  # pragma: no cover - compiled
    return (x + m - 1) // m * m


@numba.njit(cache=True, nogil=True, inline="always")
def _wide_rows(M):  # pragma: no cover - compiled
    """Rows of an M-row product (M a multiple of 4) that wide tiles cover: an even number of
    6-row blocks, which leaves a multiple of 4 rows for the narrow tiles."""
    return M // (2 * _WIDE_ROWS) * (2 * _WIDE_ROWS)


@numba.njit(cache=True, nogil=True, inline="always")
def _row_blocks(M):  # pragma: no cover - compiled
    """Blocks of rows, hence prefetch steps, in an M-row :func:`_product`."""
    wide = _wide_rows(M)
    return wide // _WIDE_ROWS + (M - wide) // _TILE_ROWS


@intrinsic
def _prefetch(typingctx, address):
    """Hint the CPU to fetch the cache line at integer ``address`` (read, keep cached)."""
    if not isinstance(address, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        byte_ptr = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [byte_ptr, i32, i32, i32])
        fn = builder.module.declare_intrinsic("llvm.prefetch", [byte_ptr], fnty)
        ptr = builder.inttoptr(args[0], byte_ptr)
        builder.call(fn, [ptr, ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return types.none(address), codegen


# Fields of a prefetch plan (an int64 array): the sequence (bi, h), the first token of the
# next chunk, how many rows were fetched, how many to fetch, and how many per call.
_PLAN_B, _PLAN_H, _PLAN_T, _PLAN_DONE, _PLAN_TOTAL, _PLAN_STEP = range(6)
# Arrays a plan walks through, row by row: the six inputs and the output.
_PLAN_ARRAYS = 7


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _prefetch_row(x, bi, h, t):  # pragma: no cover - compiled
    """Prefetch row (bi, t, h) of x ``[B, T, H, D]`` (C-contiguous), if t < T."""
    _, T, H, D = x.shape
    if t < T:
        row_bytes = D * x.itemsize
        start = x.ctypes.data + ((bi * T + t) * H + h) * row_bytes
        for offset in range(0, row_bytes, 64):
            _prefetch(start + offset)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _prefetch_ahead(arrays, plan):  # pragma: no cover - compiled
    """Prefetch the next ``plan[_PLAN_STEP]`` rows of the next chunk.

    Row m of the plan is token ``plan[_PLAN_T] + m // 7`` of sequence (plan[_PLAN_B],
    plan[_PLAN_H]) in ``arrays[m % 7]`` (seven ``[B, T, H, D]`` arrays, C-contiguous; a
    tuple indexed by constants, so their types may differ, e.g. read-only inputs). One
    head's rows are short runs far apart, which the hardware prefetchers follow poorly,
    and a burst of software prefetches overflows the miss queues; a few rows after each
    block of a product spread the fetches over the chunk's arithmetic.
    """
    bi, h = plan[_PLAN_B], plan[_PLAN_H]
    for _ in range(plan[_PLAN_STEP]):
        done = plan[_PLAN_DONE]
        if done >= plan[_PLAN_TOTAL]:
            return
        plan[_PLAN_DONE] = done + 1
        t = plan[_PLAN_T] + done // _PLAN_ARRAYS
        which = done % _PLAN_ARRAYS
        if which == 0:
            _prefetch_row(arrays[0], bi, h, t)
        elif which == 1:
            _prefetch_row(arrays[1], bi, h, t)
        elif which == 2:
            _prefetch_row(arrays[2], bi, h, t)
        elif which == 3:
            _prefetch_row(arrays[3], bi, h, t)
        elif which == 4:
            _prefetch_row(arrays[4], bi, h, t)
        elif which == 5:
            _prefetch_row(arrays[5], bi, h, t)
        else:
            _prefetch_row(arrays[6], bi, h, t)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _product(A, B, out, init, negate, lower_a, lower_out, transpose_a,
             arrays, plan):  # pragma: no cover - compiled
    """``out (+)= ± op(A) @ B`` for C-contiguous float arrays, tile by tile.

    op(A) = A, or Aᵀ when ``transpose_a``; op(A) ``[M, L]``, B ``[L, N]``, out ``[M, N']``
    (N ≤ N'), M a multiple of 4 and N of 16. ``init`` adds to out instead of overwriting
    it; ``negate`` subtracts the product. ``lower_a``: op(A) is lower triangular, so the
    sums for rows i .. i + 3 stop at k = i + 3. ``lower_out``: only tiles that reach the
    lower triangle of a square result (column j ≤ i + 3) are computed; the caller clears
    what lies above the diagonal. Each block of four rows ends with a prefetch step
    (:func:`_prefetch_ahead`).
    """
    if transpose_a:
        L, M = A.shape
        lda, step = 1, M
    else:
        M, L = A.shape
        lda, step = L, 1
    N = B.shape[1]
    ldc = out.shape[1]
    width = 2 * _VECTOR_BYTES // A.itemsize
    wide_end = _wide_rows(M)
    i = 0
    while i < M:
        rows = _WIDE_ROWS if i < wide_end else _TILE_ROWS
        n_k = min(L, i + rows) if lower_a else L
        j_end = min(N, i + rows) if lower_out else N
        for j in range(0, j_end, width):
            if rows == _WIDE_ROWS:
                _wide_tile(A, i * lda, lda, step, B, j, N, out, i * ldc + j, ldc, n_k, init,
                           negate)
            else:
                _tile(A, i * lda, lda, step, B, j, N, out, i * ldc + j, ldc, n_k, init, negate)
        _prefetch_ahead(arrays, plan)
        i += rows


@numba.njit(cache=True, nogil=True, fastmath=_FASTMATH, error_model="numpy")
def _solve_unit_lower(Tm, X, n, arrays, plan):  # pragma: no cover - compiled
    """Overwrite X ``[C', V']`` with (I + T)^{-1} X (Eq 2.13–2.14 applied to X).

    T ``[C', C']`` is read strictly below the diagonal in rows < n (rows past n of X are
    zero and stay so). Blocked forward substitution: each block of four rows first takes
    the product with the rows already solved (one tile pass), then the substitution inside
    the block. This costs the n²·V'/2 multiply-adds of applying the inverse and never forms
    it.
    """
    Cp, Vp = X.shape
    width = 2 * _VECTOR_BYTES // X.itemsize
    for i in range(0, n, _TILE_ROWS):
        if i > 0:
            for j in range(0, Vp, width):
                _tile(Tm, i * Cp, Cp, 1, X, j, Vp, X, i * Vp + j, Vp, i, True, True)
        for r in range(i + 1, min(i + _TILE_ROWS, n)):
            for s in range(i, r):
                t = Tm[r, s]
                for j in range(Vp):
                    X[r, j] -= t * X[s, j]
        _prefetch_ahead(arrays, plan)


# -- exp(x) for |x| ≤ limit, in loops LLVM can vectorise ----------------------------------
# Numba calls libm's exp one element at a time, which made the C·K decays γ of each chunk
# a large share of the gate algebra. Here exp(x) = 2^n · p(r) with n = round(x / ln 2) taken by the
# round-to-integer trick (x·log2 e + 1.5·2^m, m = mantissa bits), r = x − n·ln 2 in two parts,
# p a Taylor polynomial (error below one ulp for |r| ≤ ln2 / 2) and 2^n added to the
# exponent field of p. Only for finite |x| ≤ limit (60 in float32, 600 in float64), where
# neither the result nor 2^n leaves the normal range.

_F32 = (np.float32(1.5 * 2.0**23), np.float32(1.4426950408889634), np.float32(0.693359375),
        np.float32(-2.1219444005469057e-04),
        tuple(np.float32(1 / np.prod(np.arange(1, d + 1, dtype=np.float64))) for d in range(8)))
_F32_MAGIC_BITS = np.int32(0x4B400000)
_F64 = (np.float64(1.5 * 2.0**52), np.float64(1.4426950408889634),
        np.float64(6.93147180369123816490e-01), np.float64(1.90821492927058770002e-10),
        tuple(np.float64(1 / np.prod(np.arange(1, d + 1, dtype=np.float64))) for d in range(14)))
_F64_MAGIC_BITS = np.int64(0x4338000000000000)


def _exp_small(x, out):
    """``out[:] = exp(x)`` for 1-D float arrays with every |x| ≤ limit; x is overwritten."""
    raise NotImplementedError  # pragma: no cover - replaced by the overload below in Numba


def _exp_small_f32(x, out):  # pragma: no cover - compiled
    magic, log2e, ln2_hi, ln2_lo, c = _F32
    for i in range(x.size):
        xi = x[i]
        t = xi * log2e + magic
        x[i] = t
        f = t - magic
        r = (xi - f * ln2_hi) - f * ln2_lo
        p = c[7]
        p = p * r + c[6]
        p = p * r + c[5]
        p = p * r + c[4]
        p = p * r + c[3]
        p = p * r + c[2]
        p = p * r + c[1]
        out[i] = p * r + c[0]
    bits, nbits = out.view(np.int32), x.view(np.int32)
    for i in range(x.size):
        bits[i] += (nbits[i] - _F32_MAGIC_BITS) << 23


def _exp_small_f64(x, out):  # pragma: no cover - compiled
    magic, log2e, ln2_hi, ln2_lo, c = _F64
    for i in range(x.size):
        xi = x[i]
        t = xi * log2e + magic
        x[i] = t
        f = t - magic
        r = (xi - f * ln2_hi) - f * ln2_lo
        p = c[13]
        p = p * r + c[12]
        p = p * r + c[11]
        p = p * r + c[10]
        p = p * r + c[9]
        p = p * r + c[8]
        p = p * r + c[7]
        p = p * r + c[6]
        p = p * r + c[5]
        p = p * r + c[4]
        p = p * r + c[3]
        p = p * r + c[2]
        p = p * r + c[1]
        out[i] = p * r + c[0]
    bits, nbits = out.view(np.int64), x.view(np.int64)
    for i in range(x.size):
        bits[i] += (nbits[i] - _F64_MAGIC_BITS) << 52


# Compiled without reassociation, which would fold (t − magic) back to x·log2 e.
@overload(_exp_small, jit_options={"nogil": True, "fastmath": {"contract"}, "error_model": "numpy"})
def _exp_small_overload(x, out):
    return _exp_small_f32 if x.dtype == types.float32 else _exp_small_f64


@numba.njit(cache=True, nogil=True, fastmath=_FASTMATH, error_model="numpy")
def _prepare_chunk(q, k, v, g, b, w, bi, h, t0, n, v0, nv, scale, limit,
                   G, gamma, gend, E, Qg, Kt, X):  # pragma: no cover - compiled
    """Gate algebra of one chunk (Eq 2.10–2.11, 2.18); returns True where γ^{-1} is safe.

    Rows t0 .. t0 + n − 1 of sequence (bi, h), value columns v0 .. v0 + nv − 1. Writes
    gend = γ at row n − 1 (γ_C, as padding with g = 0 leaves it unchanged), and rows < n of
    E = Ē, Qg = Q_γ, Kt = K_tail and X = Z = W ⊙ V; rows n .. C − 1 are zeroed, the padding
    past C, K and nv is left as is. G and gamma are ``[C, K]``: when safe, G's rows < n end
    up holding K̄ (rows n .. C − 1 zero); when not, G keeps the cumulative log decay (rows
    < n) for :func:`_strong_decay_scores`. Safe means every |G| ≤ limit, so γ and γ^{-1}
    are finite and normal.

    Direct indexing (no row views, whose reference counting costs atomics) and one store
    per loop: with more, LLVM's run-time alias checks exceed its budget and the loop stays
    scalar.
    """
    K = q.shape[3]
    C = G.shape[0]
    good = 0
    for r in range(n):
        t = t0 + r
        if r == 0:
            for i in range(K):
                G[r, i] = g[bi, t, h, i]
        else:
            for i in range(K):
                G[r, i] = G[r - 1, i] + g[bi, t, h, i]
        for i in range(K):
            good += abs(G[r, i]) <= limit
    ok = good == n * K
    flat, gam = G.reshape(C * K)[:n * K], gamma.reshape(C * K)[:n * K]
    if ok:
        _exp_small(flat, gam)   # G becomes scratch
    else:
        for i in range(n * K):
            gam[i] = np.exp(flat[i])
    gam = gamma
    for i in range(K):
        gend[i] = gam[n - 1, i]
    for r in range(n):
        t = t0 + r
        for i in range(K):
            E[r, i] = gam[r, i] * b[bi, t, h, i] * k[bi, t, h, i]
        for i in range(K):
            Qg[r, i] = gam[r, i] * q[bi, t, h, i] * scale
        if ok:
            for i in range(K):
                G[r, i] = k[bi, t, h, i] / gam[r, i]     # K̄
            for i in range(K):
                Kt[r, i] = gend[i] * G[r, i]
        else:
            for i in range(K):
                Kt[r, i] = k[bi, t, h, i] * np.exp(G[n - 1, i] - G[r, i])
        for j in range(nv):
            X[r, j] = w[bi, t, h, v0 + j] * v[bi, t, h, v0 + j]
    if n < C:
        E[n:C] = 0.0
        Qg[n:C] = 0.0
        if ok:
            G[n:C] = 0.0
        Kt[n:C] = 0.0
        X[n:C] = 0.0
    return ok


@numba.njit(cache=True, nogil=True, fastmath=_FASTMATH, error_model="numpy")
def _strong_decay_scores(q, k, b, bi, h, t0, n, scale, limit, G,
                         Tm, Aqk, er, qr, colk):  # pragma: no cover - compiled
    """T (Eq 2.12) and A_qk (Eq 2.16) of a chunk whose γ^{-1} would overflow.

    For rows in sub-chunk [r0, r1) the pair decay γ_r/γ_s is split at the boundary before
    r0 as exp(G_r − G_ref)·exp(G_ref − G_s): both factors are ≤ 1 for earlier columns and
    bounded by the sub-chunk's own gate sum on its diagonal block. Sub-chunks whose factors
    would still exceed exp(limit) use exp(G_r − G_s) pair by pair. Tm and Aqk are written
    whole (zeros outside the strict lower and the lower triangle).
    """
    K = q.shape[3]
    Tm[:] = 0
    Aqk[:] = 0
    for r0 in range(0, n, SUB_CHUNK):
        r1 = min(r0 + SUB_CHUNK, n)
        big = 0.0
        for r in range(r0, r1):
            for i in range(K):
                ref = G[r0 - 1, i] if r0 else 0.0
                big = max(big, G[r, i] - ref)
        for s in range(r1):
            for i in range(K):
                ref = G[r0 - 1, i] if r0 else 0.0
                big = max(big, ref - G[s, i])
        factorised = big <= limit
        if factorised:
            for s in range(r1):
                ks = k[bi, t0 + s, h]
                for i in range(K):
                    ref = G[r0 - 1, i] if r0 else 0.0
                    colk[s, i] = ks[i] * np.exp(ref - G[s, i])
        for r in range(r0, r1):
            kr, br, qq = k[bi, t0 + r, h], b[bi, t0 + r, h], q[bi, t0 + r, h]
            if factorised:
                for i in range(K):
                    ref = G[r0 - 1, i] if r0 else 0.0
                    f = np.exp(G[r, i] - ref)
                    er[i] = br[i] * kr[i] * f
                    qr[i] = qq[i] * scale * f
                for s in range(r + 1):
                    acc_t = 0.0
                    acc_q = 0.0
                    cs = colk[s]
                    for i in range(K):
                        acc_t += er[i] * cs[i]
                        acc_q += qr[i] * cs[i]
                    if s < r:
                        Tm[r, s] = acc_t
                    Aqk[r, s] = acc_q
            else:
                for s in range(r + 1):
                    ks = k[bi, t0 + s, h]
                    acc_t = 0.0
                    acc_q = 0.0
                    for i in range(K):
                        d = np.exp(G[r, i] - G[s, i]) * ks[i]
                        acc_t += br[i] * kr[i] * d
                        acc_q += qq[i] * scale * d
                    if s < r:
                        Tm[r, s] = acc_t
                    Aqk[r, s] = acc_q


@numba.njit(cache=True, nogil=True, fastmath=_FASTMATH, error_model="numpy")
def chunked_items(first, last, n_parts, q, k, v, g, b, w, scale, limit, C,
                  S, o):  # pragma: no cover - compiled
    """Chunkwise GDN-2 (Eq 2.10–2.18) for work items ``first .. last − 1``.

    Item ``m`` is value-column slice ``m % n_parts`` of sequence ``m // n_parts`` (sequence
    index bi·H + h). q, k, g, b ``[B, T, H, K]``, v, w ``[B, T, H, V]``, C-contiguous, one
    float dtype; scale and limit in that dtype. S ``[B·H, K, V]`` holds the initial state
    and receives the final one; o ``[B, T, H, V]`` receives the output. Items write disjoint
    parts of S and o, so they may run on different threads.
    """
    _, T, H, K = q.shape
    V = v.shape[3]
    dt = q.dtype
    width = -(-V // n_parts)
    n_chunks = -(-T // C)
    Cp, Kp = _round_up(C, _PAD_COLUMNS), _round_up(K, _TILE_ROWS)
    # The next chunk's rows of every input and of o are prefetched while a chunk computes,
    # a few rows after each block of result rows: five products of Cp rows, one of Kp
    # rows and the Cp / 4 blocks of the solve.
    ahead = (g, k, b, q, v, w, o)
    plan = np.zeros(6, np.int64)
    plan[_PLAN_TOTAL] = _PLAN_ARRAYS * C
    n_blocks = 5 * _row_blocks(Cp) + _row_blocks(Kp) + Cp // _TILE_ROWS
    plan[_PLAN_STEP] = -(-plan[_PLAN_TOTAL] // n_blocks)
    for item in range(first, last):
        sq, part = item // n_parts, item % n_parts
        bi, h = sq // H, sq % H
        v0 = part * width
        nv = min(V, v0 + width) - v0
        if nv <= 0:
            continue
        Vp = _round_up(nv, _PAD_COLUMNS)
        # Work buffers, zero-padded to whole tiles, reused by every chunk of the item;
        # the padding stays zero throughout.
        G = np.zeros((C, K), dt)           # log decays, then K̄
        gamma = np.zeros((C, K), dt)
        gend = np.ones(Kp, dt)
        E = np.zeros((Cp, Kp), dt)
        Qg = np.zeros((Cp, Kp), dt)
        KbT = np.zeros((Kp, Cp), dt)
        Kt = np.zeros((Cp, Kp), dt)
        Tm = np.zeros((Cp, Cp), dt)
        Aqk = np.zeros((Cp, Cp), dt)
        X = np.zeros((Cp, Vp), dt)         # Z, then Z − Ē S_0, then R
        Out = np.zeros((Cp, Vp), dt)
        St = np.zeros((Kp, Vp), dt)
        er = np.zeros(K, dt)
        qr = np.zeros(K, dt)
        colk = np.zeros((C, K), dt)
        Sq = S[sq]
        for i in range(K):
            for j in range(nv):
                St[i, j] = Sq[i, v0 + j]
        plan[_PLAN_B], plan[_PLAN_H] = bi, h
        for c in range(n_chunks):
            t0 = c * C
            n = min(C, T - t0)
            plan[_PLAN_T], plan[_PLAN_DONE] = t0 + C, 0
            if _prepare_chunk(q, k, v, g, b, w, bi, h, t0, n, v0, nv, scale, limit,
                              G, gamma, gend, E, Qg, Kt, X):
                for i in range(K):
                    for r in range(C):
                        KbT[i, r] = G[r, i]
                _product(E, KbT, Tm, False, False, False, True, False, ahead, plan)    # (2.12)
                _product(Qg, KbT, Aqk, False, False, False, True, False, ahead, plan)  # (2.16)
                for r in range(Cp):
                    Tm[r, r:] = 0.0
                    Aqk[r, r + 1:] = 0.0
            else:
                _strong_decay_scores(q, k, b, bi, h, t0, n, scale, limit, G,
                                     Tm, Aqk, er, qr, colk)
            _product(E, St, X, True, True, False, False, False, ahead, plan)  # Z − Ē S_0
            _solve_unit_lower(Tm, X, n, ahead, plan)          # R = A (Z − Ē S_0) (2.13–15)
            _product(Qg, St, Out, False, False, False, False, False, ahead, plan)  # Q_γ S_0
            _product(Aqk, X, Out, True, False, True, False, False, ahead, plan)  # (2.17)
            for r in range(n):
                for j in range(nv):
                    o[bi, t0 + r, h, v0 + j] = Out[r, j]
            for i in range(K):                                # S_C (2.18)
                for j in range(Vp):
                    St[i, j] *= gend[i]
            _product(Kt, X, St, True, False, False, False, True, ahead, plan)
        for i in range(K):
            for j in range(nv):
                Sq[i, v0 + j] = St[i, j]
