"""Every machine runs a small trace of every workload family; tiered-memory designs move
WorldKV's retrieval cost with the link that carries it."""

from __future__ import annotations

import functools

import pytest

import hwsim
from workloads.registry import generate_trace

from ..conftest import ARCH

SMALL = {
    ("worldkv", "lingbot-world-fast"): {"num_layers": "2", "d_model": "256", "num_heads": "2", "head_dim": "128",
                                        "d_ff": "512", "tokens_per_frame": "64", "rollout_frames": "144"},
    ("worldkv", "matrix-game-2"): {"num_layers": "2", "tokens_per_frame": "32", "rollout_frames": "120"},
    ("deltanet2", "gdn2-1.3b"): {"mode": "decode", "num_blocks": "2", "context_tokens": "256", "decode_tokens": "4"},
    ("deltanet2", "gdn2-1.3b-hybrid"): {"mode": "prefill", "num_blocks": "2", "seq_len": "512",
                                        "tokens_per_step": "1024"},
    ("hrm", "hrm-text-1b"): {"mode": "decode", "module_layers": "2", "context_tokens": "128", "decode_tokens": "2"},
    ("transformer", "transformer-1.3b"): {"mode": "train", "num_layers": "2", "seq_len": "256",
                                          "tokens_per_step": "512"},
    ("transformer", "llama-3.1-8b"): {"mode": "decode", "num_layers": "2", "vocab_size": "1024",
                                      "context_tokens": "600", "decode_tokens": "40", "kv_dtype": "int2",
                                      "kv_quant": "oscar"},
}


@functools.cache
def small_trace(family: str, preset: str) -> hwsim.Trace:
    return generate_trace(family, preset, SMALL[(family, preset)], seed=0)


@pytest.mark.parametrize(("family", "preset"), sorted(SMALL), ids=lambda v: str(v))
@pytest.mark.parametrize("machine", sorted(ARCH.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_machine_runs_every_family(machine, family, preset):
    trace = small_trace(family, preset)
    result = hwsim.simulate(hwsim.load_arch(machine), trace, allow_overflow=True)
    summary = result.summary
    assert summary["total_cycles"] > 0 and summary["throughput"] > 0
    assert summary["work_unit"] == trace.meta.work_unit
    assert summary["energy"]["total_pj"] > 0


def worldkv_on(arch: str, overrides=None) -> dict:
    trace = small_trace("worldkv", "lingbot-world-fast")
    return hwsim.simulate(hwsim.load_arch(ARCH / arch, overrides=overrides), trace).summary


def test_worldkv_retrieval_cost_moves_with_the_bank_link():
    in_hbm = worldkv_on("h200.yaml", {"placement.kv_bank": "hbm"})
    over_pcie = worldkv_on("h200.yaml")
    over_c2c = worldkv_on("gh200.yaml")
    assert in_hbm["links"]["pcie"]["bytes"] == 0
    moved = over_pcie["links"]["pcie"]["bytes"]
    assert moved > 0 and over_c2c["links"]["c2c"]["bytes"] == moved
    assert over_pcie["energy"]["by_component_pj"]["pcie"] > over_c2c["energy"]["by_component_pj"]["c2c"]
    # the copy stream overlaps compute, so the total only grows when the link is the bottleneck
    assert in_hbm["total_cycles"] <= over_c2c["total_cycles"] <= over_pcie["total_cycles"]
    pcie_busy = over_pcie["links"]["pcie"]["directions"]
    c2c_busy = over_c2c["links"]["c2c"]["directions"]
    assert sum(d["utilization"] * over_pcie["total_cycles"] for d in pcie_busy.values()) > \
        sum(d["utilization"] * over_c2c["total_cycles"] for d in c2c_busy.values())


def llama_decode(kv: dict, context: int = 131072 - 136, tokens: int = 8) -> hwsim.Trace:
    return generate_trace("transformer", "llama-3.1-8b", {"mode": "decode", "context_tokens": str(context),
                                                          "decode_tokens": str(tokens), **kv}, seed=0)


def test_int2_kv_speeds_up_long_context_decode_and_the_dequantize_unit_takes_its_ops():
    bf16, int2 = llama_decode({}), llama_decode({"kv_dtype": "int2", "kv_quant": "oscar"})
    ideal = {"components.tensor.attention_kernel": ""}     # attention bound by its bytes, no tiles

    def run(machine: str, trace: hwsim.Trace, overrides=None):
        return hwsim.simulate(hwsim.load_arch(ARCH / machine, overrides=overrides), trace)

    assert run("h200.yaml", int2, ideal).summary["total_cycles"] < 0.7 * run("h200.yaml", bf16, ideal).summary["total_cycles"]
    on_h200, on_unit = run("h200.yaml", int2), run("h200-kvquant.yaml", int2)
    assert on_unit.summary["total_cycles"] < on_h200.summary["total_cycles"]
    kinds = ["quantize", "dequantize", "rotate"]
    for result, unit in ((on_h200, "vector"), (on_unit, "dequant")):
        records = result.records
        assert set(records[records.kind.isin(kinds)].component) == {unit}
    # The same trace moves the same bytes on both machines; only where its ops run differs.
    assert on_unit.summary["tiers"]["hbm"]["bytes"] == on_h200.summary["tiers"]["hbm"]["bytes"]


def test_the_dequantize_op_overlaps_the_attention_it_feeds():
    result = hwsim.simulate(hwsim.load_arch(ARCH / "h200-kvquant.yaml"),
                            llama_decode({"kv_dtype": "int2", "kv_quant": "plain"}, context=8192, tokens=2))
    records = result.records.set_index("op_id")
    deq = records[records.kind == "dequantize"]
    attn = records[(records.kind == "attention") & records.layer.isin(deq.layer)]
    for (_, d), (_, a) in zip(deq.sort_values(["step", "layer"]).iterrows(),
                              attn.sort_values(["step", "layer"]).iterrows(), strict=True):
        assert d.start_cycle < a.end_cycle and a.start_cycle < d.end_cycle   # they run together
