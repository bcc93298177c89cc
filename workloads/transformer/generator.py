"""Trace generator for the softmax-transformer family (prefill, decode, train).

Full causal attention: prefill attends over the exact causal triangle, decode over the
whole KV cache (``kv_cache``), so the attention cost grows with context while the linear
layers stay flat per token — the scaling the linear-attention families are compared with.
K/V heads may be fewer than query heads (GQA, MQA); the cache may be quantized
(``kv_dtype``, ``kv_quant``: :mod:`workloads.kvquant`), in which case decode reads its
packed part through ``dequantize`` ops and quantizes a group of residual tokens whenever
one fills, and prefill quantizes what it cached after each layer's attention.
"""

from __future__ import annotations

import numpy as np

from hwsim.trace import Trace
from workloads.common.layers import causal_pairs, fp8_linear_layers, swiglu_mlp
from workloads.common.lm import (
    attention_sublayer,
    decode_cache,
    decode_positions,
    emit_decode,
    emit_sequence,
)
from workloads.common.ops import OpTable
from workloads.common.spec import trace_meta
from workloads.transformer.spec import FAMILY, TransformerSpec


def generate(spec: TransformerSpec, rng: np.random.Generator, *, seed: int | None = None,
             preset: str = "") -> Trace:
    """Operation trace of ``spec`` (the generator draws no random numbers; ``rng`` is for API symmetry)."""
    table = OpTable()
    fmt, L = spec.kv_format, spec.num_layers
    model = dict(d_model=spec.d_model, vocab=spec.vocab_size, num_params=spec.num_params, units=L)
    if spec.mode == "decode":
        batch, keys = spec.decode_batch, decode_positions(spec)
        cache = decode_cache(spec, fmt, L * batch, spec.kv_heads, spec.head_dim)
        write = dict(tokens=cache.flush_tokens, mask=cache.flush) if fmt.quantized else None
        emit_decode(table, spec, **model, held={}, cache=cache,
                    unit_ops=lambda layer, **extra: _layer(
                        spec, batch, queries=1, keys=keys, pairs=keys, seqs=batch, kv_dst="kv_cache",
                        quantized_keys=cache.quantized_keys, cache_write=write, layer=layer, **extra))
    else:
        seq_len, seqs = spec.seq_len, spec.num_seqs
        quantized = fmt.quantized_tokens(seq_len) if spec.mode == "prefill" else 0
        kv_dst = "act" if spec.mode == "train" or quantized else "kv_cache"
        write = dict(tokens=quantized, residual=seq_len - quantized, src="act", dst="kv_cache") \
            if quantized else None
        emit_sequence(table, spec, **model,
                      held={"kv_cache": L * seqs * fmt.cache_bytes(seq_len, spec.kv_heads, spec.head_dim)},
                      unit_ops=lambda layer, phase: _layer(
                          spec, spec.tokens_per_step, queries=seq_len, keys=seq_len,
                          pairs=causal_pairs(seq_len), seqs=seqs, kv_dst=kv_dst, cache_write=write,
                          layer=layer, phase=phase))
    meta = trace_meta(FAMILY, spec, preset=preset, seed=seed, work_unit="token",
                      work_units=spec.work_units, description=f"softmax transformer {spec.mode}")
    if spec.gemm_dtype == "bf16":
        return table.to_trace(meta, source=f"workloads.{FAMILY}")
    frame = table.build()
    fp8_linear_layers(frame)
    weights = (frame["kind"].isin(["alloc", "free"])) & (frame["tag"].astype(str) == "weights")
    frame.loc[weights & (frame["kind"] == "alloc"), "bytes_written"] = spec.weight_bytes
    frame.loc[weights & (frame["kind"] == "free"), "bytes_read"] = spec.weight_bytes
    return Trace.from_frame(frame, meta, source=f"workloads.{FAMILY}")


def _layer(spec: TransformerSpec, tokens, *, queries, keys, pairs, seqs, kv_dst, quantized_keys=0,
           cache_write=None, **extra) -> list[dict]:
    """One decoder layer: attention over ``kv_dst`` (where its K,V are written) and the MLP."""
    return (attention_sublayer(tokens, spec.d_model, spec.num_heads, spec.head_dim, queries=queries,
                               keys=keys, pairs=pairs, seqs=seqs, kv_dst=kv_dst, kv_space=kv_dst,
                               kv_heads=spec.kv_heads, kv_format=spec.kv_format,
                               quantized_keys=quantized_keys, cache_write=cache_write, **extra)
            + swiglu_mlp(tokens, spec.d_model, spec.d_ff, **extra))
