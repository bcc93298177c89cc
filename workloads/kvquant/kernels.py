"""Numba kernels for KV-cache quantization, with the API and results of ``kernels_numpy``.

* :func:`fwht`: in-place butterflies (d·log2 d adds and subtracts, then 1/sqrt(d));
* :func:`token_norm_scale`, :func:`quantize_groups`, :func:`dequantize_groups`;
* :func:`attention_over_quantized`: the fused read path of a quantized cache — per query
  head, the query is rotated once (OScaR), every quantized key is dequantized from its
  packed codes inside the dot product (code · scale + zero, times the token's norm), the
  values likewise inside the weighted sum, the rotated partial output is rotated back, and
  the bf16 residual tokens join the same softmax.

Packing, the fp16 rounding of stored parameters and input checks stay in NumPy
(:mod:`kernels_numpy`), so both paths store identical caches.
"""

from __future__ import annotations

import numba
import numpy as np

from workloads.kvquant import kernels_numpy as ref
from workloads.kvquant.kernels_numpy import QuantizedKV, to_fp16

__all__ = ["attention_over_quantized", "dequantize_groups", "fwht", "quantize_groups",
           "token_norm_scale"]


@numba.njit(cache=True)
def _fwht_rows(x):  # pragma: no cover - compiled
    """Orthonormal Walsh-Hadamard transform of every row of x ``[n, d]``, in place."""
    n, d = x.shape
    norm = 1.0 / np.sqrt(d)
    for r in range(n):
        row = x[r]
        h = 1
        while h < d:
            for start in range(0, d, 2 * h):
                for i in range(start, start + h):
                    a, b = row[i], row[i + h]
                    row[i] = a + b
                    row[i + h] = a - b
            h *= 2
        for i in range(d):
            row[i] *= norm


def fwht(x: np.ndarray) -> np.ndarray:
    """Orthonormal Hadamard rotation of the last axis (its own inverse); d a power of two."""
    x = np.asarray(x)
    d = x.shape[-1]
    if d < 1 or d & (d - 1):
        raise ValueError(f"fwht needs a power-of-two last axis, got {d}")
    out = np.array(x, dtype=np.result_type(x.dtype, np.float32), order="C").reshape(-1, d)
    _fwht_rows(out)
    return out.reshape(x.shape)


@numba.njit(cache=True)
def _row_norms(x):  # pragma: no cover - compiled
    n, d = x.shape
    out = np.empty(n, x.dtype)
    for r in range(n):
        acc = 0.0
        for i in range(d):
            acc += x[r, i] * x[r, i]
        out[r] = np.sqrt(acc)
    return out


