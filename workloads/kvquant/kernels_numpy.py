"""NumPy twins of the KV-cache quantization kernels: the readable statement of the math.

* :func:`fwht`: orthonormal Hadamard rotation over the last axis (x·H/sqrt(d), H the
  Sylvester Hadamard matrix; H is symmetric and H·H = d·I, so the rotation is its own
  inverse);
* :func:`token_norm_scale`: divide each vector by its L2 norm (stored in fp16);
* :func:`quantize_groups` / :func:`dequantize_groups`: asymmetric min-max quantization to
  2, 4 or 8 bits in groups along one axis, scale and zero point stored in fp16;
* :func:`pack_codes` / :func:`unpack_codes`: 8 / bits codes per byte along the last axis;
* :func:`quantize_kv` / :func:`dequantize_kv`: a K, V cache in a :class:`KVFormat`
  (``plain`` or ``oscar``), as :class:`QuantizedKV`;
* :func:`attention_over_quantized`: softmax attention (grouped-query) over the dequantized
  cache and its bf16 residual.

Shapes: K, V ``[N, H_kv, d]`` (tokens, KV heads, head dim); queries ``[N_q, H_q, d]`` with
H_q a multiple of H_kv (query head h reads KV head h // (H_q / H_kv)). Values are float32
or float64; stored parameters are rounded to fp16 and residual tokens to bf16.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from workloads.kvquant.format import BF16_BYTES, PARAM_BYTES, KVFormat

SUPPORTED_BITS = (2, 4, 8)


def to_bf16(x: np.ndarray) -> np.ndarray:
    """``x`` rounded to bfloat16 (round to nearest even), returned as float32."""
    bits = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    rounded = (bits + np.uint32(0x7FFF) + ((bits >> 16) & np.uint32(1))) & np.uint32(0xFFFF0000)
    return rounded.view(np.float32)


def to_fp16(x: np.ndarray) -> np.ndarray:
    """``x`` rounded to float16, returned in its own dtype."""
    return np.asarray(x).astype(np.float16).astype(np.asarray(x).dtype)


def hadamard(d: int) -> np.ndarray:
    """The d×d Sylvester Hadamard matrix (entries ±1); raises ValueError unless d is a power of 2."""
    if d < 1 or d & (d - 1):
        raise ValueError(f"a Hadamard matrix needs a power-of-two size, got {d}")
    H = np.ones((1, 1))
    while H.shape[0] < d:
        H = np.block([[H, H], [H, -H]])
    return H


def fwht(x: np.ndarray) -> np.ndarray:
    """Orthonormal Hadamard rotation of the last axis: x·H / sqrt(d) (its own inverse)."""
    x = np.asarray(x)
    d = x.shape[-1]
    return (x @ hadamard(d).astype(x.dtype)) / np.sqrt(x.dtype.type(d))


def token_norm_scale(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(x / s, s)`` with s the fp16-rounded L2 norm of each vector (last axis); s = 1 for 0."""
    s = to_fp16(np.sqrt(np.sum(x * x, axis=-1)))
    s = np.where(s > 0, s, 1).astype(x.dtype)
    return x / s[..., None], s


def _check_bits(bits: int) -> None:
    if bits not in SUPPORTED_BITS:
        raise ValueError(f"bits: must be one of {SUPPORTED_BITS}, got {bits}")


