"""Op templates for the pieces every model family uses: GEMMs, norms, attention, SwiGLU MLPs,
the backward pass of a template list, and the optimizer step.

A template is a dict of trace columns (see :mod:`workloads.common.ops`); values may be NumPy
arrays that broadcast over the grid the templates are expanded on (for example the number
of visible keys per decoded token). FLOPs count a multiply-add as 2 and an element-wise
operation as 1; bf16 values are 2 bytes, fp32 values 4 bytes.

Element-wise costs, per element (our counting convention, [D]):

* RMSNorm with its residual add: 4 (residual add, square-accumulate 2, scale 1);
* SwiGLU gating: 3 (SiLU as sigmoid + multiply, then the gate multiply);
* RoPE: 3 per rotated element (two multiplies and an add per output, shared pairwise);
* sigmoid, softplus, exp: 1 each.
"""

from __future__ import annotations

from typing import Any

import numpy as np

BF16 = 2
FP32 = 4
RMSNORM_FLOPS = 4
SWIGLU_FLOPS = 3
ROPE_FLOPS = 3
#: Backward/forward FLOP ratio of a FlashAttention-style attention block: the backward
#: recomputes the scores and runs four more matmuls (5 vs 2). [A]
ATTENTION_BWD_FACTOR = 2.5
#: Backward/forward FLOP ratio of element-wise ops and non-weight kernels unless a template
#: says otherwise (``_bwd_factor``). [A]
DEFAULT_BWD_FACTOR = 2.0
#: AdamW update cost per parameter (two moment updates, bias correction, rsqrt, decay). [A]
ADAMW_FLOPS_PER_PARAM = 12
#: Training memory per parameter: bf16 weights + fp32 master copy, gradient, two moments. [A]
TRAIN_BYTES_PER_PARAM = 2 + 4 + 4 + 8

Template = dict[str, Any]


def gemm(tag: str, tokens: Any, k_in: int, n_out: int, *, batch: int = 1, dst: str = "act",
         **extra: Any) -> Template:
    """A weight GEMM: ``tokens x k_in`` activations (``act``) times a ``k_in x n_out`` bf16 weight.

    ``batch`` independent weights of the same shape (read one after another) multiply the
    counts. The output (``tokens x n_out``) goes to ``dst``.
    """
    return dict(kind="gemm", tag=tag, m=tokens, n=n_out, k=k_in, batch=batch,
                flops=2 * tokens * k_in * n_out * batch,
                src="weights", bytes_read=k_in * n_out * BF16 * batch,
                src2="act", bytes_read2=tokens * k_in * BF16 * batch,
                dst=dst, bytes_written=tokens * n_out * BF16 * batch, **extra)


def vector(tag: str, elements: Any, flops_per_element: int, *, kind: str = "vector",
           read_bytes: int = BF16, write_bytes: int = BF16, src: str = "act", dst: str = "act",
           **extra: Any) -> Template:
    """An element-wise or reduction op over ``elements`` values read from ``src``, written to ``dst``."""
    return dict(kind=kind, tag=tag, elements=elements, flops=elements * flops_per_element,
                src=src, bytes_read=elements * read_bytes, dst=dst,
                bytes_written=elements * write_bytes, **extra)


def rmsnorm(tag: str, tokens: Any, width: int, **extra: Any) -> Template:
    """RMSNorm (with the preceding residual add) over ``tokens x width`` values."""
    return vector(tag, tokens * width, RMSNORM_FLOPS, **extra)


def causal_pairs(seq_len: int, window: int | None = None, prefix: int = 0) -> int:
    """Visible (query, key) pairs in one sequence under a causal mask.

    ``window`` limits each query to the last ``window`` keys (itself included); ``prefix``
    tokens attend bidirectionally among themselves (PrefixLM). Exact integer count.
    """
    t = np.arange(seq_len, dtype=np.int64)
    visible = t + 1
    if prefix:
        visible = np.where(t < prefix, prefix, visible)
    if window is not None:
        visible = np.minimum(visible, window)
    return int(visible.sum())


def attention(tag: str, queries: Any, keys: Any, head_dim: int, heads: int, pairs: Any, *,
              seqs: int = 1, kv_space: str = "act", kv_heads: int | None = None,
              bf16_keys: Any = None, **extra: Any) -> Template:
    """Softmax attention of ``queries`` over ``keys`` per sequence (``seqs`` sequences).

    ``pairs`` is the number of visible (query, key) pairs per sequence (``queries * keys``
    without a mask); FLOPs are 4 * pairs * head_dim * heads (QK^T and PV). ``kv_heads`` K/V
    heads serve the ``heads`` query heads (grouped-query attention; default: as many); with
    one query per sequence the ``heads / kv_heads`` query heads of a group are the op's ``m``
    query rows and ``batch`` counts K/V heads.
    Q comes from ``act`` (bytes_read), K and V from ``kv_space`` (bytes_read2, each key read
    once): all ``keys`` keys, or only ``bf16_keys`` of them when the rest arrive dequantized
    from a quantized cache (a ``dequantize`` op reads those).
    """
    width = heads * head_dim
    kv_heads = heads if kv_heads is None else kv_heads
    kv_width = kv_heads * head_dim
    read = keys if bf16_keys is None else bf16_keys
    rows, units = queries, heads * seqs
    if isinstance(queries, int) and queries == 1 and kv_heads < heads:
        # One query per sequence under GQA: the query heads that share a K/V head become the
        # rows of one tile, as flash-attention's kernels do for one-token queries.
        rows, units = heads // kv_heads, kv_heads * seqs
    return dict(kind="attention", tag=tag, m=rows, n=keys, k=head_dim, batch=units,
                flops=4 * pairs * width * seqs,
                src="act", bytes_read=seqs * queries * width * BF16,
                src2=kv_space, bytes_read2=seqs * read * 2 * kv_width * BF16,
                dst="act", bytes_written=seqs * queries * width * BF16, **extra)


