"""Trace generator for the softmax-transformer baseline (prefill, decode, train).

Full causal attention: prefill attends over the exact causal triangle, decode over the
whole KV cache (``kv_cache``), so the attention cost grows with context while the linear
layers stay flat per token — the scaling the linear-attention families are compared with.
"""

from __future__ import annotations

import numpy as np

from hwsim.trace import Trace
from workloads.common.layers import causal_pairs, swiglu_mlp
from workloads.common.lm import (
    attention_sublayer,
    decode_positions,
    emit_decode,
    emit_sequence,
    kv_bytes_per_token,
)
from workloads.common.ops import OpTable
from workloads.common.spec import trace_meta
from workloads.transformer.spec import FAMILY, TransformerSpec


def generate(spec: TransformerSpec, rng: np.random.Generator, *, seed: int | None = None,
             preset: str = "") -> Trace:
    """Operation trace of ``spec`` (the generator draws no random numbers; ``rng`` is for API symmetry)."""
    table = OpTable()
    kv_token = kv_bytes_per_token(spec.num_layers, spec.attn_width)
    model = dict(d_model=spec.d_model, vocab=spec.vocab_size, num_params=spec.num_params,
                 units=spec.num_layers)
    if spec.mode == "decode":
        batch, keys = spec.decode_batch, decode_positions(spec)
        emit_decode(table, spec, **model, held={"kv_cache": spec.context_tokens * batch * kv_token},
                    kv_append=batch * kv_token,
                    unit_ops=lambda layer, **extra: _layer(
                        spec, batch, queries=1, keys=keys, pairs=keys, seqs=batch, kv_dst="kv_cache",
                        layer=layer, **extra))
    else:
        seq_len = spec.seq_len
        kv_dst = "act" if spec.mode == "train" else "kv_cache"
        emit_sequence(table, spec, **model, held={"kv_cache": spec.tokens_per_step * kv_token},
                      unit_ops=lambda layer, phase: _layer(
                          spec, spec.tokens_per_step, queries=seq_len, keys=seq_len,
                          pairs=causal_pairs(seq_len), seqs=spec.num_seqs, kv_dst=kv_dst,
                          layer=layer, phase=phase))
    meta = trace_meta(FAMILY, spec, preset=preset, seed=seed, work_unit="token",
                      work_units=spec.work_units, description=f"softmax transformer {spec.mode}")
    return table.to_trace(meta, source=f"workloads.{FAMILY}")


def _layer(spec: TransformerSpec, tokens, *, queries, keys, pairs, seqs, kv_dst, **extra) -> list[dict]:
    """One decoder layer: attention over ``kv_dst`` (where its K,V are written) and the MLP."""
    return (attention_sublayer(tokens, spec.d_model, spec.num_heads, spec.head_dim, queries=queries,
                               keys=keys, pairs=pairs, seqs=seqs, kv_dst=kv_dst, kv_space=kv_dst,
                               **extra)
            + swiglu_mlp(tokens, spec.d_model, spec.d_ff, **extra))
