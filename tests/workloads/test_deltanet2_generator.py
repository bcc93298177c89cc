"""Gated DeltaNet-2 / KDA / GDN trace generator: closed-form counts (WORKLOADS §2.1–2.5),
decode state traffic, chunkwise pipeline, training throughput scaling and parameter errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hwsim.errors import ConfigError
from workloads import deltanet2, transformer
from workloads.deltanet2.spec import DeltaNet2Spec

CHUNK_TAGS = ("chunk_cumsum", "chunk_intra", "chunk_solve", "chunk_wy", "chunk_state", "chunk_output")


def small_spec(**overrides) -> DeltaNet2Spec:
    base = dict(variant="gdn2", d_model=64, num_blocks=2, num_heads=2, head_k_dim=8, head_v_dim=16,
                d_ff=96, vocab_size=100, conv_kernel=4, gate_rank=8, chunk_size=4, seq_len=16,
                tokens_per_step=32, swa_window=8, swa_heads=4, swa_head_dim=16,
                context_tokens=5, decode_tokens=6, decode_batch=2, mode="prefill")
    base.update(overrides)
    return DeltaNet2Spec(**base)


def frame_of(spec: DeltaNet2Spec, seed: int = 0) -> pd.DataFrame:
    return deltanet2.generate(spec, np.random.default_rng(seed), seed=seed).to_frame()


def chunk_flops(C: int, K: int, V: int) -> int:
    """Eq. 2.19 per chunk per head, triangular solve counted as (C^3 - C)/3."""
    return (6 * C * K * V + 6 * C * C * K + 4 * C * C * V + (C ** 3 - C) // 3
            + 10 * C * K + 3 * C * V + 2 * K * V)


def recurrent_flops(K: int, V: int) -> int:
    """Token-serial steps 1-4 of §2.2 per token per head (7 K V plus the exact element-wise count)."""
    return 7 * K * V + 3 * K + 2 * V


def mixer_gemm_flops_per_token(s: DeltaNet2Spec) -> int:
    """Projections q,k,v,o (+ b, w for GDN-2; beta for KDA/GDN), low-rank decay, output gate."""
    D, r, H, kw, vw = s.d_model, s.gate_rank, s.num_heads, s.key_width, s.value_width
    flops = 2 * D * (2 * kw + vw) + 2 * vw * D + 2 * (D * r + r * vw)
    flops += 2 * D * (kw + vw) if s.variant == "gdn2" else 2 * D * H
    flops += 2 * D * H if s.variant == "gdn" else 2 * (D * r + r * kw)
    return flops


def mlp_gemm_flops_per_token(s: DeltaNet2Spec) -> int:
    return 6 * s.d_model * s.d_ff


@pytest.mark.parametrize("variant", ["gdn2", "kda", "gdn"])
def test_small_prefill_gemm_and_core_flops_equal_closed_form(variant):
    spec = small_spec(variant=variant)
    frame = frame_of(spec)
    tokens, seqs = spec.tokens_per_step, spec.num_seqs
    gemms = frame[(frame.kind == "gemm") & (frame.src == "weights")]
    expected = spec.num_blocks * tokens * (mixer_gemm_flops_per_token(spec) + mlp_gemm_flops_per_token(spec))
    expected += seqs * 2 * spec.d_model * spec.vocab_size          # head on the last token
    assert gemms.flops.sum() == expected
    core = frame[frame.tag.isin(CHUNK_TAGS)]
    n_chunks = seqs * spec.num_heads * spec.seq_len // spec.chunk_size
    per_layer = n_chunks * chunk_flops(spec.chunk_size, spec.head_k_dim, spec.head_v_dim)
    assert core.groupby("layer").flops.sum().tolist() == [per_layer] * spec.num_blocks
    assert list(core[core.layer == 0].tag) == list(CHUNK_TAGS)
    state = core[core.tag == "chunk_state"]
    assert (state.kind == "state_update").all() and (state.elements == spec.seq_len // spec.chunk_size).all()


def test_a_partial_last_chunk_gets_its_own_kernels_at_its_own_length():
    spec = small_spec(seq_len=18, tokens_per_step=36)          # 4 chunks of 4 and one of 2
    frame = frame_of(spec)
    core = frame[frame.tag.isin(CHUNK_TAGS) & (frame.layer == 0)]
    assert list(core.tag) == list(CHUNK_TAGS) * 2
    full, tail = core.iloc[:6], core.iloc[6:]
    assert (full[full.kind == "gemm"].m == 4).all() and (tail[tail.kind == "gemm"].m == 2).all()
    assert full[full.tag == "chunk_state"].elements.item() == 4 and tail[tail.tag == "chunk_state"].elements.item() == 1
    K, V, H = spec.head_k_dim, spec.head_v_dim, spec.num_heads
    assert full.flops.sum() == spec.num_seqs * H * 4 * chunk_flops(4, K, V)
    assert tail.flops.sum() == spec.num_seqs * H * chunk_flops(2, K, V)


def test_gate_projections_per_variant():
    tags = {v: set(frame_of(small_spec(variant=v)).tag) for v in ("gdn2", "kda", "gdn")}
    assert {"erase_proj", "write_proj", "decay_down", "decay_up"} <= tags["gdn2"]
    assert "beta_proj" not in tags["gdn2"]
    assert {"beta_proj", "decay_down", "decay_up"} <= tags["kda"]
    assert not {"erase_proj", "write_proj"} & tags["kda"]
    assert {"beta_proj", "decay_proj"} <= tags["gdn"]
    frame = frame_of(small_spec(variant="kda"))
    beta = frame[frame.tag == "beta_proj"]
    assert (beta.n == 2).all() and (beta.k == 64).all()             # D -> H


def test_decode_state_traffic_is_two_full_states_per_token_per_head():
    spec = small_spec(mode="decode")
    frame = frame_of(spec)
    updates = frame[frame.kind == "state_update"]
    K, V, H, B = spec.head_k_dim, spec.head_v_dim, spec.num_heads, spec.decode_batch
    assert len(updates) == spec.decode_tokens * spec.num_blocks
    per_head = (updates.bytes_read + updates.bytes_written) / (H * B)
    assert (per_head == 2 * K * V * 4).all()
    assert set(updates.src) == {"state"} and set(updates.dst) == {"state"}
    assert (updates.flops == B * H * recurrent_flops(K, V)).all()
    assert updates.step.tolist() == sorted(updates.step.tolist())


def test_small_decode_gemm_flops_equal_closed_form():
    spec = small_spec(mode="decode")
    frame = frame_of(spec)
    gemms = frame[(frame.kind == "gemm") & (frame.src == "weights")]
    per_token = spec.num_blocks * (mixer_gemm_flops_per_token(spec) + mlp_gemm_flops_per_token(spec))
    per_token += 2 * spec.d_model * spec.vocab_size
    assert gemms.flops.sum() == spec.decode_tokens * spec.decode_batch * per_token


def test_hybrid_decode_attends_over_the_sliding_window_and_stops_growing_the_cache():
    spec = small_spec(mode="decode", hybrid=True, context_tokens=5, decode_tokens=6, swa_window=8)
    frame = frame_of(spec)
    attn = frame[frame.kind.str.startswith("attention")]
    assert set(attn.layer) == {1}
    assert attn.n.tolist() == [min(5 + i + 1, 8) for i in range(6)]
    assert (attn.bytes_read2 == attn.n * 2 * spec.swa_width * 2 * spec.decode_batch).all()
    grows = frame[(frame.kind == "alloc") & (frame.tag == "kv_append")]
    assert grows.step.tolist() == [0, 1, 2]                          # 5, 6, 7 cached -> 8 = window
    allocs = frame[frame.kind == "alloc"].groupby("dst").bytes_written.sum()
    frees = frame[frame.kind == "free"].groupby("src").bytes_read.sum()
    assert allocs.to_dict() == frees.to_dict()


def test_train_backward_doubles_weight_gemms_and_scales_the_chunk_kernels():
    spec = small_spec(mode="train", chunk_bwd_factor=2.5)
    frame = frame_of(spec)
    fwd, bwd = frame[frame.phase == "fwd"], frame[frame.phase == "bwd"]
    weight = lambda f: f[(f.kind == "gemm") & (f.src == "weights")].flops.sum()  # noqa: E731
    fwd_all = weight(fwd)
    assert weight(bwd) + bwd[bwd.tag.str.endswith("_wgrad")].flops.sum() == 2 * fwd_all
    fwd_core = fwd[fwd.tag.isin(CHUNK_TAGS)].flops.sum()
    bwd_core = bwd[bwd.tag.isin([t + "_bwd" for t in CHUNK_TAGS])].flops.sum()
    assert bwd_core == pytest.approx(2.5 * fwd_core, rel=1e-9)
    wgrads = bwd[bwd.tag.str.endswith("_wgrad")]
    assert set(wgrads.dst) == {"weights"}
    assert bwd.layer.iloc[5] == spec.num_blocks - 1                  # backward runs top-down
    assert (frame.tag == "adamw").sum() == 1


# --- presets (within 1% of WORKLOADS §2.4-2.6) ---------------------------------------------

def test_preset_parameter_counts_match_the_released_configs():
    assert deltanet2.load_spec("gdn2-1.3b", {}).non_embedding_params == 1_302_638_112
    assert deltanet2.load_spec("gdn2-1.3b-hybrid", {}).non_embedding_params == 1_300_314_384


def test_preset_per_token_layer_counts():
    spec = deltanet2.load_spec("gdn2-1.3b", {"mode": "prefill"})
    frame = frame_of(spec)
    tokens = spec.tokens_per_step
    layer0 = frame[frame.layer == 0]
    core = layer0[layer0.tag.isin(CHUNK_TAGS)].flops.sum() / tokens
    assert core / 1e6 == pytest.approx(2.94, rel=0.01)
    mixer = layer0[~layer0.tag.str.startswith("mlp") & layer0.kind.isin(["gemm", "state_update"])]
    assert (mixer.flops.sum() / tokens + layer0[layer0.tag == "conv"].flops.sum() / tokens) / 1e6 \
        == pytest.approx(61.8, rel=0.01)
    mlp = layer0[layer0.tag.isin(["mlp_gate_up", "mlp_down"])].flops.sum() / tokens
    assert mlp / 1e6 == pytest.approx(85.8, rel=0.01)


def test_gdn2_gates_cost_about_18_9_mflop_per_token_over_kda():
    per_token = {}
    for variant in ("gdn2", "kda"):
        spec = deltanet2.load_spec("gdn2-1.3b", {"variant": variant})
        frame = frame_of(spec)
        per_token[variant] = frame[frame.layer == 0].query("kind == 'gemm' and src == 'weights'").flops.sum() / spec.tokens_per_step
    assert (per_token["gdn2"] - per_token["kda"]) / 1e6 == pytest.approx(18.9, rel=0.01)


def test_preset_decode_state_is_one_mib_per_layer_per_token():
    spec = deltanet2.load_spec("gdn2-1.3b", {"mode": "decode", "decode_tokens": 4})
    frame = frame_of(spec)
    updates = frame[frame.kind == "state_update"]
    assert (updates.bytes_read == 2 ** 20).all() and (updates.bytes_written == 2 ** 20).all()
    state = frame[(frame.kind == "alloc") & (frame.dst == "state")].bytes_written.sum()
    assert state >= 18 * 2 ** 20


def train_flops_per_token(module, preset: str, seq_len: int) -> float:
    spec = module.load_spec(preset, {"mode": "train", "seq_len": seq_len, "tokens_per_step": 16384})
    frame = module.generate(spec, np.random.default_rng(0)).to_frame()
    return frame.flops.sum() / spec.tokens_per_step


def test_hybrid_training_cost_is_nearly_flat_from_2k_to_16k_unlike_a_transformer():
    """Paper Fig. 2: 38.0 -> 36.1 Kt/s (x1.053) at a fixed 16K tokens per step."""
    gdn_2k = train_flops_per_token(deltanet2, "gdn2-1.3b-hybrid", 2048)
    gdn_16k = train_flops_per_token(deltanet2, "gdn2-1.3b-hybrid", 16384)
    assert 1.0 < gdn_16k / gdn_2k < 1.08
    tf_2k = train_flops_per_token(transformer, "transformer-1.3b", 2048)
    tf_16k = train_flops_per_token(transformer, "transformer-1.3b", 16384)
    assert tf_16k / tf_2k > 1.3
    mfu = 38_000 * gdn_2k / 989.4e12                   # H100 dense bf16 peak
    assert 0.2 < mfu < 0.5                             # WORKLOADS §2.6 sanity check: about 30%


def test_generation_is_deterministic_for_a_seed():
    spec = small_spec(mode="train", hybrid=True)
    pd.testing.assert_frame_equal(frame_of(spec, 3), frame_of(spec, 3))


@pytest.mark.parametrize("params, name", [
    ({"seq_len": "0"}, "seq_len"),
    ({"tokens_per_step": "3000"}, "tokens_per_step"),
    ({"num_heads": "-1"}, "num_heads"),
    ({"variant": "gdn3"}, "variant"),
    ({"num_blocks": "17"}, "num_blocks"),
    ({"chunk_bwd_factor": "0.5"}, "chunk_bwd_factor"),
])
def test_bad_parameters_fail_naming_the_parameter(params, name):
    with pytest.raises(ConfigError, match=rf"deltanet2\.{name}: "):
        deltanet2.load_spec("gdn2-1.3b-hybrid", params)
