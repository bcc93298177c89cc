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
    on_unit = table[table["dispatch.dequantize"] == "dequant"].set_index("trace")
    on_vector = table[table["dispatch.dequantize"] == "vector"].set_index("trace")
    tokens_per_s = on_unit["throughput"]
    assert tokens_per_s["int2-oscar"] / tokens_per_s["bf16"] == pytest.approx(1.6, abs=0.1)
    assert tokens_per_s["bf16"] < tokens_per_s["fp8"] < tokens_per_s["int4"] < tokens_per_s["int2-plain"]
    assert on_unit.loc["bf16-batch8", "peak_bytes_hbm"] > H200_HBM > on_unit.loc["int2-oscar-batch8", "peak_bytes_hbm"]
    assert tokens_per_s["int2-oscar-batch8"] / tokens_per_s["bf16-batch8"] == pytest.approx(3.3, abs=0.2)
    gain = on_unit["throughput"] / on_vector["throughput"]
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
