"""Trace generator for Gated DeltaNet-2 / KDA / GDN language models.

Per mixer block: pre-norm, fused q/k/v projection, short causal convs, the gate projections
(GDN-2: separate channel-wise erase b and write w projections plus the low-rank decay f;
KDA: one per-head beta and the low-rank decay; GDN: per-head beta and scalar decay), the
delta-rule core, the low-rank output gate, per-head output norm x gate, and the output
projection; then a SwiGLU MLP. Hybrid models alternate mixer blocks with sliding-window
attention blocks over a ``kv_cache``.

The core is, in decode mode, one token-serial ``state_update`` per layer that reads and
writes the whole fp32 state (``state`` space); in prefill and train it is the chunkwise WY
kernel sequence of the released code (§2.3): ``chunk_cumsum`` (K0, gate cumsum and the
element-wise work), ``chunk_intra`` (K1, T and A_qk), ``chunk_solve`` (K2, triangular
solve), ``chunk_wy`` (K3, Y and U), ``chunk_state`` (K4, the sequential inter-chunk state
pass, ``elements`` = chunks) and ``chunk_output`` (K5). Their FLOPs add up to
:func:`workloads.deltanet2.flops.gdn2_chunked_flops`; the dense terms of Eq. 2.19 are
assigned to the kernel that does them and the remainder (the element-wise terms) to K0.
"""

from __future__ import annotations

import numpy as np

from hwsim.trace import Trace
from workloads.common.layers import (
    BF16,
    FP32,
    Template,
    causal_pairs,
    gemm,
    rmsnorm,
    swiglu_mlp,
    vector,
)
from workloads.common.lm import (
    BF16_CACHE,
    attention_sublayer,
    decode_cache,
    decode_positions,
    emit_decode,
    emit_sequence,
    kv_bytes_per_token,
)
from workloads.common.ops import OpTable
from workloads.common.spec import trace_meta
from workloads.deltanet2.flops import gdn2_chunk_flops, gdn2_recurrent_flops
from workloads.deltanet2.spec import FAMILY, DeltaNet2Spec

#: Per element: 2 x kernel multiply-adds of the depthwise conv, then SiLU (sigmoid + multiply).
CONV_SILU_FLOPS_EXTRA = 2
#: Per element of the output: RMSNorm 3 (square-accumulate, scale), SiLU 2, gate multiply 1.
OUT_NORM_GATE_FLOPS = 6
#: Per decay channel: add delta, softplus, multiply by -exp(a).
DECAY_FLOPS = 3


def generate(spec: DeltaNet2Spec, rng: np.random.Generator, *, seed: int | None = None,
             preset: str = "") -> Trace:
    """Operation trace of ``spec`` (no random choices are made; ``rng`` is for API symmetry)."""
    table = OpTable()
    if spec.mode == "decode":
        _decode(table, spec)
    else:
        _sequence(table, spec)
    meta = trace_meta(FAMILY, spec, preset=preset, seed=seed, work_unit="token",
                      work_units=spec.work_units,
                      description=f"{spec.variant}{' hybrid' if spec.hybrid else ''} {spec.mode}")
    return table.to_trace(meta, source=f"workloads.{FAMILY}")


def _gate_row_bytes(spec: DeltaNet2Spec) -> tuple[int, int, int]:
    """Bytes per token-head of the decay (fp32), erase gate and write gate inputs of the core."""
    decay = FP32 if spec.variant == "gdn" else spec.head_k_dim * FP32
    erase = spec.head_k_dim * BF16 if spec.variant == "gdn2" else BF16
    write = spec.head_v_dim * BF16 if spec.variant == "gdn2" else 0
    return decay, erase, write


def chunk_kernels(spec: DeltaNet2Spec, seqs: int, **extra) -> list[Template]:
    """The chunkwise forward kernels K0..K5 of one mixer layer over ``seqs`` sequences.

    The ⌊T/C⌋ full chunks form one set of six ops; a last partial chunk of T mod C tokens
    (which the kernels run at its own length) forms a second set, shaped to that length.
    """
    full, tail = divmod(spec.seq_len, spec.chunk_size)
    ops = _chunk_set(spec, seqs, spec.chunk_size, full, **extra) if full else []
    return ops + (_chunk_set(spec, seqs, tail, 1, **extra) if tail else [])


