"""Trace generator for HRM-Text (prefill, decode, train).

Per token the two modules run N x (T + 1) times in sequence (T L-applications then one
H-application, N times); each application is ``module_layers`` pre-norm blocks with a
sigmoid-gated attention and a SwiGLU MLP, capped by a parameter-free RMSNorm. The ``layer``
column is the block-application index (application x module_layers + block), which is also
the block's KV-cache slot; tags carry the module (``L.gq_proj``, ``H.mlp_down``).

Train mode runs the whole forward, the head and loss, then the backward of only the ``bp``
gradient-enabled applications (truncated credit assignment, Eq. 3.9), then AdamW.
"""

from __future__ import annotations

import numpy as np

from hwsim.trace import Trace
from workloads.common.layers import BF16, causal_pairs, rmsnorm, swiglu_mlp, vector
from workloads.common.lm import (
    attention_sublayer,
    decode_cache,
    decode_positions,
    emit_decode,
    emit_sequence,
    kv_bytes_per_token,
)
from workloads.common.ops import OpTable
from workloads.common.spec import trace_meta
from workloads.hrm.spec import FAMILY, HRMSpec


def generate(spec: HRMSpec, rng: np.random.Generator, *, seed: int | None = None,
             preset: str = "") -> Trace:
    """Operation trace of ``spec`` (no random choices are made; ``rng`` is for API symmetry)."""
    table = OpTable()
    if spec.mode == "decode":
        _decode(table, spec)
    else:
        _sequence(table, spec)
    meta = trace_meta(FAMILY, spec, preset=preset, seed=seed, work_unit="token",
                      work_units=spec.work_units, description=f"HRM-Text {spec.mode}")
    return table.to_trace(meta, source=f"workloads.{FAMILY}")


def kv_bytes_per_context_token(spec: HRMSpec) -> int:
    """Eq. 3.10: N (T + 1) l_m x 2 d x 2 B."""
    return kv_bytes_per_token(spec.applications * spec.module_layers, spec.d_model)


def _application(spec: HRMSpec, apps: np.ndarray, tokens, *, queries, keys, pairs, seqs, kv_dst,
                 quantized_keys=0, cache_write=None, **extra) -> list[dict]:
    """Templates of one module application; ``apps`` (array) broadcasts over the grid."""
    ops = [vector("module_input", tokens * spec.d_model, 1, read_bytes=2 * BF16, layer=apps * spec.module_layers,
                  **extra)]
    for block in range(spec.module_layers):
        slot = apps * spec.module_layers + block
        ops += attention_sublayer(tokens, spec.d_model, spec.num_heads, spec.head_dim, queries=queries,
                                  keys=keys, pairs=pairs, seqs=seqs, kv_dst=kv_dst, kv_space=kv_dst,
                                  gated=True, kv_format=spec.kv_format, quantized_keys=quantized_keys,
                                  cache_write=cache_write, layer=slot, **extra)
        ops += swiglu_mlp(tokens, spec.d_model, spec.d_ff, layer=slot, **extra)
    ops.append(rmsnorm("module_norm", tokens, spec.d_model,
                       layer=apps * spec.module_layers + spec.module_layers - 1, **extra))
    modules = np.array([spec.module_of(int(a)) + "." for a in np.ravel(apps)], dtype=object)
    modules = modules.reshape(np.shape(apps))
    for op in ops:
        op["tag"] = modules + op["tag"]
    return ops


def _slots(spec: HRMSpec) -> int:
    """KV-cache slots: one per block application."""
    return spec.applications * spec.module_layers


def _sequence(table: OpTable, spec: HRMSpec) -> None:
    tokens, seq_len, seqs = spec.tokens_per_step, spec.seq_len, spec.num_seqs
    fmt = spec.kv_format
    quantized = fmt.quantized_tokens(seq_len) if spec.mode == "prefill" else 0
    kv_dst = "act" if spec.mode == "train" or quantized else "kv_cache"
    write = dict(tokens=quantized, residual=seq_len - quantized, src="act", dst="kv_cache") \
        if quantized else None
    pairs = causal_pairs(seq_len, prefix=spec.prefix_tokens)
    emit_sequence(table, spec, **_model(spec),
                  held={"kv_cache": _slots(spec) * seqs * fmt.cache_bytes(seq_len, spec.num_heads, spec.head_dim)},
                  grad_units=np.array(spec.grad_applications()[::-1]),
                  unit_ops=lambda apps, phase: _application(
                      spec, apps, tokens, queries=seq_len, keys=seq_len, pairs=pairs,
                      seqs=seqs, kv_dst=kv_dst, cache_write=write, phase=phase))


def _decode(table: OpTable, spec: HRMSpec) -> None:
    batch, keys = spec.decode_batch, decode_positions(spec)
    fmt = spec.kv_format
    cache = decode_cache(spec, fmt, _slots(spec) * batch, spec.num_heads, spec.head_dim)
    write = dict(tokens=cache.flush_tokens, mask=cache.flush) if fmt.quantized else None
    emit_decode(table, spec, **_model(spec), held={}, cache=cache,
                unit_ops=lambda apps, **extra: _application(
                    spec, apps, batch, queries=1, keys=keys, pairs=keys, seqs=batch,
                    kv_dst="kv_cache", quantized_keys=cache.quantized_keys, cache_write=write,
                    **extra))


def _model(spec: HRMSpec) -> dict:
    return dict(d_model=spec.d_model, vocab=spec.vocab_size, num_params=spec.num_params,
                units=spec.applications)
