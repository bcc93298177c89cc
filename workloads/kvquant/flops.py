"""Closed-form FLOP counts of the KV-cache quantization kernels (pure Python integers).

Conventions (WORKLOADS §0): a multiply-add is 2 FLOPs, any other scalar op (add, subtract,
multiply, divide, compare, round, sqrt) is 1; a min or max over n values costs n
compares; bit packing and unpacking (integer shifts and masks) are not counted. Counts are
for one layer of one sequence; K and V both count (``2 · tokens · kv_heads · head_dim``
elements).
"""

from __future__ import annotations

import math

from workloads.common.counts import check_counts
from workloads.kvquant.format import KVFormat

#: Per element of min-max group quantization: min and max compares (2), subtract the zero
#: point, multiply by 1/scale, round, clip to the code range (2 compares).
QUANTIZE_FLOPS_PER_ELEMENT = 7
#: Per group: range = max − min, scale = range / levels, 1/scale.
QUANTIZE_FLOPS_PER_GROUP = 3
#: fp8: multiply by the head's 1/scale and round to the format.
FP8_QUANTIZE_FLOPS = 2
#: Dequantization per element: code · scale + zero (one multiply-add); fp8: one multiply.
DEQUANTIZE_FLOPS = 2
FP8_DEQUANTIZE_FLOPS = 1


def rotate_flops(vectors: int, head_dim: int) -> int:
    """Orthonormal fast Walsh-Hadamard transform of ``vectors`` vectors of ``head_dim``.

    d·log2(d) adds and subtracts in the butterflies plus d multiplies by 1/sqrt(d).

    Raises:
        TypeError, ValueError: a non-int, or head_dim not a power of two.
    """
    check_counts(1, floors={"vectors": 0}, vectors=vectors, head_dim=head_dim)
    if head_dim & (head_dim - 1):
        raise ValueError(f"head_dim: a Hadamard rotation needs a power of two, got {head_dim}")
    return vectors * (head_dim * int(math.log2(head_dim)) + head_dim)


def token_scale_flops(vectors: int, head_dim: int) -> int:
    """Per-token norm scaling of ``vectors`` vectors: sum of squares 2d, sqrt, 1/norm, d multiplies."""
    check_counts(1, floors={"vectors": 0}, vectors=vectors, head_dim=head_dim)
    return vectors * (3 * head_dim + 2)


def quantize_flops(fmt: KVFormat, tokens: int, kv_heads: int, head_dim: int) -> int:
    """Quantizing K and V of ``tokens`` tokens (rotation excluded: :func:`rotate_flops`).

    Integer formats: 7 per element, 3 per key group (ceil(tokens / G) · kv_heads ·
    head_dim) and per value group (tokens · kv_heads · ceil(head_dim / G)), plus OScaR's key
    norm scaling (:func:`token_scale_flops` of tokens · kv_heads vectors). fp8: 2 per element.
    """
    check_counts(1, floors={"tokens": 0}, tokens=tokens, kv_heads=kv_heads, head_dim=head_dim)
    elements = 2 * tokens * kv_heads * head_dim
    if not fmt.quantized:
        return 0
    if not fmt.grouped:
        return FP8_QUANTIZE_FLOPS * elements
    G = fmt.group_size
    groups = -(-tokens // G) * kv_heads * head_dim + tokens * kv_heads * -(-head_dim // G)
    flops = QUANTIZE_FLOPS_PER_ELEMENT * elements + QUANTIZE_FLOPS_PER_GROUP * groups
    if fmt.rotated:
        flops += token_scale_flops(tokens * kv_heads, head_dim)
    return flops


def dequantize_flops(fmt: KVFormat, tokens: int, kv_heads: int, head_dim: int) -> int:
    """Dequantizing K and V of ``tokens`` tokens: 2 per element (fp8: 1), plus OScaR's key
    norm multiplied back (1 per key element)."""
    check_counts(1, floors={"tokens": 0}, tokens=tokens, kv_heads=kv_heads, head_dim=head_dim)
    elements = 2 * tokens * kv_heads * head_dim
    if not fmt.quantized:
        return 0
    if not fmt.grouped:
        return FP8_DEQUANTIZE_FLOPS * elements
    return DEQUANTIZE_FLOPS * elements + (elements // 2 if fmt.rotated else 0)