def _grouped(x: np.ndarray, group: int, axis: int) -> tuple[np.ndarray, int]:
    """``x`` with ``axis`` moved last and zero-padded to whole groups, shape [..., n_groups, group]."""
    moved = np.moveaxis(x, axis, -1)
    n = moved.shape[-1]
    n_groups = -(-n // group)
    padded = np.concatenate([moved, np.repeat(moved[..., -1:], n_groups * group - n, axis=-1)], axis=-1)
    return padded.reshape(*moved.shape[:-1], n_groups, group), n


def quantize_groups(x: np.ndarray, bits: int, group: int, axis: int):
    """Min-max quantize ``x`` to ``bits`` bits in groups of ``group`` along ``axis``.

    Returns ``(codes, scale, zero)``: codes uint8 in [0, 2^bits − 1], shaped like x;
    scale and zero (fp16-rounded, x's dtype) shaped like x with ``axis`` cut to
    ceil(n / group). x ≈ codes · scale + zero, per group. A last partial group is padded
    with its own last value (which changes neither its min nor its max).
    """
    _check_bits(bits)
    levels = 2**bits - 1
    g, n = _grouped(np.asarray(x), group, axis)
    lo = to_fp16(g.min(axis=-1, keepdims=True))
    scale = to_fp16((g.max(axis=-1, keepdims=True) - lo) / levels)
    inv = np.where(scale > 0, 1 / np.where(scale > 0, scale, 1), 0)
    codes = np.clip(np.rint((g - lo) * inv), 0, levels).astype(np.uint8)
    codes = codes.reshape(*g.shape[:-2], -1)[..., :n]
    return (np.moveaxis(codes, -1, axis), np.moveaxis(scale[..., 0], -1, axis),
            np.moveaxis(lo[..., 0], -1, axis))


def dequantize_groups(codes: np.ndarray, scale: np.ndarray, zero: np.ndarray, group: int,
                      axis: int) -> np.ndarray:
    """codes · scale + zero, each group's parameters broadcast over its ``group`` entries."""
    n = codes.shape[axis]
    expand = np.repeat(np.arange(scale.shape[axis]), group)[:n]
    return (np.take(scale, expand, axis=axis) * codes + np.take(zero, expand, axis=axis))


def pack_codes(codes: np.ndarray, bits: int) -> np.ndarray:
    """Pack codes (uint8 < 2^bits) 8/bits per byte along the last axis (low bits first)."""
    _check_bits(bits)
    per_byte = 8 // bits
    n = codes.shape[-1]
    if n % per_byte:
        raise ValueError(f"last axis {n} is not a whole number of {per_byte}-code bytes")
    grouped = codes.reshape(*codes.shape[:-1], n // per_byte, per_byte).astype(np.uint8)
    shifts = (np.arange(per_byte) * bits).astype(np.uint8)
    return np.bitwise_or.reduce(grouped << shifts, axis=-1).astype(np.uint8)


def unpack_codes(packed: np.ndarray, bits: int) -> np.ndarray:
    """Inverse of :func:`pack_codes`."""
    _check_bits(bits)
    per_byte = 8 // bits
    shifts = (np.arange(per_byte) * bits).astype(np.uint8)
    codes = (packed[..., None] >> shifts) & np.uint8(2**bits - 1)
    return codes.reshape(*packed.shape[:-1], -1)


@dataclass(frozen=True)
class QuantizedKV:
    """A K, V cache in a :class:`KVFormat`: packed quantized tokens, then the bf16 residual.

    ``k_scale``/``k_zero`` are ``[ceil(N_q / G), H, d]`` (per channel, over tokens),
    ``v_scale``/``v_zero`` ``[N_q, H, ceil(d / G)]`` (per token, over channels); ``k_norm``
    ``[N_q, H]`` holds OScaR's key norms (ones for plain). Quantized K and V live in the
    rotated basis when ``fmt.rotated``.
    """

    fmt: KVFormat
    k_packed: np.ndarray
    k_scale: np.ndarray
    k_zero: np.ndarray
    k_norm: np.ndarray
    v_packed: np.ndarray
    v_scale: np.ndarray
    v_zero: np.ndarray
    k_residual: np.ndarray
    v_residual: np.ndarray

    @property
    def quantized_tokens(self) -> int:
        return self.k_norm.shape[0]

    @property
    def storage_bytes(self) -> int:
        """Bytes as stored: codes, fp16 parameters (and key norms for OScaR), bf16 residual."""
        params = self.k_scale.size + self.k_zero.size + self.v_scale.size + self.v_zero.size
        if self.fmt.rotated:
            params += self.k_norm.size
        return (self.k_packed.nbytes + self.v_packed.nbytes + PARAM_BYTES * params
                + BF16_BYTES * (self.k_residual.size + self.v_residual.size))


def quantize_kv(k: np.ndarray, v: np.ndarray, fmt: KVFormat) -> QuantizedKV:
    """Store K, V ``[N, H, d]`` in ``fmt`` (see :mod:`format`): bf16 or an integer format.

    Raises ValueError for fp8, whose element rounding this kernel does not model.
    """
    if fmt.quantized and not fmt.grouped:
        raise ValueError(f"quantize_kv implements bf16 and the integer formats, not {fmt.dtype!r}")
    N, H, d = k.shape
    n_q = fmt.quantized_tokens(N)
    residual = (to_bf16(k[n_q:]).astype(k.dtype), to_bf16(v[n_q:]).astype(v.dtype))
    if not n_q:
        empty = np.zeros((0, H, d), k.dtype)
        return QuantizedKV(fmt, np.zeros((0, H, 0), np.uint8), empty, empty, np.zeros((0, H), k.dtype),
                           np.zeros((0, H, 0), np.uint8), empty, empty, *residual)
    kq, vq = k[:n_q], v[:n_q]
    if fmt.rotated:
        kq, vq = fwht(kq), fwht(vq)
        kq, k_norm = token_norm_scale(kq)
    else:
        k_norm = np.ones(kq.shape[:2], k.dtype)
    k_codes, k_scale, k_zero = quantize_groups(kq, fmt.bits, fmt.group_size, axis=0)
    v_codes, v_scale, v_zero = quantize_groups(vq, fmt.bits, fmt.group_size, axis=2)
    return QuantizedKV(fmt, pack_codes(k_codes, fmt.bits), k_scale, k_zero, k_norm,
                       pack_codes(v_codes, fmt.bits), v_scale, v_zero, *residual)


def dequantize_kv(qkv: QuantizedKV) -> tuple[np.ndarray, np.ndarray]:
    """K, V ``[N, H, d]`` back in the original basis (quantized part, then the residual)."""
    fmt = qkv.fmt
    if not qkv.quantized_tokens:
        return qkv.k_residual, qkv.v_residual
    k = dequantize_groups(unpack_codes(qkv.k_packed, fmt.bits), qkv.k_scale, qkv.k_zero,
                          fmt.group_size, axis=0) * qkv.k_norm[..., None]
    v = dequantize_groups(unpack_codes(qkv.v_packed, fmt.bits), qkv.v_scale, qkv.v_zero,
                          fmt.group_size, axis=2)
    if fmt.rotated:
        k, v = fwht(k), fwht(v)
    return (np.concatenate([k, qkv.k_residual]), np.concatenate([v, qkv.v_residual]))


def attention(q: np.ndarray, k: np.ndarray, v: np.ndarray, scale: float | None = None) -> np.ndarray:
    """Unmasked grouped-query softmax attention: q ``[N_q, H_q, d]``, k, v ``[N, H_kv, d]``."""
    n_q, H_q, d = q.shape
    group = H_q // k.shape[1]
    scale = d**-0.5 if scale is None else scale
    kh = np.ascontiguousarray(np.repeat(k, group, axis=1).transpose(1, 2, 0))   # [H_q, d, N]
    vh = np.ascontiguousarray(np.repeat(v, group, axis=1).transpose(1, 0, 2))   # [H_q, N, d]
    logits = (np.ascontiguousarray(q.transpose(1, 0, 2)) @ kh) * scale           # [H_q, N_q, N]
    p = np.exp(logits - logits.max(axis=-1, keepdims=True))
    p /= p.sum(axis=-1, keepdims=True)
    return (p @ vh).transpose(1, 0, 2)


def attention_over_quantized(q: np.ndarray, qkv: QuantizedKV, scale: float | None = None) -> np.ndarray:
    """Attention of q over the dequantized cache (:func:`dequantize_kv`) and its residual."""
    k, v = dequantize_kv(qkv)
    return attention(q, k, v, scale)
