"""Trace op templates for a quantized KV cache: the write side (rotate, quantize) and the
read side (rotate the queries, dequantize the packed tokens, rotate the output back).

Data movement, as fused kernels do it [A]: a ``rotate`` of K, V streams its bf16 input in
and hands the rotated values to the ``quantize`` op on chip; the quantize op writes the
packed codes, their fp16 scales and zero points (and the bf16 residual tokens, when asked)
to the cache. A ``dequantize`` op reads the packed bytes and feeds the attention op on chip,
which then reads only the bf16 residual tokens from memory; the generators put it on a
stream of its own (``kv_dequant``) that starts with the attention and is joined after it,
so the two overlap as the tiles of a fused kernel do. Query and output rotations
read and write the bf16 vectors in ``act``. Every op carries ``elements`` (values touched),
``k`` (head dimension) and closed-form FLOPs from :mod:`workloads.kvquant.flops`.
"""

from __future__ import annotations

from typing import Any

from workloads.kvquant import flops
from workloads.kvquant.format import BF16_BYTES, KVFormat

Template = dict[str, Any]


def quantize_ops(fmt: KVFormat, tokens: int, kv_heads: int, head_dim: int, *, copies: Any = 1,
                 src: str, dst: str, residual_tokens: int = 0, tag: str = "kv", **extra: Any) -> list[Template]:
    """Store K, V of ``tokens`` tokens (per copy: sequence, or layer x sequence) quantized.

    Returns ``[rotate, quantize]`` (OScaR) or ``[quantize]``; ``residual_tokens`` more
    tokens per copy are written as bf16 by the same op (a prefill's residual window).
    """
    if not fmt.quantized:
        raise ValueError("quantize_ops: the format stores bf16, there is nothing to quantize")
    elements = 2 * tokens * kv_heads * head_dim
    bf16 = elements * BF16_BYTES
    written = fmt.packed_bytes(tokens, kv_heads, head_dim) + residual_tokens * 2 * kv_heads * head_dim * BF16_BYTES
    ops = []
    if fmt.rotated:
        ops.append(dict(kind="rotate", tag=f"{tag}_rotate", elements=elements * copies, k=head_dim,
                        flops=flops.rotate_flops(2 * tokens * kv_heads, head_dim) * copies,
                        src=src, bytes_read=bf16 * copies, **extra))
    ops.append(dict(kind="quantize", tag=f"{tag}_quantize", elements=elements * copies, k=head_dim,
                    flops=flops.quantize_flops(fmt, tokens, kv_heads, head_dim) * copies,
                    **({} if fmt.rotated else dict(src=src, bytes_read=bf16 * copies)),
                    dst=dst, bytes_written=written * copies, **extra))
    return ops


def dequantize_op(fmt: KVFormat, tokens: Any, kv_heads: int, head_dim: int, *, copies: Any = 1,
                  space: str, nbytes: Any = None, tag: str = "kv_dequantize", **extra: Any) -> Template:
    """Read ``tokens`` quantized tokens per copy (int or array) from ``space`` for attention.

    Their bytes are ``fmt.packed_bytes(tokens)`` per copy, or ``nbytes`` when the tokens are
    stored as several separately quantized runs (WorldKV's chunks).
    """
    per_token = flops.dequantize_flops(fmt, 1, kv_heads, head_dim)
    nbytes = fmt.packed_bytes(tokens, kv_heads, head_dim) if nbytes is None else nbytes
    return dict(kind="dequantize", tag=tag, elements=2 * tokens * kv_heads * head_dim * copies,
                k=head_dim, flops=per_token * tokens * copies, src=space,
                bytes_read=nbytes * copies, **extra)


def vector_rotation(tag: str, vectors: Any, head_dim: int, **extra: Any) -> Template:
    """Rotate ``vectors`` bf16 vectors of ``head_dim`` in ``act`` (queries, attention outputs)."""
    elements = vectors * head_dim
    return dict(kind="rotate", tag=tag, elements=elements, k=head_dim,
                flops=flops.rotate_flops(1, head_dim) * vectors, src="act",
                bytes_read=elements * BF16_BYTES, dst="act", bytes_written=elements * BF16_BYTES,
                **extra)
