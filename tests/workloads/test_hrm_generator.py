"""HRM-Text trace generator: N x (T + 1) module applications, per-application KV slots,
Eq. 3.8-3.11 counts, truncated backward (bp) and parameter errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hwsim.errors import ConfigError
from workloads import hrm
from workloads.common.layers import causal_pairs
from workloads.hrm.spec import HRMSpec


def small_spec(**overrides) -> HRMSpec:
    base = dict(d_model=16, num_heads=2, head_dim=8, d_ff=32, module_layers=2, h_cycles=2,
                l_cycles=2, vocab_size=50, seq_len=8, tokens_per_step=16, context_tokens=3,
                decode_tokens=4, decode_batch=1, mode="prefill")
    base.update(overrides)
    return HRMSpec(**base)


def frame_of(spec: HRMSpec, seed: int = 0) -> pd.DataFrame:
    return hrm.generate(spec, np.random.default_rng(seed), seed=seed).to_frame()


def p_blk(s: HRMSpec) -> int:
    return 5 * s.d_model ** 2 + 3 * s.d_model * s.d_ff


def weight_gemm_flops(frame: pd.DataFrame) -> int:
    """GEMMs that read a weight (forward, data gradient) or write its gradient."""
    touches = (frame.src == "weights") | (frame.dst == "weights")
    return frame[(frame.kind == "gemm") & touches].flops.sum()


def test_module_applications_run_in_the_hrm_order():
    spec = small_spec()
    frame = frame_of(spec)
    inputs = frame[frame.tag.str.endswith("module_input")]
    assert [t[0] for t in inputs.tag] == list("LLHLLH")         # N = 2 x (T = 2 L-steps + 1 H-step)
    attn = frame[frame.kind.str.startswith("attention")]
    assert attn.layer.tolist() == list(range(spec.applications * spec.module_layers))


def test_small_prefill_flops_equal_eq_3_8():
    spec = small_spec(prefix_tokens=3)
    frame = frame_of(spec)
    apps = spec.applications * spec.module_layers
    tokens, seqs = spec.tokens_per_step, spec.num_seqs
    head = 2 * spec.d_model * spec.vocab_size * seqs                  # last position per sequence
    assert weight_gemm_flops(frame) == 2 * p_blk(spec) * apps * tokens + head
    pairs = 3 * 3 + sum(t + 1 for t in range(3, spec.seq_len))         # PrefixLM mask
    assert pairs == causal_pairs(spec.seq_len, prefix=3)
    attn = frame[frame.kind.str.startswith("attention")]
    assert attn.flops.sum() == apps * seqs * 4 * spec.d_model * pairs
    assert set(attn.src2) == {"kv_cache"}


def test_small_decode_flops_and_kv_traffic_equal_eq_3_8_and_3_10():
    spec = small_spec(mode="decode", decode_batch=2)
    frame = frame_of(spec)
    apps = spec.applications * spec.module_layers
    per_token = 2 * p_blk(spec) * apps + 2 * spec.d_model * spec.vocab_size
    assert weight_gemm_flops(frame) == spec.decode_tokens * spec.decode_batch * per_token
    kv_token = apps * 2 * spec.d_model * 2
    attn = frame[frame.kind.str.startswith("attention")]
    for i, (_, rows) in enumerate(attn.groupby("step")):
        n_kv = spec.context_tokens + i + 1
        assert len(rows) == apps and (rows.n == n_kv).all()
        assert rows.bytes_read2.sum() == spec.decode_batch * n_kv * kv_token
        assert rows.flops.sum() == spec.decode_batch * apps * 4 * spec.d_model * n_kv
    grows = frame[(frame.kind == "alloc") & (frame.tag == "kv_append")]
    assert (grows.bytes_written == spec.decode_batch * kv_token).all()


@pytest.mark.parametrize("bp", [2, 3, 4, 5])
def test_small_train_flops_equal_eq_3_9(bp):
    spec = small_spec(mode="train", bp=bp, h_cycles=2, l_cycles=3)
    frame = frame_of(spec)
    tokens = spec.tokens_per_step
    apps = spec.applications
    expected = 2 * p_blk(spec) * spec.module_layers * (apps + 2 * bp) * tokens
    expected += 6 * spec.d_model * spec.vocab_size * tokens
    assert weight_gemm_flops(frame) == expected
    bwd = frame[frame.phase == "bwd"]
    back_apps = sorted(set(bwd.layer[bwd.layer >= 0] // spec.module_layers))
    assert back_apps == spec.grad_applications()
    n_h = min(spec.h_cycles, bp - 1)
    assert sum(spec.module_of(a) == "H" for a in back_apps) == n_h
    assert len(back_apps) == bp


def test_preset_decode_kv_bytes_and_forward_flops_per_token():
    spec = hrm.load_spec("hrm-text-1b", {"mode": "decode", "decode_tokens": 2, "context_tokens": 1024})
    frame = frame_of(spec)
    attn = frame[frame.kind.str.startswith("attention")]
    first = attn[attn.step == 0]
    assert len(first) == 128                                  # block applications per token
    assert first.bytes_read2.sum() / first.n.iloc[0] == 786_432
    grows = frame[(frame.kind == "alloc") & (frame.tag == "kv_append")]
    assert (grows.bytes_written == 786_432).all()
    gemm_per_token = weight_gemm_flops(frame) / spec.decode_tokens
    assert gemm_per_token / 1e9 == pytest.approx(8.32, rel=0.01)
    attn_per_app = first.flops.sum() / 128
    assert attn_per_app / 1e6 == pytest.approx(6.3, rel=0.01)   # n_kv = 1025


@pytest.mark.parametrize("bp, gflop", [(2, 13.2), (5, 19.1)])
def test_preset_training_flops_per_token(bp, gflop):
    spec = hrm.load_spec("hrm-text-1b", {"mode": "train", "bp": bp})
    frame = frame_of(spec)
    assert weight_gemm_flops(frame) / spec.tokens_per_step / 1e9 == pytest.approx(gflop, rel=0.01)


def test_preset_parameter_count():
    spec = hrm.load_spec("hrm-text-1b", {})
    assert spec.block_params == pytest.approx(30.67e6, rel=1e-3)
    assert spec.num_params / 1e9 == pytest.approx(1.448, rel=1e-3)


def test_generation_is_deterministic_for_a_seed():
    spec = small_spec(mode="train")
    pd.testing.assert_frame_equal(frame_of(spec, 1), frame_of(spec, 1))


@pytest.mark.parametrize("params, name", [
    ({"bp": "1"}, "bp"),
    ({"bp": "9"}, "bp"),
    ({"head_dim": "100"}, "head_dim"),
    ({"module_layers": "0"}, "module_layers"),
    ({"prefix_tokens": "4096"}, "prefix_tokens"),
    ({"mode": "infer"}, "mode"),
])
def test_bad_parameters_fail_naming_the_parameter(params, name):
    with pytest.raises(ConfigError, match=rf"hrm\.{name}: "):
        hrm.load_spec("hrm-text-1b", params)


def test_every_kv_slot_is_quantized_like_a_layer_of_its_own():
    spec = small_spec(mode="decode", context_tokens=20, decode_tokens=12, kv_dtype="int2",
                      kv_quant="oscar", kv_group_size=4, kv_residual_tokens=8)
    fmt, frame = spec.kv_format, frame_of(spec)
    slots = spec.applications * spec.module_layers
    deq = frame[frame.kind == "dequantize"]
    assert deq.layer.nunique() == slots
    for s, rows in deq.groupby("step"):
        packed = fmt.quantized_tokens(spec.context_tokens + s)
        assert rows.bytes_read.sum() == slots * fmt.packed_bytes(packed, spec.num_heads, spec.head_dim)
    flushes = frame[frame.kind == "quantize"].groupby("step").size()
    assert set(flushes) == {slots} and len(flushes) == 3           # 12 tokens, groups of 4
    held = frame[(frame.kind == "alloc") & (frame.dst == "kv_cache")].bytes_written.iloc[0]
    assert held == slots * fmt.cache_bytes(spec.context_tokens, spec.num_heads, spec.head_dim)
    with pytest.raises(ConfigError, match=r"hrm\.kv_dtype: train keeps K and V"):
        small_spec(mode="train", kv_dtype="int4")
