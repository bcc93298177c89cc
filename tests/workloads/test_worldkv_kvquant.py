"""WorldKV with a quantized KV cache: packed window, bank and gathers, the dequantize read path,
and the bank's size against bf16 (what decides whether it fits in GPU memory)."""

from __future__ import annotations

import numpy as np
import pytest

import hwsim
from hwsim.errors import ConfigError
from workloads.kvquant import KVFormat
from workloads.kvquant import flops as kf
from workloads.registry import generate_trace
from workloads.worldkv.policies import plan_rollout

from ..conftest import ARCH
from .test_worldkv_generator import frame_of, small_spec

QUANT = dict(kv_dtype="int2", kv_quant="oscar", kv_group_size=8)


def packed(tokens: int, spec) -> int:
    """K,V bytes of one stored run of ``tokens`` tokens in one layer."""
    return KVFormat(spec.kv_dtype, spec.kv_quant, spec.kv_group_size).packed_bytes(tokens, spec.num_heads, spec.head_dim)


@pytest.mark.parametrize("keep_ratio", [0.5, 1.0])
def test_bank_stores_and_gathers_move_the_packed_bytes(keep_ratio):
    spec = small_spec(keep_ratio=keep_ratio, **QUANT)
    frame = frame_of(spec)
    n_store = spec.store_tokens
    stores = frame[frame.tag == "bank_store"]
    assert set(stores.bytes_read) == {packed(n_store, spec)}
    plan = plan_rollout(spec, np.random.default_rng(0))
    gathers = frame[frame.tag == "retrieve_gather"]
    for j, rows in gathers.groupby("step"):
        assert set(rows.bytes_read) == {len(plan.selected[j]) * packed(n_store, spec)}
    banked = frame[(frame.kind == "alloc") & (frame.dst == "kv_bank")].bytes_written.sum()
    assert banked == spec.num_chunks * spec.num_layers * packed(n_store, spec)
    bf16 = frame_of(small_spec(keep_ratio=keep_ratio))
    assert bf16[(bf16.kind == "alloc") & (bf16.dst == "kv_bank")].bytes_written.sum() > 2 * banked


def test_every_pass_dequantizes_the_stored_window_and_attends_over_the_current_chunk_in_bf16():
    spec = small_spec(**QUANT)
    frame, plan = frame_of(spec), plan_rollout(spec, np.random.default_rng(0))
    fs, c, L = spec.tokens_per_frame, spec.chunk_frames, spec.num_layers
    attn = frame[frame.tag == "self_attn"]
    assert set(attn.bytes_read2) == {c * fs * spec.kv_bytes_per_token}
    deq = frame[frame.kind == "dequantize"]
    passes = spec.denoise_passes + 1
    for j, rows in deq.groupby("step"):
        retrieved = len(plan.selected[j])
        ring_frames = (int(plan.window_tokens[j]) - retrieved * spec.store_tokens) // fs - c
        per_layer = (ring_frames // c) * packed(c * fs, spec) + retrieved * packed(spec.store_tokens, spec)
        assert len(rows) == passes * L
        assert set(rows.bytes_read) == {per_layer}
        assert set(rows.elements) == {2 * (int(plan.window_tokens[j]) - c * fs) * spec.d_model}
    assert 0 not in set(deq.step)                       # chunk 0 attends over itself only
    per_token = kf.dequantize_flops(spec.kv_format, 1, spec.num_heads, spec.head_dim)
    assert (deq.flops == deq.elements // (2 * spec.d_model) * per_token).all()


def test_each_chunk_is_quantized_once_in_the_window_and_once_for_the_bank():
    spec = small_spec(**QUANT)
    frame = frame_of(spec)
    L, fmt = spec.num_layers, spec.kv_format
    window = frame[frame.tag == "kv_window_quantize"]
    bank = frame[frame.tag == "kv_bank_quantize"]
    assert len(window) == len(bank) == spec.num_chunks * L
    chunk = spec.chunk_frames * spec.tokens_per_frame
    assert set(window.bytes_written) == {packed(chunk, spec)}
    assert set(window.flops) == {kf.quantize_flops(fmt, chunk, spec.num_heads, spec.head_dim)}
    assert set(bank.bytes_written) == {packed(spec.store_tokens, spec)}
    rotations = frame[frame.kind == "rotate"]
    assert set(rotations.tag) == {"kv_window_rotate", "kv_bank_rotate", "q_rotate", "o_rotate"}


@pytest.mark.parametrize("policy", ["full", "sliding", "worldkv"])
def test_window_occupancy_balances_and_shrinks_with_the_format(policy):
    sizes = {}
    for kv_dtype in ("bf16", "int4", "int2"):
        frame = frame_of(small_spec(policy=policy, kv_dtype=kv_dtype, kv_quant="plain", kv_group_size=8))
        window = frame[((frame.dst == "kv_window") & (frame.kind == "alloc"))
                       | ((frame.src == "kv_window") & (frame.kind == "free"))]
        level = np.where(window.kind == "alloc", window.bytes_written, -window.bytes_read).cumsum()
        assert level[-1] == 0
        sizes[kv_dtype] = level.max()
    assert sizes["bf16"] > sizes["int4"] > sizes["int2"]


def test_quantized_rollouts_replay_on_h200():
    trace = generate_trace(
        "worldkv", "lingbot-world-fast",
        {"num_layers": "2", "d_model": "512", "num_heads": "4", "head_dim": "128", "d_ff": "1024",
         "tokens_per_frame": "64", "sink_frames": "1", "recent_frames": "3", "retrieved_chunks": "2",
         "rollout_frames": "57", "kv_dtype": "int2", "kv_quant": "oscar"}, seed=0)
    result = hwsim.simulate(hwsim.load_arch(ARCH / "h200.yaml"), trace)
    kinds = set(result.records.kind)
    assert {"quantize", "dequantize", "rotate"} <= kinds
    assert set(result.records[result.records.kind == "dequantize"].component) == {"vector"}


def test_a_head_dim_oscar_cannot_rotate_is_an_error():
    with pytest.raises(ConfigError, match=r"worldkv\.kv_quant: oscar rotates each head"):
        small_spec(num_heads=4, head_dim=12, d_model=48, kv_dtype="int2", kv_quant="oscar")
