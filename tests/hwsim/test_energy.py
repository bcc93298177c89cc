"""Energy: totals equal action counts x constants; references carry and scale their source."""

from __future__ import annotations

import pytest

import hwsim
from hwsim.cli.main import main
from hwsim.energy.library import LIBRARY

from ..conftest import ARCH

ROWS = [
    {"op_id": 0, "kind": "gemm", "m": 64, "n": 64, "k": 64, "src": "weights", "bytes_read": 8192,
     "src2": "act", "bytes_read2": 8192, "dst": "act", "bytes_written": 8192},
    {"op_id": 1, "kind": "vector", "flops": 5000, "elements": 100, "src": "act", "bytes_read": 4096, "deps": "0"},
    {"op_id": 2, "stream": "copy", "kind": "transfer", "src": "kv_bank", "dst": "kv_window", "bytes_read": 10000},
]


def test_energy_total_is_the_sum_of_action_counts_times_constants(tiny):
    result = hwsim.simulate(tiny, hwsim.Trace.from_ops(ROWS))
    # tiny: tensor 0.5 pJ/FLOP, vector 1 pJ/FLOP, hbm 4, dram 20, link 5 pJ/bit, no leakage.
    flops_tensor, flops_vector = 2 * 64**3, 5000
    hbm_bits = (8192 * 3 + 4096 + 10000) * 8
    expected = {"tensor": flops_tensor * 0.5, "vector": flops_vector * 1.0, "hbm": hbm_bits * 4,
                "dram": 10000 * 8 * 20, "link": 10000 * 8 * 5}
    energy = result.summary["energy"]
    assert energy["by_component_pj"] == pytest.approx(expected)
    assert energy["total_pj"] == pytest.approx(sum(expected.values()))
    assert result.records["energy_pj"].sum() == pytest.approx(sum(expected.values()))
    assert sum(energy["by_kind_pj"].values()) == pytest.approx(energy["dynamic_pj"])


def test_leakage_is_power_times_run_time(tiny, tmp_path):
    machine = hwsim.load_arch(ARCH / "tiny.yaml", overrides={"components.vector.leakage_power": "2 W"})
    result = hwsim.simulate(machine, hwsim.Trace.from_ops(ROWS))
    energy = result.summary["energy"]
    assert energy["leakage_pj"] == pytest.approx(2.0 * result.summary["seconds"] * 1e12)
    assert energy["total_pj"] == pytest.approx(energy["dynamic_pj"] + energy["leakage_pj"])


def test_reference_scales_by_node_and_voltage_squared(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text("name: m\nclock: 1 GHz\ncomponents:\n"
                    "  hbm: {kind: memory_tier, capacity: 1 GiB, bandwidth: 1 TB/s, energy_per_bit: {ref: hbm2_device_bit}}\n"
                    "  vec: {kind: vector_unit, lanes: 4, memory: hbm,\n"
                    "        energy_per_flop: {ref: horowitz_fp16_flop, node: 5 nm, voltage: 0.75}}\n")
    machine = hwsim.load_arch(path)
    vec = machine.component("vec").config
    assert vec.energy_per_flop == pytest.approx(0.75 * (5 / 45) * (0.75 / 0.9) ** 2)
    assert "ISSCC 2014" in vec.provenance["energy_per_flop"]
    assert "scaled to 5 nm, 0.75 V" in vec.provenance["energy_per_flop"]
    hbm = machine.component("hbm").config
    assert hbm.energy_per_bit == LIBRARY["hbm2_device_bit"].value
    assert "MICRO 2017" in hbm.provenance["energy_per_bit"]


def test_unknown_reference_suggests_the_closest(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text("name: m\nclock: 1 GHz\ncomponents:\n"
                    "  hbm: {kind: memory_tier, capacity: 1 GiB, bandwidth: 1 TB/s, energy_per_bit: {ref: hbm2_device}}\n")
    with pytest.raises(hwsim.ConfigError, match=r"components.hbm.energy_per_bit: unknown energy constant 'hbm2_device' \(did you mean 'hbm2_device_bit'\?\)"):
        hwsim.load_arch(path)


def test_device_figures_cannot_be_node_scaled(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text("name: m\nclock: 1 GHz\ncomponents:\n  hbm: {kind: memory_tier, capacity: 1 GiB, "
                    "bandwidth: 1 TB/s, energy_per_bit: {ref: hbm2_device_bit, node: 5 nm}}\n")
    with pytest.raises(hwsim.ConfigError, match="cannot be scaled by node"):
        hwsim.load_arch(path)


@pytest.mark.parametrize("path", sorted(ARCH.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_shipped_energy_constant_names_its_source(path, capsys):
    assert main(["energy", "--arch", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()[2:]
    assert lines, "no constants listed"
    for line in lines:
        assert "(no source given)" not in line, line


def test_energy_library_lists_node_and_source(capsys):
    assert main(["energy", "--library"]) == 0
    out = capsys.readouterr().out
    assert "horowitz_fp16_flop" in out and "45 nm" in out and "ISSCC 2014" in out
