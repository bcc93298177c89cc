"""What the language-model families (transformer, HRM, DeltaNet-2) share: the scenario
parameters (prefill / decode / train), the attention sub-layer, the LM head and loss,
memory bookkeeping ops, and the op sequence of each mode around a model's repeating unit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from workloads.common.layers import (
    BF16,
    ROPE_FLOPS,
    TRAIN_BYTES_PER_PARAM,
    Template,
    attention,
    backward,
    embedding,
    gemm,
    optimizer_step,
    rmsnorm,
    vector,
)
from workloads.common.ops import OpTable
from workloads.common.spec import check, spec_param
from workloads.kvquant.format import KVFormat
from workloads.kvquant.ops import dequantize_op, quantize_ops, vector_rotation

#: The unquantized cache every family uses unless its spec says otherwise.
BF16_CACHE = KVFormat()

MODES = ("prefill", "decode", "train")
#: Softmax cross-entropy cost per logit: max, subtract, exp, sum. [A]
CROSS_ENTROPY_FLOPS = 4
#: Element-wise cost of the sigmoid output gate sigma(gate) * attn: sigmoid 1 + multiply 1.
SIGMOID_GATE_FLOPS = 2


@dataclass(frozen=True)
class LMScenario:
    """Scenario fields shared by the language-model families (fields come first in ``--list``)."""

    mode: str = spec_param("prefill", unit="text", choices=MODES, source="[A] scenario",
                           help="prefill (one forward over whole sequences), decode "
                                "(token-serial generation) or train (forward, backward, optimizer)")
    seq_len: int = spec_param(2048, minimum=1, source="[A] scenario",
                              help="tokens per sequence in prefill and train")
    tokens_per_step: int = spec_param(16384, minimum=1, source="[A] scenario",
                                      help="tokens per prefill/train step; sequences per step = "
                                           "tokens_per_step / seq_len")
    context_tokens: int = spec_param(2048, minimum=0, source="[A] scenario",
                                     help="tokens already in context when decoding starts")
    decode_tokens: int = spec_param(64, minimum=1, source="[A] scenario",
                                    help="tokens generated per sequence in decode mode")
    decode_batch: int = spec_param(1, minimum=1, source="[A] scenario",
                                   help="sequences decoded together in decode mode")

    @property
    def num_seqs(self) -> int:
        """Sequences per prefill/train step."""
        return self.tokens_per_step // self.seq_len

    @property
    def work_units(self) -> int:
        """Tokens processed (prefill, train) or generated (decode) by the trace."""
        if self.mode == "decode":
            return self.decode_tokens * self.decode_batch
        return self.tokens_per_step

    def check_scenario(self, family: str) -> None:
        """Raise ConfigError unless tokens_per_step is a whole number of sequences."""
        check(self.tokens_per_step % self.seq_len == 0, family, "tokens_per_step",
              f"must be a multiple of seq_len ({self.seq_len}), got {self.tokens_per_step}")


def attention_sublayer(tokens: Any, d_model: int, heads: int, head_dim: int, *, queries: Any,
                       keys: Any, pairs: Any, seqs: int, kv_dst: str, kv_space: str,
                       gated: bool = False, kv_heads: int | None = None,
                       kv_format: KVFormat = BF16_CACHE, quantized_keys: Any = 0,
                       cache_write: dict | None = None, **extra: Any) -> list[Template]:
    """Pre-norm attention: norm, Q (and gate) GEMM, K/V GEMM, RoPE, attention, O GEMM.

    The K/V projection writes straight into ``kv_dst`` (``kv_cache`` at inference, ``act`` in
    training); attention reads K/V from ``kv_space``. ``kv_heads`` K/V heads serve the
    ``heads`` query heads (GQA; MQA with 1; default MHA). ``gated`` adds HRM-Text's sigmoid
    output gate, produced by the same projection as Q.

    A quantized cache (``kv_format``): ``quantized_keys`` of each sequence's keys (int or
    array) are read packed by a ``dequantize`` op, the rest as bf16; OScaR-style formats
    rotate the queries before and the output after attention. ``cache_write`` (keys
    ``tokens``, ``residual``, ``src``, ``dst``, ``mask``) quantizes ``tokens`` tokens per
    sequence from ``src`` into ``dst`` (default ``kv_space``) after the attention, writing
    ``residual`` more as bf16.
    """
    width = heads * head_dim
    kv_heads = heads if kv_heads is None else kv_heads
    kv_width = kv_heads * head_dim
    ops = [
        rmsnorm("attn_norm", tokens, d_model, **extra),
        gemm("gq_proj" if gated else "q_proj", tokens, d_model, (2 if gated else 1) * width, **extra),
        gemm("kv_proj", tokens, d_model, 2 * kv_width, dst=kv_dst, **extra),
        dict(vector("rope", tokens * (width + kv_width), ROPE_FLOPS, **extra), _name="rope"),
    ]
    reads_packed = kv_format.quantized and np.any(np.asarray(quantized_keys) > 0)
    if reads_packed:
        if kv_format.rotated:
            ops.append(vector_rotation("q_rotate", tokens * heads, head_dim, **extra))
        # A fused kernel dequantizes tiles while it computes: the dequantize op runs beside
        # the attention (a stream of its own, from the same point), and what follows waits
        # for both.
        ops.append(dict(dequantize_op(kv_format, quantized_keys, kv_heads, head_dim, copies=seqs,
                                      space=kv_space, **_masked(extra, np.asarray(quantized_keys) > 0)),
                        stream="kv_dequant", after="rope", _name="dequantize"))
    ops.append(attention("attention", queries, keys, head_dim, heads, pairs, seqs=seqs,
                         kv_space=kv_space, kv_heads=kv_heads,
                         bf16_keys=keys - quantized_keys if reads_packed else None, **extra))
    if reads_packed and kv_format.rotated:
        ops.append(vector_rotation("o_rotate", tokens * heads, head_dim, after="dequantize",
                                   **_masked(extra, np.asarray(quantized_keys) > 0)))
    if cache_write is not None:
        write = dict(cache_write)
        mask = write.pop("mask", True)
        ops += quantize_ops(kv_format, write.pop("tokens"), kv_heads, head_dim, copies=seqs,
                            dst=write.pop("dst", kv_space), residual_tokens=write.pop("residual", 0),
                            src=write.pop("src", kv_space), **_masked(extra, mask))
    if gated:
        ops.append(vector("attn_gate", tokens * width, SIGMOID_GATE_FLOPS, **extra))
    out = gemm("o_proj", tokens, width, d_model, **extra)
    ops.append(dict(out, after="dequantize") if reads_packed and not kv_format.rotated else out)
    return ops


def _masked(extra: dict, mask: Any) -> dict:
    """``extra`` with ``mask`` and-ed into its own mask (if any)."""
    if "mask" in extra:
        mask = np.logical_and(extra["mask"], mask)
    return {**extra, "mask": mask}


def lm_head(tokens: Any, d_model: int, vocab: int, *, loss: bool, **extra: Any) -> list[Template]:
    """Final norm and the LM-head GEMM (plus the softmax cross-entropy when ``loss``)."""
    ops = [rmsnorm("final_norm", tokens, d_model, **extra),
           gemm("lm_head", tokens, d_model, vocab, **extra)]
    if loss:
        ops.append(vector("cross_entropy", tokens * vocab, CROSS_ENTROPY_FLOPS, write_bytes=0,
                          **extra))
    return ops


def alloc(space: str, nbytes: Any, tag: str, **extra: Any) -> Template:
    """Reserve ``nbytes`` in ``space`` (occupancy bookkeeping)."""
    return dict(kind="alloc", dst=space, bytes_written=nbytes, tag=tag, **extra)


def free(space: str, nbytes: Any, tag: str, **extra: Any) -> Template:
    """Release ``nbytes`` in ``space``."""
    return dict(kind="free", src=space, bytes_read=nbytes, tag=tag, **extra)


def decode_positions(spec: LMScenario, window: int | None = None) -> np.ndarray:
    """Keys visible to each decoded token (itself included), shape (decode_tokens, 1)."""
    keys = spec.context_tokens + 1 + np.arange(spec.decode_tokens, dtype=np.int64)
    if window is not None:
        keys = np.minimum(keys, window)
    return keys[:, None]


def kv_bytes_per_token(layers: int, width: int) -> int:
    """K and V bytes (bf16) one token adds to a cache over ``layers`` attention layers."""
    return layers * 2 * width * BF16


@dataclass(frozen=True)
class DecodeCache:
    """How the KV cache of a decode trace evolves, token by token (arrays of shape (steps, 1)).

    At step s the cache holds ``keys − 1`` tokens before the new one: the attention reads
    ``quantized_keys`` of them packed and the rest (new token included) as bf16; after the
    attention, steps with ``flush`` quantize ``flush_tokens`` residual tokens per sequence
    and layer. ``append`` bytes are allocated at the start of a step, ``release`` bytes freed
    at its end (the bf16 copies a flush replaced); ``held`` is the cache at the start.
    """

    held: int
    append: np.ndarray
    release: np.ndarray
    quantized_keys: np.ndarray
    flush: np.ndarray
    flush_tokens: int


def decode_cache(spec: LMScenario, fmt: KVFormat, copies: int, kv_heads: int, head_dim: int,
                 window: int | None = None) -> DecodeCache:
    """The :class:`DecodeCache` of ``copies`` caches (layers x sequences) of ``kv_heads`` x
    ``head_dim`` per token in format ``fmt``; ``window`` caps a bf16 sliding-window cache."""
    if window is not None and fmt.quantized:
        raise ValueError("a quantized sliding-window cache is not modelled")
    before = spec.context_tokens + np.arange(spec.decode_tokens + 1, dtype=np.int64)[:, None]
    if window is not None:
        before = np.minimum(before, window)
    total = copies * fmt.cache_bytes(before, kv_heads, head_dim)
    token = copies * 2 * kv_heads * head_dim * BF16
    append = token * (before[1:] > before[:-1])
    quantized = fmt.quantized_tokens(before)
    flushed = quantized[1:] - quantized[:-1]
    flush_tokens = fmt.group_size if fmt.grouped else 1
    if not np.all((flushed == 0) | (flushed == flush_tokens)):
        raise RuntimeError("a decode step quantized a partial group")
    return DecodeCache(held=int(total[0, 0]), append=append, release=append - np.diff(total, axis=0),
                       quantized_keys=quantized[:-1], flush=flushed > 0, flush_tokens=flush_tokens)


def emit_sequence(table: OpTable, spec: LMScenario, *, d_model: int, vocab: int, num_params: int,
                  units: int, unit_ops: Callable[[np.ndarray, str], list[Template]],
                  held: dict[str, int], grad_units: np.ndarray | None = None) -> None:
    """Prefill or train over ``num_seqs`` sequences of ``seq_len`` tokens.

    ``unit_ops(order, phase)`` returns the templates of one repeating unit of the model (a
    layer, a group of layers, a module application) for the unit indices ``order``. Prefill
    holds the ``held`` buffers (KV cache, recurrent state) for its duration and computes the
    LM head for the last position of each sequence. Train runs the forward, the head and
    loss on every position, the backward of ``grad_units`` (default: all units, top-down)
    and one AdamW step; its weights space holds weights, gradients and optimizer state.
    """
    train = spec.mode == "train"
    phase = "fwd" if train else "prefill"
    tokens = spec.tokens_per_step
    weight_bytes = num_params * (TRAIN_BYTES_PER_PARAM if train else BF16)
    held = {} if train else {space: nbytes for space, nbytes in held.items() if nbytes}
    table.one(**alloc("weights", weight_bytes, "weights"))
    for space, nbytes in held.items():
        table.one(**alloc(space, nbytes, space))
    table.one(**embedding(tokens, d_model, phase=phase))
    order = np.arange(units)
    table.grid((units,), unit_ops(order, phase))
    head = lm_head(tokens if train else spec.num_seqs, d_model, vocab, loss=train, phase=phase)
    table.grid((1,), head)
    if train:
        table.grid((1,), backward(head))
        grad_units = order[::-1] if grad_units is None else grad_units
        table.grid((len(grad_units),), backward(unit_ops(grad_units, "fwd")))
        table.one(**optimizer_step(num_params))
    for space, nbytes in reversed(held.items()):
        table.one(**free(space, nbytes, space))
    table.one(**free("weights", weight_bytes, "weights"))


def emit_decode(table: OpTable, spec: LMScenario, *, d_model: int, vocab: int, num_params: int,
                units: int, unit_ops: Callable[..., list[Template]], held: dict[str, int],
                cache: DecodeCache) -> None:
    """Token-serial decode of ``decode_tokens`` tokens for ``decode_batch`` sequences.

    ``held`` buffers (recurrent state, conv caches) exist from the start, as does the
    context's KV cache (``cache.held`` bytes in ``kv_cache``); every token allocates
    ``cache.append`` bytes of K,V first and frees ``cache.release`` at its end, and runs
    ``unit_ops(units, step=..., phase="decode")`` for every unit and the LM head.
    """
    batch, n_tok = spec.decode_batch, spec.decode_tokens
    held = {space: nbytes for space, nbytes in held.items() if nbytes}
    if cache.held:
        held["kv_cache"] = cache.held
    table.one(**alloc("weights", num_params * BF16, "weights"))
    for space, nbytes in held.items():
        table.one(**alloc(space, nbytes, space))
    unit = np.arange(units)[None, :]
    first, last = unit == 0, unit == units - 1
    step = np.arange(n_tok)[:, None]
    templates = [alloc("kv_cache", cache.append, "kv_append", mask=first & (cache.append > 0), step=step),
                 embedding(batch, d_model, mask=first, step=step, phase="decode")]
    templates += unit_ops(unit, step=step, phase="decode")
    templates += [dict(t, mask=last) for t in lm_head(batch, d_model, vocab, loss=False, step=step,
                                                      phase="decode")]
    if cache.release.any():
        templates.append(free("kv_cache", cache.release, "kv_release", mask=last & (cache.release > 0),
                              step=step))
    table.grid((n_tok, units), templates)
    final = cache.held + int(cache.append.sum() - cache.release.sum())
    if final:
        held["kv_cache"] = final
    for space, nbytes in reversed(held.items()):
        table.one(**free(space, nbytes, space))
    table.one(**free("weights", num_params * BF16, "weights"))
