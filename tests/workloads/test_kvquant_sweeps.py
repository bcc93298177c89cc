"""The INT2-KV example sweeps say what their runs show (the numbers in their comments)."""

from __future__ import annotations

import pytest

from hwsim.sweep.runner import run_sweep
from hwsim.sweep.spec import load_sweep
from hwsim.sweep.table import read_results

from ..conftest import ROOT

H200_HBM = 141e9


def results(name: str, tmp_path):
    run_sweep(load_sweep(ROOT / "examples" / "sweeps" / name), tmp_path / "out", workers=0, quiet=True)
    table, _ = read_results(tmp_path / "out")
    assert (table["status"] == "ok").all()
    return table


def test_int2_llama_decode_example(tmp_path):
    table = results("int2-kv-llama-decode.yaml", tmp_path)
    kernel = table["components.tensor.attention_kernel"]
    on_unit = table["dispatch.dequantize"] == "dequant"
    ideal = table[on_unit & (kernel == "")].set_index("trace")
    flash2 = table[on_unit & (kernel == "flash2")].set_index("trace")
    on_vector = table[~on_unit & (kernel == "")].set_index("trace")
    tokens_per_s = ideal["throughput"]
    # Bound by the bytes it reads, decode speeds up with every bit the cache loses.
    assert tokens_per_s["int2-oscar"] / tokens_per_s["bf16"] == pytest.approx(1.7, abs=0.1)
    assert tokens_per_s["bf16"] < tokens_per_s["fp8"] < tokens_per_s["int4"] < tokens_per_s["int2-plain"]
    assert tokens_per_s["int2-oscar-batch8"] / tokens_per_s["bf16-batch8"] == pytest.approx(3.6, abs=0.2)
    # The FlashAttention-2 model pads each K/V head's 4 query rows to a 16-row tile.
    assert flash2["throughput"]["int2-oscar"] / flash2["throughput"]["bf16"] == pytest.approx(1.6, abs=0.1)
    assert flash2["throughput"]["int2-oscar-batch8"] / flash2["throughput"]["bf16-batch8"] == pytest.approx(3.1, abs=0.2)
    for view in (ideal, flash2):
        assert view.loc["bf16-batch8", "peak_bytes_hbm"] > H200_HBM > view.loc["int2-oscar-batch8", "peak_bytes_hbm"]
    gain = ideal["throughput"] / on_vector["throughput"]
    assert gain["bf16"] == 1.0 and 1.0 < gain["int2-oscar"] < 1.05


def test_int2_worldkv_bank_example(tmp_path):
    table = results("int2-kv-worldkv-bank.yaml", tmp_path)
    in_hbm = table[table["placement.kv_bank"] == "hbm"].set_index("trace")
    in_host = table[table["placement.kv_bank"] == "cpu_dram"].set_index("trace")
    assert in_hbm.loc["bf16", "peak_bytes_hbm"] > H200_HBM > in_hbm.loc["int2-oscar", "peak_bytes_hbm"]
    assert in_host.loc["bf16", "bytes_pcie"] / in_host.loc["int2-oscar", "bytes_pcie"] == pytest.approx(5.22, abs=0.05)
    assert (in_hbm["bytes_pcie"] == 0).all()
    frames = in_host["throughput"]
    assert frames["int2-oscar"] / frames["bf16"] == pytest.approx(1.0, abs=0.02)
