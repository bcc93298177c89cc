"""Parallel traces: the work per device adds up to the single-device step, the collectives are
the ones each scheme needs, and sharding makes a 7B training step fit per device."""

from __future__ import annotations

import pytest

import hwsim
from hwsim.errors import ConfigError
from workloads.common.parallel import per_device_peak
from workloads.registry import generate_trace

TRAIN = {"mode": "train", "seq_len": "1024", "tokens_per_step": "8192", "num_layers": "2"}
COMPUTE = ("gemm", "attention", "attention_bwd", "vector", "elementwise", "gather")


def frame(params, family="transformer", preset="llama-2-7b"):
    return generate_trace(family, preset, params).to_frame()


def flops(f):
    return int(f[f["kind"].isin(COMPUTE)]["flops"].sum())


@pytest.mark.parametrize("extra", [{"dp": "8"}, {"fsdp": "8"}, {"tp": "8"}, {"sp": "4"}, {"tp": "2", "fsdp": "4"}])
def test_the_devices_flops_add_up_to_the_single_device_step(extra):
    single, parallel = frame(TRAIN), frame({**TRAIN, **extra})
    devices = 1
    for key in ("dp", "fsdp", "tp", "sp"):
        devices *= int(extra.get(key, 1))
    layers = single["layer"] >= 0
    # Every layer's work splits exactly; outside the layers, tensor parallelism keeps the final
    # norm and the loss whole on each device (replicated), and data replicas step every weight.
    assert flops(parallel[parallel["layer"] >= 0]) * devices == flops(single[layers])
    if "tp" not in extra:
        optimizer = int(single[single["tag"] == "adamw"]["flops"].sum())
        replicated = optimizer if "dp" in extra or "sp" in extra else 0
        assert flops(parallel) * devices == flops(single) + replicated * (devices - 1)


def layer_weight_bytes():
    d, d_ff = 4096, 11008          # llama-2-7b: q, k, v, o and gate, up, down, bf16
    return 2 * (4 * d * d + 3 * d * d_ff)


def test_dp_all_reduces_each_layers_gradients_on_its_own_stream():
    f = frame({**TRAIN, "dp": "8"})
    ar = f[f["kind"] == "all_reduce"]
    per_layer = ar[ar["layer"] >= 0]
    assert sorted(per_layer["layer"]) == [0, 1]
    assert (per_layer["bytes_read"] == layer_weight_bytes()).all()
    assert set(ar["stream"]) == {"dp_comm"} and set(ar["device"]) == {"0-7"}
    assert len(f) <= len(frame(TRAIN)) + 4    # a data-parallel step is not N times longer


def test_fsdp_gathers_weights_twice_and_reduce_scatters_gradients_once_per_layer():
    f = frame({**TRAIN, "fsdp": "8"})
    gathers, scatters = f[f["kind"] == "all_gather"], f[(f["kind"] == "reduce_scatter") & (f["layer"] >= 0)]
    assert sorted(gathers["layer"]) == [0, 0, 1, 1]
    assert (gathers["bytes_read"] == layer_weight_bytes() // 8).all()   # each device's shard
    assert (scatters["bytes_read"] == layer_weight_bytes()).all()
    assert set(gathers["stream"]) == {"fsdp_comm"}


def test_tp_all_reduces_twice_per_layer_forward_and_backward():
    f = frame({**TRAIN, "tp": "4"})
    ar = f[f["kind"] == "all_reduce"]
    assert len(ar[ar["phase"] == "fwd"]) == 2 * 2 and len(ar[ar["phase"] == "bwd"]) == 2 * 2
    assert (ar["bytes_read"] == 8192 * 4096 * 2).all() and set(ar["device"]) == {"0-3"}


def test_ulysses_and_ring_attention():
    f = frame({**TRAIN, "sp": "4"})
    attention = f[f["kind"].isin(["attention", "attention_bwd"])]
    assert (f["kind"] == "all_to_all").sum() == 2 * len(attention)
    ring = frame({**TRAIN, "sp": "4", "sp_mode": "ring"})
    assert ring["kind"].isin(["attention", "attention_bwd"]).sum() == 4 * len(attention)
    assert (ring["kind"] == "send").sum() == 2 * 3 * len(attention)


def test_a_7b_training_step_overflows_one_gpu_and_fits_each_of_eight_once_sharded():
    params = {"mode": "train", "seq_len": "2048", "tokens_per_step": "16384"}
    single = generate_trace("transformer", "llama-2-7b", params)
    assert per_device_peak(single) > 80e9
    with pytest.raises(hwsim.HwsimError, match="does not fit|overflow"):
        hwsim.simulate(hwsim.load_arch("h100-sxm"), single)
    sharded = generate_trace("transformer", "llama-2-7b", {**params, "fsdp": "8"})
    assert per_device_peak(sharded) < 20e9
    result = hwsim.simulate(hwsim.load_arch("hgx-h100"), sharded)
    assert result.summary["overflow"] == []


@pytest.mark.parametrize(("family", "preset", "params"), [
    ("deltanet2", "gdn2-1.3b", {"mode": "train", "seq_len": "2048", "tokens_per_step": "8192", "dp": "8"}),
    ("hrm", "hrm-text-1b", {"mode": "train", "fsdp": "8"}),
    ("transformer", "llama-2-70b", {"mode": "decode", "decode_tokens": "4", "tp": "8"}),
])
def test_every_language_family_runs_parallel_on_a_node(family, preset, params):
    trace = generate_trace(family, preset, params)
    summary = hwsim.simulate(hwsim.load_arch("hgx-h100"), trace, allow_overflow=True).summary
    assert summary["seconds"] > 0 and summary["links"]["nvlink"]["bytes"] > 0


def test_the_worldkv_4xh200_preset_is_the_released_ulysses_run():
    trace = generate_trace("worldkv", "lingbot-world-fast-4xh200", {"rollout_frames": "117"})
    f = trace.to_frame()
    assert trace.meta_dict()["params"]["sp"] == 4
    assert (f["kind"] == "all_to_all").sum() == 2 * f["kind"].isin(["attention", "attention_bwd"]).sum()
    self_attn = f[(f["kind"] == "attention") & (f["tag"] == "self_attn")]
    assert len(self_attn) and set(f[f["kind"] == "all_to_all"]["device"]) == {"0-3"}
    with pytest.raises(hwsim.HwsimError, match="names device 3"):
        hwsim.simulate(hwsim.load_arch("gh200"), trace)   # needs 4 devices


@pytest.mark.parametrize(("params", "message"), [
    ({"dp": "2", "fsdp": "2"}, "dp and fsdp"), ({"tp": "0"}, "tp: must be >= 1"),
    ({"sp_mode": "star"}, "sp_mode: expected ulysses or ring"), ({"dp": "x"}, "dp: expected a whole number"),
])
def test_bad_parallel_parameters_are_one_error(params, message):
    with pytest.raises(ConfigError, match=message):
        generate_trace("transformer", "llama-2-7b", params)
