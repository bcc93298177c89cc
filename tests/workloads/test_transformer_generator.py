"""Softmax-transformer baseline: closed-form counts, full causal attention over a growing KV
cache, and dims matched to gdn2-1.3b."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hwsim.errors import ConfigError
from workloads import deltanet2, transformer
from workloads.kvquant import flops as kf
from workloads.transformer.spec import TransformerSpec


def small_spec(**overrides) -> TransformerSpec:
    base = dict(d_model=32, num_layers=3, num_heads=4, head_dim=8, d_ff=48, vocab_size=40,
                seq_len=8, tokens_per_step=24, context_tokens=4, decode_tokens=5, decode_batch=2,
                mode="prefill")
    base.update(overrides)
    return TransformerSpec(**base)


def frame_of(spec: TransformerSpec, seed: int = 0) -> pd.DataFrame:
    return transformer.generate(spec, np.random.default_rng(seed), seed=seed).to_frame()


def layer_gemm_flops_per_token(s: TransformerSpec) -> int:
    return 2 * 4 * s.d_model * s.attn_width + 6 * s.d_model * s.d_ff


def weight_gemm_flops(frame: pd.DataFrame) -> int:
    """GEMMs that read a weight (forward, data gradient) or write its gradient."""
    touches = (frame.src == "weights") | (frame.dst == "weights")
    return frame[(frame.kind == "gemm") & touches].flops.sum()


def test_small_prefill_flops_equal_closed_form():
    spec = small_spec()
    frame = frame_of(spec)
    T, B = spec.seq_len, spec.num_seqs
    assert weight_gemm_flops(frame) == (spec.num_layers * B * T * layer_gemm_flops_per_token(spec)
                                        + B * 2 * spec.d_model * spec.vocab_size)
    attn = frame[frame.kind.str.startswith("attention")]
    assert attn.flops.sum() == spec.num_layers * B * 4 * spec.attn_width * T * (T + 1) // 2
    kv = frame[frame.tag == "kv_proj"]
    assert set(kv.dst) == {"kv_cache"}


def test_small_decode_attends_over_the_whole_growing_cache():
    spec = small_spec(mode="decode")
    frame = frame_of(spec)
    attn = frame[frame.kind.str.startswith("attention")]
    B, kv_token = spec.decode_batch, 2 * spec.attn_width * 2
    for i, (_, rows) in enumerate(attn.groupby("step")):
        n_kv = spec.context_tokens + i + 1
        assert (rows.n == n_kv).all() and len(rows) == spec.num_layers
        assert rows.bytes_read2.sum() == spec.num_layers * B * n_kv * kv_token
    assert weight_gemm_flops(frame) == spec.decode_tokens * B * (
        spec.num_layers * layer_gemm_flops_per_token(spec) + 2 * spec.d_model * spec.vocab_size)
    allocs = frame[frame.kind == "alloc"].groupby("dst").bytes_written.sum()
    frees = frame[frame.kind == "free"].groupby("src").bytes_read.sum()
    assert allocs.to_dict() == frees.to_dict()
    assert allocs["kv_cache"] == spec.num_layers * B * (spec.context_tokens + spec.decode_tokens) * kv_token


def test_small_train_is_forward_plus_twice_forward_for_weights():
    spec = small_spec(mode="train")
    frame = frame_of(spec)
    tokens = spec.tokens_per_step
    fwd = spec.num_layers * tokens * layer_gemm_flops_per_token(spec) + tokens * 2 * spec.d_model * spec.vocab_size
    assert weight_gemm_flops(frame) == 3 * fwd
    attn = frame[frame.kind.str.startswith("attention")]
    fwd_attn = attn[attn.phase == "fwd"].flops.sum()
    assert attn[attn.phase == "bwd"].flops.sum() == pytest.approx(2.5 * fwd_attn)


def test_preset_matches_gdn2_width_depth_mlp_and_vocab():
    tf = transformer.load_spec("transformer-1.3b", {})
    gdn = deltanet2.load_spec("gdn2-1.3b", {})
    assert (tf.d_model, tf.num_layers, tf.d_ff, tf.vocab_size) == (
        gdn.d_model, gdn.num_blocks, gdn.d_ff, gdn.vocab_size)


def test_prefill_attention_cost_grows_with_sequence_length():
    per_token = {}
    for seq_len in (2048, 16384):
        spec = transformer.load_spec("transformer-1.3b", {"seq_len": seq_len})
        frame = frame_of(spec)
        per_token[seq_len] = frame[frame.kind.str.startswith("attention")].flops.sum() / spec.tokens_per_step
    assert per_token[16384] / per_token[2048] == pytest.approx(16385 / 2049, rel=1e-6)


def test_bad_parameters_fail_naming_the_parameter():
    with pytest.raises(ConfigError, match=r"transformer\.tokens_per_step: "):
        transformer.load_spec("transformer-1.3b", {"tokens_per_step": "1000"})
    with pytest.raises(ConfigError, match=r"transformer\.d_model: "):
        transformer.load_spec("transformer-1.3b", {"d_model": "-2"})


# --- mainstream LLM shapes: GQA/MQA, presets, context limits -------------------------------------
@pytest.mark.parametrize("preset, params", [("llama-2-7b", 6_738_415_616), ("llama-2-70b", 68_976_648_192),
                                            ("llama-3.1-8b", 8_030_261_248)])
def test_llama_presets_have_the_published_parameter_counts(preset, params):
    # Totals of the released checkpoints [S] (their safetensors metadata): an independent count.
    assert transformer.load_spec(preset, {}).num_params == params


def test_llama_3_1_8b_shares_8_kv_heads_and_caches_128_kib_per_token():
    spec = transformer.load_spec("llama-3.1-8b", {})
    assert (spec.num_heads, spec.kv_heads, spec.head_dim) == (32, 8, 128)
    assert spec.num_layers * 2 * spec.kv_width * 2 == 131_072          # bf16 K+V per token


def gqa_spec(**overrides) -> TransformerSpec:
    return small_spec(num_heads=4, num_kv_heads=2, **overrides)


@pytest.mark.parametrize("mode", ["prefill", "train"])
def test_gqa_weight_flops_are_2_x_matrix_params_x_tokens_plus_the_head(mode):
    spec = gqa_spec(mode=mode)
    frame = frame_of(spec)
    d, V, L = spec.d_model, spec.vocab_size, spec.num_layers
    matrix_params = L * (spec.block_params - 2 * d)         # everything but the norm weights
    head_tokens = spec.tokens_per_step if mode == "train" else spec.num_seqs
    forward = 2 * matrix_params * spec.tokens_per_step + 2 * d * V * head_tokens
    assert weight_gemm_flops(frame) == (3 if mode == "train" else 1) * forward
    kv = frame[frame.tag == "kv_proj"]
    assert set(kv.n) == {2 * spec.kv_heads * spec.head_dim}
    attn = frame[(frame.kind == "attention") & (frame.phase != "bwd")]
    T = spec.seq_len
    assert attn.flops.sum() == L * spec.num_seqs * 4 * spec.attn_width * T * (T + 1) // 2


def test_gqa_decode_reads_and_caches_only_the_kv_heads():
    spec = gqa_spec(mode="decode")
    frame = frame_of(spec)
    B, L, kv_token = spec.decode_batch, spec.num_layers, 2 * spec.kv_width * 2
    attn = frame[frame.kind == "attention"]
    for i, (_, rows) in enumerate(attn.groupby("step")):
        n_kv = spec.context_tokens + i + 1
        assert rows.bytes_read2.sum() == L * B * n_kv * kv_token
        assert rows.flops.sum() == L * B * 4 * n_kv * spec.attn_width
    allocs = frame[frame.kind == "alloc"].groupby("dst").bytes_written.sum()
    assert allocs["kv_cache"] == L * B * (spec.context_tokens + spec.decode_tokens) * kv_token


def test_mqa_has_one_kv_head_and_a_bad_grouping_is_an_error():
    spec = small_spec(num_heads=4, num_kv_heads=1)
    assert spec.kv_width == spec.head_dim
    with pytest.raises(ConfigError, match=r"transformer\.num_kv_heads: 4 query heads do not split"):
        small_spec(num_heads=4, num_kv_heads=3)


def test_sequences_longer_than_the_model_supports_are_errors():
    with pytest.raises(ConfigError, match=r"transformer\.seq_len: 8192 positions exceed the model's max_context of 4096"):
        transformer.load_spec("llama-2-7b", {"seq_len": "8192", "tokens_per_step": "8192"})
    with pytest.raises(ConfigError, match=r"transformer\.context_tokens: 4196 positions exceed"):
        transformer.load_spec("llama-2-7b", {"mode": "decode", "context_tokens": "4000", "decode_tokens": "196"})
    assert transformer.load_spec("llama-3.1-8b", {"mode": "decode"}).context_tokens == 130_944


# --- quantized KV caches ----------------------------------------------------------------------
def kv_spec(**overrides) -> TransformerSpec:
    base = dict(num_heads=4, num_kv_heads=2, head_dim=16, d_model=64, mode="decode", context_tokens=40,
                decode_tokens=30, decode_batch=2, kv_dtype="int2", kv_quant="oscar", kv_group_size=8,
                kv_residual_tokens=16)
    base.update(overrides)
    return small_spec(**base)


def test_quantized_decode_reads_packed_tokens_and_the_bf16_residual():
    spec = kv_spec()
    fmt, frame = spec.kv_format, frame_of(spec)
    B, L, kvh, hd = spec.decode_batch, spec.num_layers, spec.kv_heads, spec.head_dim
    attn = frame[frame.kind == "attention"].groupby("step")
    deq = frame[frame.kind == "dequantize"].groupby("step")
    for s in range(spec.decode_tokens):
        keys = spec.context_tokens + s + 1
        packed = fmt.quantized_tokens(keys - 1)             # cached before this step's token
        assert attn.get_group(s).bytes_read2.sum() == L * B * (keys - packed) * 2 * kvh * hd * 2
        assert attn.get_group(s).flops.sum() == L * B * 4 * keys * spec.attn_width
        assert deq.get_group(s).bytes_read.sum() == L * B * fmt.packed_bytes(packed, kvh, hd)
        assert set(deq.get_group(s).src) == {"kv_cache"}


def test_quantized_decode_quantizes_a_group_whenever_the_residual_overflows():
    spec = kv_spec()
    fmt, frame = spec.kv_format, frame_of(spec)
    B, L, kvh, hd, G = spec.decode_batch, spec.num_layers, spec.kv_heads, spec.head_dim, spec.kv_group_size
    quant = frame[frame.kind == "quantize"]
    flush_steps = [s for s in range(spec.decode_tokens)
                   if fmt.quantized_tokens(spec.context_tokens + s + 1) > fmt.quantized_tokens(spec.context_tokens + s)]
    assert sorted(set(quant.step)) == flush_steps and len(flush_steps) >= 3
    per_flush = quant.groupby("step")
    for s in flush_steps:
        rows = per_flush.get_group(s)
        assert len(rows) == L
        assert rows.bytes_written.sum() == L * B * fmt.packed_bytes(G, kvh, hd)
        assert rows.flops.sum() == L * B * kf.quantize_flops(fmt, G, kvh, hd)
    rotate_kv = frame[frame.tag == "kv_rotate"]
    assert rotate_kv.flops.sum() == len(flush_steps) * L * B * kf.rotate_flops(2 * G * kvh, hd)
    # Queries and outputs are rotated once per query head at every step that reads packed tokens.
    q_rot = frame[frame.tag == "q_rotate"]
    assert q_rot.flops.sum() == len(q_rot) * B * spec.num_heads * kf.rotate_flops(1, hd)
    assert len(frame[frame.tag == "o_rotate"]) == len(q_rot) == L * spec.decode_tokens


def test_quantized_decode_cache_occupancy_ends_at_the_formats_byte_count():
    spec = kv_spec()
    frame = frame_of(spec)
    kv = frame[(frame.kind.isin(["alloc", "free"])) & ((frame.dst == "kv_cache") | (frame.src == "kv_cache"))]
    level = (kv.bytes_written.where(kv.kind == "alloc", 0) - kv.bytes_read.where(kv.kind == "free", 0)).cumsum()
    final = spec.num_layers * spec.decode_batch * spec.kv_format.cache_bytes(
        spec.context_tokens + spec.decode_tokens, spec.kv_heads, spec.head_dim)
    assert level.iloc[-2] == final and level.iloc[-1] == 0   # the last op frees it all
    bf16 = frame_of(kv_spec(kv_dtype="bf16"))
    assert bf16[bf16.kind == "alloc"].bytes_written.max() > 3 * kv[kv.kind == "alloc"].bytes_written.max()


def test_quantized_prefill_stores_packed_tokens_and_the_residual_after_attention():
    spec = kv_spec(mode="prefill", kv_dtype="int4", kv_quant="plain", seq_len=40, tokens_per_step=80)
    fmt, frame = spec.kv_format, frame_of(spec)
    L, seqs, kvh, hd = spec.num_layers, spec.num_seqs, spec.kv_heads, spec.head_dim
    n_q = fmt.quantized_tokens(spec.seq_len)
    quant = frame[frame.kind == "quantize"]
    assert len(quant) == L and set(quant.dst) == {"kv_cache"} and set(quant.src) == {"act"}
    assert quant.bytes_written.sum() == L * seqs * fmt.cache_bytes(spec.seq_len, kvh, hd)
    assert set(frame[frame.tag == "kv_proj"].dst) == {"act"}
    held = frame[(frame.kind == "alloc") & (frame.dst == "kv_cache")].bytes_written.sum()
    assert held == L * seqs * (fmt.packed_bytes(n_q, kvh, hd) + (spec.seq_len - n_q) * 2 * kvh * hd * 2)
    assert frame[frame.kind == "dequantize"].empty    # prefill attends over its own bf16 K,V


@pytest.mark.parametrize("overrides, parameter", [
    ({"mode": "train", "seq_len": 8, "tokens_per_step": 24}, "kv_dtype"),
    ({"head_dim": 24, "num_heads": 2, "num_kv_heads": 2}, "kv_quant"),
    ({"kv_dtype": "int3"}, "kv_dtype"),
])
def test_unsupported_kv_formats_fail_naming_the_parameter(overrides, parameter):
    with pytest.raises(ConfigError, match=rf"transformer\.{parameter}: "):
        kv_spec(**overrides)


def test_fp8_cache_quantizes_every_token_as_it_arrives():
    spec = kv_spec(kv_dtype="fp8", kv_quant="plain")
    frame = frame_of(spec)
    assert len(frame[frame.kind == "quantize"]) == spec.num_layers * spec.decode_tokens
    deq = frame[frame.kind == "dequantize"]
    assert deq.bytes_read.sum() == spec.num_layers * spec.decode_batch * sum(
        2 * (spec.context_tokens + s) * spec.kv_width for s in range(spec.decode_tokens))


def test_fp8_linear_layers_halve_weight_bytes_and_keep_the_head_in_bf16():
    from workloads.registry import generate_trace

    params = {"mode": "decode", "decode_batch": "2", "context_tokens": "16", "decode_tokens": "2"}
    bf16 = generate_trace("transformer", "llama-2-7b", params).to_frame()
    fp8 = generate_trace("transformer", "llama-2-7b", {**params, "gemm_dtype": "fp8"}).to_frame()
    linear = (bf16.kind == "gemm") & (bf16.src == "weights") & (bf16.tag != "lm_head")
    assert (fp8.loc[linear, "dtype"] == "fp8").all() and (fp8.loc[~linear & (fp8.kind == "gemm"), "dtype"] == "bf16").all()
    assert (fp8.loc[linear, "bytes_read"] * 2 == bf16.loc[linear, "bytes_read"]).all()
    assert (fp8.loc[linear, "flops"] == bf16.loc[linear, "flops"]).all()
    weights = lambda f: int(f.loc[(f.kind == "alloc") & (f.tag == "weights"), "bytes_written"].sum())  # noqa: E731
    # 32 blocks of linear weights go to 1 byte; norms, embedding and head stay 2 bytes
    assert weights(bf16) - weights(fp8) == 32 * (4 * 4096 * 4096 + 3 * 4096 * 11008)


def test_fp8_linear_layers_are_an_inference_option():
    import hwsim
    from workloads.registry import generate_trace

    with pytest.raises(hwsim.ConfigError, match="gemm_dtype"):
        generate_trace("transformer", "llama-2-7b", {"mode": "train", "gemm_dtype": "fp8"})
