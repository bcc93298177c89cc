"""Softmax-transformer baseline: closed-form counts, full causal attention over a growing KV
cache, and dims matched to gdn2-1.3b."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hwsim.errors import ConfigError
from workloads import deltanet2, transformer
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