def _chunk_set(spec: DeltaNet2Spec, seqs: int, C: int, nc: int, **extra) -> list[Template]:
    """K0..K5 over ``nc`` chunks of ``C`` tokens per sequence and head."""
    H, K, V = spec.num_heads, spec.head_k_dim, spec.head_v_dim
    n = seqs * H * nc                     # (sequence, head, chunk) instances
    rows = seqs * nc * C * H              # (token, head) rows
    f_intra, f_solve = 4 * C * C * K, (C ** 3 - C) // 3
    f_wy, f_state, f_out = 2 * C * C * (K + V), 4 * C * K * V + 2 * K * V, 2 * C * K * V + 2 * C * C * V
    f_prep = n * (gdn2_chunk_flops(C, K, V) - (f_intra + f_solve + f_wy + f_state + f_out))
    if f_prep < 0:
        raise ValueError("gdn2_chunk_flops is smaller than the dense chunkwise terms of Eq. 2.19")
    g_row, b_row, w_row = _gate_row_bytes(spec)
    qk_row = 2 * K * BF16
    tile = C * C * FP32
    common = dict(_bwd_factor=spec.chunk_bwd_factor, src="act", dst="act", **extra)
    return [
        dict(kind="vector", tag="chunk_cumsum", elements=rows * (g_row // FP32), flops=f_prep,
             bytes_read=rows * g_row, bytes_written=rows * g_row, dtype="fp32", **common),
        dict(kind="gemm", tag="chunk_intra", m=C, n=C, k=K, batch=2 * n, flops=n * f_intra,
             bytes_read=rows * (qk_row + b_row + g_row), bytes_written=2 * n * tile, **common),
        dict(kind="gemm", tag="chunk_solve", m=C, n=C, k=C, batch=n, flops=n * f_solve,
             bytes_read=n * tile, bytes_written=n * tile, dtype="fp32", **common),
        dict(kind="gemm", tag="chunk_wy", m=C, n=K + V, k=C, batch=n, flops=n * f_wy,
             bytes_read=n * tile + rows * (K * BF16 + b_row + g_row + V * BF16 + w_row),
             bytes_written=rows * (K + V) * BF16, **common),
        dict(kind="state_update", tag="chunk_state", m=C, n=V, k=K, batch=seqs * H, elements=nc,
             flops=n * f_state, bytes_read=rows * (2 * K * BF16 + V * BF16 + g_row),
             # bf16 tensor-core products into the fp32 state (as FLA's chunk_fwd_h): the
             # dtype is the math's, the state's fp32 bytes are counted above
             bytes_written=n * K * V * FP32 + rows * V * BF16, dtype="bf16", **common),
        dict(kind="gemm", tag="chunk_output", m=C, n=V, k=K + C, batch=n, flops=n * f_out,
             bytes_read=rows * (K * BF16 + g_row + V * BF16) + n * (K * V * FP32 + tile),
             bytes_written=rows * V * BF16, **common),
    ]


def state_update(spec: DeltaNet2Spec, batch: int, **extra) -> Template:
    """Token-serial recurrence of one layer for one token of ``batch`` sequences."""
    H, K, V = spec.num_heads, spec.head_k_dim, spec.head_v_dim
    g_row, b_row, w_row = _gate_row_bytes(spec)
    state = batch * H * K * V * FP32
    return dict(kind="state_update", tag="state_update", m=1, n=V, k=K, batch=batch * H, elements=1,
                flops=batch * gdn2_recurrent_flops(1, H, K, V), src="state", bytes_read=state,
                src2="act", bytes_read2=batch * H * (2 * K * BF16 + V * BF16 + g_row + b_row + w_row),
                dst="state", bytes_written=state, dtype="fp32", **extra)


def _mixer(spec: DeltaNet2Spec, tokens, core: list[Template], *, decode: bool, **extra) -> list[Template]:
    D, r, H = spec.d_model, spec.gate_rank, spec.num_heads
    kw, vw = spec.key_width, spec.value_width
    channels = 2 * kw + vw
    conv_flops = 2 * spec.conv_kernel + CONV_SILU_FLOPS_EXTRA
    if decode:
        conv = dict(kind="vector", tag="conv", elements=tokens * channels, flops=tokens * channels * conv_flops,
                    src="state", bytes_read=tokens * (spec.conv_kernel - 1) * channels * BF16,
                    src2="act", bytes_read2=tokens * channels * BF16,
                    dst="state", bytes_written=tokens * channels * BF16, **extra)
    else:
        conv = vector("conv", tokens * channels, conv_flops, **extra)
    ops = [rmsnorm("mixer_norm", tokens, D, **extra), gemm("qkv_proj", tokens, D, channels, **extra), conv]
    if spec.variant == "gdn2":
        ops += [gemm("erase_proj", tokens, D, kw, **extra), gemm("write_proj", tokens, D, vw, **extra)]
        gate_elems, gate_flops = kw + kw + vw, DECAY_FLOPS * kw + kw + vw
    else:
        ops.append(gemm("beta_proj", tokens, D, H, **extra))
        gate_elems = (kw if spec.variant == "kda" else H) + H
        gate_flops = DECAY_FLOPS * (gate_elems - H) + H
    if spec.variant == "gdn":
        ops.append(gemm("decay_proj", tokens, D, H, **extra))
    else:
        ops += [gemm("decay_down", tokens, D, r, **extra), gemm("decay_up", tokens, r, kw, **extra)]
    ops.append(dict(kind="vector", tag="gate_act", elements=tokens * gate_elems,
                    flops=tokens * gate_flops, src="act", bytes_read=tokens * gate_elems * BF16,
                    dst="act", bytes_written=tokens * gate_elems * FP32, **extra))
    ops += core
    ops += [gemm("outgate_down", tokens, D, r, **extra), gemm("outgate_up", tokens, r, vw, **extra),
            vector("out_norm_gate", tokens * vw, OUT_NORM_GATE_FLOPS, **extra),
            gemm("o_proj", tokens, vw, D, **extra)]
    return ops


def _group(spec: DeltaNet2Spec, groups: np.ndarray, tokens, *, core, swa: dict, decode: bool,
           **extra) -> list[Template]:
    """Templates of one repeating group of blocks; ``groups`` (array) broadcasts over the grid."""
    ops: list[Template] = []
    width = len(spec.pattern)
    for index, kind in enumerate(spec.pattern):
        layer = groups * width + index
        if kind == "mixer":
            ops += _mixer(spec, tokens, [dict(t, layer=layer) for t in core], decode=decode,
                          layer=layer, **extra)
        else:
            ops += attention_sublayer(tokens, spec.d_model, spec.swa_heads, spec.swa_head_dim,
                                      layer=layer, **swa, **extra)
        ops += swiglu_mlp(tokens, spec.d_model, spec.d_ff, layer=layer, **extra)
    return ops


def _swa_kv_token(spec: DeltaNet2Spec) -> int:
    return kv_bytes_per_token(spec.num_swa_blocks, spec.swa_width)


def _state_bytes(spec: DeltaNet2Spec, batch: int) -> int:
    return batch * spec.num_mixer_blocks * spec.num_heads * spec.head_k_dim * spec.head_v_dim * FP32


def _sequence(table: OpTable, spec: DeltaNet2Spec) -> None:
    """Prefill or train: chunkwise kernels over ``num_seqs`` sequences of ``seq_len`` tokens."""
    train = spec.mode == "train"
    seqs, T, tokens = spec.num_seqs, spec.seq_len, spec.tokens_per_step
    kv_dst = "act" if train else "kv_cache"
    window = min(T, spec.swa_window)
    state_bytes = _state_bytes(spec, seqs)
    swa = dict(queries=T, keys=window, pairs=causal_pairs(T, window=spec.swa_window), seqs=seqs,
               kv_dst=kv_dst, kv_space=kv_dst)

    def group_ops(groups: np.ndarray, phase: str) -> list[Template]:
        core = chunk_kernels(spec, seqs, phase=phase)
        if not train:  # the final state stays for decoding
            core.append(dict(kind="transfer", tag="state_store", src="act", dst="state",
                             bytes_read=state_bytes // spec.num_mixer_blocks, dtype="fp32",
                             phase=phase))
        return _group(spec, groups, tokens, core=core, swa=swa, decode=False, phase=phase)

    emit_sequence(table, spec, **_model(spec), unit_ops=group_ops,
                  held={"state": state_bytes, "kv_cache": seqs * window * _swa_kv_token(spec)})


def _decode(table: OpTable, spec: DeltaNet2Spec) -> None:
    """Token-serial decode from a context of ``context_tokens`` (state and SWA cache given)."""
    batch = spec.decode_batch
    channels = 2 * spec.key_width + spec.value_width
    conv_bytes = batch * spec.num_mixer_blocks * (spec.conv_kernel - 1) * channels * BF16
    cache = decode_cache(spec, BF16_CACHE, batch * spec.num_swa_blocks, spec.swa_heads,
                         spec.swa_head_dim, window=spec.swa_window)
    keys = decode_positions(spec, window=spec.swa_window)
    swa = dict(queries=1, keys=keys, pairs=keys, seqs=batch, kv_dst="kv_cache", kv_space="kv_cache")
    emit_decode(table, spec, **_model(spec),
                held={"state": _state_bytes(spec, batch) + conv_bytes}, cache=cache,
                unit_ops=lambda groups, **extra: _group(
                    spec, groups, batch, core=[state_update(spec, batch, **extra)], swa=swa,
                    decode=True, **extra))


def _model(spec: DeltaNet2Spec) -> dict:
    return dict(d_model=spec.d_model, vocab=spec.vocab_size, num_params=spec.num_params,
                units=spec.num_blocks // len(spec.pattern))