def token_norm_scale(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(x / s, s)``, s the fp16-rounded L2 norm of each vector of the last axis (1 for 0)."""
    flat = np.ascontiguousarray(x).reshape(-1, x.shape[-1])
    s = to_fp16(_row_norms(flat)).reshape(x.shape[:-1])
    s = np.where(s > 0, s, 1).astype(x.dtype)
    return x / s[..., None], s


@numba.njit(cache=True)
def _group_min_max(x, group):  # pragma: no cover - compiled
    """Min and max of every group of ``group`` consecutive entries of each row of x ``[r, n]``."""
    rows, n = x.shape
    n_groups = -(-n // group)
    lo = np.empty((rows, n_groups), x.dtype)
    hi = np.empty((rows, n_groups), x.dtype)
    for r in range(rows):
        for g in range(n_groups):
            a = x[r, g * group]
            b = a
            for i in range(g * group, min(n, (g + 1) * group)):
                a = min(a, x[r, i])
                b = max(b, x[r, i])
            lo[r, g], hi[r, g] = a, b
    return lo, hi


@numba.njit(cache=True)
def _group_codes(x, lo, inv, group, levels):  # pragma: no cover - compiled
    rows, n = x.shape
    codes = np.empty((rows, n), np.uint8)
    for r in range(rows):
        for i in range(n):
            g = i // group
            c = np.rint((x[r, i] - lo[r, g]) * inv[r, g])
            codes[r, i] = min(max(c, 0.0), levels)
    return codes


@numba.njit(cache=True)
def _group_dequantize(codes, scale, zero, group):  # pragma: no cover - compiled
    rows, n = codes.shape
    out = np.empty((rows, n), scale.dtype)
    for r in range(rows):
        for i in range(n):
            g = i // group
            out[r, i] = scale[r, g] * codes[r, i] + zero[r, g]
    return out


def _rows(x: np.ndarray, axis: int) -> np.ndarray:
    """``x`` with ``axis`` last, as C-contiguous rows ``[prod(other), n]``."""
    moved = np.moveaxis(x, axis, -1)
    return np.ascontiguousarray(moved).reshape(-1, moved.shape[-1])


def quantize_groups(x: np.ndarray, bits: int, group: int, axis: int):
    """Min-max group quantization; same arguments, returns and rounding as the NumPy twin."""
    ref._check_bits(bits)
    x = np.asarray(x)
    levels = 2**bits - 1
    moved_shape = np.moveaxis(x, axis, -1).shape
    rows = _rows(x, axis)
    lo, hi = _group_min_max(rows, group)
    lo = to_fp16(lo)
    scale = to_fp16((hi - lo) / levels)
    inv = np.where(scale > 0, 1 / np.where(scale > 0, scale, 1), 0).astype(x.dtype)
    codes = _group_codes(rows, lo, inv, group, float(levels)).reshape(moved_shape)
    params = (*moved_shape[:-1], lo.shape[-1])
    return (np.moveaxis(codes, -1, axis), np.moveaxis(scale.reshape(params), -1, axis),
            np.moveaxis(lo.reshape(params), -1, axis))


def dequantize_groups(codes, scale, zero, group: int, axis: int) -> np.ndarray:
    """codes · scale + zero per group, as the NumPy twin."""
    moved_shape = np.moveaxis(codes, axis, -1).shape
    out = _group_dequantize(_rows(codes, axis), _rows(scale, axis), _rows(zero, axis), group)
    return np.moveaxis(out.reshape(moved_shape), -1, axis)


@numba.njit(cache=True)
def _unpack_row(packed, scale, zero, bits, group_of, out):  # pragma: no cover - compiled
    """out[c] = scale[group_of(c)] · code[c] + zero[...] for one packed row of codes."""
    per_byte = 8 // bits
    mask = (1 << bits) - 1
    for j in range(packed.shape[0]):
        byte = packed[j]
        for s in range(per_byte):
            c = j * per_byte + s
            g = c // group_of
            out[c] = scale[g] * ((byte >> (bits * s)) & mask) + zero[g]


@numba.njit(cache=True)
def _fused_attention(q, k_packed, k_scale, k_zero, k_norm, v_packed, v_scale, v_zero,
                     k_res, v_res, bits, group, rotated, scale, out):  # pragma: no cover - compiled
    """Softmax attention over packed quantized tokens and bf16 residual tokens (see module).

    Works one KV head at a time: each cached row is dequantized once and used by all the
    queries of the query heads that share the KV head.
    """
    n_q, H_q, d = q.shape
    H_kv = k_norm.shape[1]
    n_quant, n_res = k_norm.shape[0], k_res.shape[0]
    per_kv = H_q // H_kv
    rows = n_q * per_kv
    logits = np.empty((rows, n_quant + n_res))
    qs = np.empty((rows, d))
    qr = np.empty((rows, d))
    acc_q = np.zeros((rows, d))
    acc_r = np.zeros((rows, d))
    row = np.empty(d)
    for hk in range(H_kv):
        for i in range(n_q):
            for j in range(per_kv):
                qs[i * per_kv + j] = q[i, hk * per_kv + j]
        qr[:] = qs
        if rotated:
            _fwht_rows(qr)                                     # rotate each query once
        for t in range(n_quant):
            _unpack_row(k_packed[t, hk], k_scale[t // group, hk], k_zero[t // group, hk], bits, 1, row)
            for r in range(rows):
                dot = 0.0
                for c in range(d):
                    dot += qr[r, c] * row[c]
                logits[r, t] = dot * k_norm[t, hk] * scale
        for t in range(n_res):
            for r in range(rows):
                dot = 0.0
                for c in range(d):
                    dot += qs[r, c] * k_res[t, hk, c]
                logits[r, n_quant + t] = dot * scale
        for r in range(rows):                                  # softmax weights, unnormalised
            top = np.max(logits[r])
            for t in range(n_quant + n_res):
                logits[r, t] = np.exp(logits[r, t] - top)
        acc_q[:] = 0.0
        acc_r[:] = 0.0
        for t in range(n_quant):
            _unpack_row(v_packed[t, hk], v_scale[t, hk], v_zero[t, hk], bits, group, row)
            for r in range(rows):
                p = logits[r, t]
                for c in range(d):
                    acc_q[r, c] += p * row[c]
        for t in range(n_res):
            for r in range(rows):
                p = logits[r, n_quant + t]
                for c in range(d):
                    acc_r[r, c] += p * v_res[t, hk, c]
        if rotated:
            _fwht_rows(acc_q)                                  # back from the rotated basis
        for i in range(n_q):
            for j in range(per_kv):
                r = i * per_kv + j
                total = np.sum(logits[r])
                for c in range(d):
                    out[i, hk * per_kv + j, c] = (acc_q[r, c] + acc_r[r, c]) / total


def attention_over_quantized(q: np.ndarray, qkv: QuantizedKV, scale: float | None = None) -> np.ndarray:
    """Grouped-query softmax attention of q ``[N_q, H_q, d]`` over ``qkv``, fused with the
    dequantization; equals :func:`kernels_numpy.attention_over_quantized` up to rounding.

    Raises ValueError if H_q is not a multiple of the cache's KV heads or d does not match.
    """
    q = np.ascontiguousarray(q, dtype=np.float64)
    n_q, H_q, d = q.shape
    H_kv = qkv.k_norm.shape[1] if qkv.k_norm.size else qkv.k_residual.shape[1]
    if H_q % H_kv or qkv.k_residual.shape[-1] != d:
        raise ValueError(f"q: {H_q} heads of {d} do not fit a cache of {H_kv} KV heads of "
                         f"{qkv.k_residual.shape[-1]}")
    fmt = qkv.fmt
    arrays = [np.ascontiguousarray(a, dtype=np.float64) for a in
              (qkv.k_scale, qkv.k_zero, qkv.k_norm, qkv.v_scale, qkv.v_zero, qkv.k_residual,
               qkv.v_residual)]
    out = np.empty_like(q)
    _fused_attention(q, np.ascontiguousarray(qkv.k_packed), arrays[0], arrays[1], arrays[2],
                     np.ascontiguousarray(qkv.v_packed), arrays[3], arrays[4], arrays[5], arrays[6],
                     fmt.bits, fmt.group_size, fmt.rotated, d**-0.5 if scale is None else scale, out)
    return out