def swiglu_mlp(tokens: Any, d_model: int, d_ff: int, **extra: Any) -> list[Template]:
    """Pre-norm SwiGLU MLP: norm, fused gate+up GEMM, gating, down GEMM."""
    return [
        rmsnorm("mlp_norm", tokens, d_model, **extra),
        gemm("mlp_gate_up", tokens, d_model, 2 * d_ff, **extra),
        vector("swiglu", tokens * d_ff, SWIGLU_FLOPS, **extra),
        gemm("mlp_down", tokens, d_ff, d_model, **extra),
    ]


def embedding(tokens: int, d_model: int, **extra: Any) -> Template:
    """Token-embedding lookup: a random-access gather of ``tokens`` rows from the weights."""
    return dict(kind="gather", tag="embed", elements=tokens, k=d_model, src="weights",
                bytes_read=tokens * d_model * BF16, dst="act", access="random", **extra)


def backward(templates: list[Template], phase: str = "bwd") -> list[Template]:
    """The backward pass of forward ``templates``, in reverse order.

    Weight GEMMs become a data-gradient GEMM (same FLOPs, reads the weight) and a
    weight-gradient GEMM (same FLOPs, accumulates an fp32 gradient into ``weights``). Other
    ops cost ``_bwd_factor`` times their forward FLOPs (attention 2.5, default 2.0), read their
    inputs and the output gradient, and write input gradients to ``act``.
    """
    out: list[Template] = []
    for t in reversed(templates):
        common = {key: t[key] for key in ("layer", "step", "mask") if key in t}
        common["phase"] = phase
        if t["kind"] == "gemm" and t.get("src") == "weights":
            tokens, k_in, n_out, batch = t["m"], t["k"], t["n"], t.get("batch", 1)
            out.append(dict(kind="gemm", tag=_suffix(t['tag'], '_dgrad'), m=tokens, n=k_in, k=n_out,
                            batch=batch, flops=t["flops"], src="weights",
                            bytes_read=t["bytes_read"], src2="act",
                            bytes_read2=tokens * n_out * BF16 * batch, dst="act",
                            bytes_written=tokens * k_in * BF16 * batch, **common))
            out.append(dict(kind="gemm", tag=_suffix(t['tag'], '_wgrad'), m=k_in, n=n_out, k=tokens,
                            batch=batch, flops=t["flops"], src="act",
                            bytes_read=tokens * k_in * BF16 * batch, src2="act",
                            bytes_read2=tokens * n_out * BF16 * batch, dst="weights",
                            bytes_written=k_in * n_out * FP32 * batch, **common))
            continue
        default = ATTENTION_BWD_FACTOR if t["kind"] == "attention" else DEFAULT_BWD_FACTOR
        factor = t.get("_bwd_factor", default)
        read = t.get("bytes_read", 0) + t.get("bytes_written", 0)
        bwd = {key: t[key] for key in ("kind", "m", "n", "k", "batch", "elements", "dtype",
                                       "access", "kernel") if key in t}
        if bwd["kind"] in ("gather", "transfer"):
            bwd["kind"] = "vector"  # scatter-add of gradients
        elif bwd["kind"] == "attention":
            bwd["kind"] = "attention_bwd"
        bwd.update(tag=_suffix(t['tag'], '_bwd'), flops=_scaled(t.get("flops", 0), factor),
                   src="act", bytes_read=read, dst="act",
                   bytes_written=t.get("bytes_read", 0) + t.get("bytes_read2", 0), **common)
        if t.get("src2"):
            bwd.update(src2="act", bytes_read2=t.get("bytes_read2", 0))
        out.append(bwd)
    return out


def _suffix(tag: Any, suffix: str) -> Any:
    """``tag + suffix`` for a text tag or an object array of tags."""
    return tag + suffix if isinstance(tag, np.ndarray) else f"{tag}{suffix}"


def _scaled(flops: Any, factor: float) -> Any:
    if isinstance(flops, np.ndarray):
        return np.rint(flops * factor).astype(np.int64)
    return int(round(flops * factor))


def optimizer_step(num_params: int, **extra: Any) -> Template:
    """One AdamW step over ``num_params`` parameters (fp32 master, gradient and moments in ``weights``)."""
    return dict(kind="vector", tag="adamw", elements=num_params,
                flops=num_params * ADAMW_FLOPS_PER_PARAM, src="weights",
                bytes_read=num_params * (4 + 4 + 8), dst="weights",
                bytes_written=num_params * (4 + 8 + BF16), dtype="fp32", phase="optimizer", **extra)


#: Bytes of one FP8 (e4m3) weight or activation element.
FP8 = 1


def fp8_linear_layers(frame, keep_bf16: tuple[str, ...] = ("lm_head",)) -> None:
    """Run a built op table's weight GEMMs in FP8 (in place): e4m3 weights and input
    activations with per-tensor scales, bf16 outputs, as TensorRT-LLM's and Transformer
    Engine's FP8 linear layers do; ``keep_bf16`` tags (the LM head) stay bf16.

    ``frame`` is :meth:`OpTable.build`'s DataFrame; weight allocations shrink to match.
    """
    tags = frame["tag"].astype(str)
    linear = (frame["kind"] == "gemm") & (frame["src"] == "weights") & ~tags.isin(keep_bf16)
    frame.loc[linear, "dtype"] = "fp8"
    for column in ("bytes_read", "bytes_read2"):   # weights, then input activations
        frame.loc[linear, column] = frame.loc[linear, column] * FP8 // BF16
