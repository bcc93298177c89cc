from __future__ import annotations

import pandas as pd
import pytest

import hwsim
from hwsim.cli.energy_cmd import machine_constants
from hwsim.cli.main import main
from hwsim.engine.machine import Machine
from hwsim.reports import energy

from ..conftest import ARCH
from .conftest import is_png


def test_component_energy_splits_each_summary_total_into_dynamic_and_leakage(offload_h200):
    summary, machine = offload_h200.summary, offload_h200.machine
    table = energy.component_energy(summary, machine).set_index("component")
    assert dict(table["total_pj"]) == pytest.approx(summary["energy"]["by_component_pj"])
    leakage = 60.0 * summary["seconds"] * 1e12  # tensor: 60 W for the whole run
    assert table.loc["tensor", "leakage_pj"] == pytest.approx(leakage)
    assert (table["dynamic_pj"] + table["leakage_pj"]).to_numpy() == pytest.approx(table["total_pj"].to_numpy())
    assert table["share"].sum() == pytest.approx(1.0)


def test_kind_energy_rows_sum_to_the_summary_energy_of_each_kind(offload_h200):
    records, machine = offload_h200.records, offload_h200.machine
    table = energy.kind_energy(records, machine).set_index("kind")
    assert dict(table["total_pj"]) == pytest.approx(offload_h200.summary["energy"]["by_kind_pj"])
    parts = table.drop(columns="total_pj").sum(axis=1)
    assert parts.to_numpy() == pytest.approx(table["total_pj"].to_numpy())
    assert energy.OTHER_MEMORY not in table.columns  # every memory here costs energy per bit


def test_kind_energy_charges_each_tier_its_bytes_times_energy_per_bit(offload_h200):
    records, machine = offload_h200.records, offload_h200.machine
    table = energy.kind_energy(records, machine).set_index("kind")
    transfers = records[records["kind"] == "transfer"]
    for name in ("hbm", "cpu_dram", "pcie"):
        per_bit = machine["components"][name]["energy_per_bit"]
        assert table.loc["transfer", name] == pytest.approx(transfers[f"bytes_{name}"].sum() * 8 * per_bit)
    attention = records[records["kind"] == "attention"]
    assert table.loc["attention", "tensor"] == pytest.approx(attention["energy_compute_pj"].sum())


def test_memory_energy_without_a_per_bit_constant_lands_in_other_memory(offload_h200):
    records = offload_h200.records.copy()
    records["energy_pj"] = records["energy_pj"] + 1e9  # energy no per-bit constant explains
    table = energy.kind_energy(records, offload_h200.machine).set_index("kind")
    assert table[energy.OTHER_MEMORY].to_numpy() == pytest.approx(
        records.groupby("kind", observed=True)["energy_pj"].size().reindex(table.index).to_numpy() * 1e9)
    parts = table.drop(columns="total_pj").sum(axis=1)
    assert parts.to_numpy() == pytest.approx(table["total_pj"].to_numpy())


def test_work_energy_is_the_summary_energy_per_work_unit(offload_h200):
    work = energy.work_energy(offload_h200.summary)
    assert work["work_unit"] == "frame" and work["work_units"] == 2
    assert work["energy_per_work_unit_j"] == pytest.approx(work["total_j"] / 2)


PROVENANCE_MACHINE = """
name: m
clock: 1 GHz
components:
  hbm: {kind: memory_tier, capacity: 1 GB, bandwidth: 1 TB/s, energy_per_bit: 3 pJ/bit}
  cam:
    kind: cam_unit
    entries: 1024
    key_bits: 64
    rows_per_cycle: 64
    search_energy_per_bit: 0.02 pJ
    write_energy_per_bit: 0.1 pJ
    leakage_power: 0.5 W
    memory: hbm
    source: CAM paper
    provenance: {search_energy_per_bit: measured at 28 nm}
  sram: {kind: sram, capacity: 1 MB, num_banks: 4, bank_width: 32 B, read_energy: 5 pJ, write_energy: 6 pJ}
  eng: {kind: matrix_engine, memory: hbm, peak_flops: {bf16: 1 TFLOP/s}, energy_per_flop: 0.1 pJ,
        source: datasheet}
"""


def test_provenance_lists_every_energy_and_power_constant_with_its_unit_and_source(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text(PROVENANCE_MACHINE)
    table = energy.provenance_table(Machine(hwsim.load_arch(path)).config_dict)
    rows = {(r.component, r.constant): (r.value, r.unit, r.source) for r in table.itertuples()}
    assert rows == {
        ("hbm", "energy_per_bit"): (3.0, "pJ/bit", "(no source given)"),
        ("hbm", "leakage_power"): (0.0, "W", "(no source given)"),
        ("cam", "search_energy_per_bit"): (0.02, "pJ/bit", "measured at 28 nm"),
        ("cam", "write_energy_per_bit"): (0.1, "pJ/bit", "CAM paper"),
        ("cam", "leakage_power"): (0.5, "W", "CAM paper"),
        ("sram", "read_energy"): (5.0, "pJ/access", "(no source given)"),
        ("sram", "write_energy"): (6.0, "pJ/access", "(no source given)"),
        ("sram", "leakage_power"): (0.0, "W", "(no source given)"),
        ("eng", "energy_per_flop"): (0.1, "pJ/FLOP", "datasheet"),
        ("eng", "leakage_power"): (0.0, "W", "datasheet"),
    }


def test_provenance_of_a_shipped_machine_names_a_source_for_every_constant(offload_h200):
    table = energy.provenance_table(offload_h200.machine)
    spending = {name for name, c in offload_h200.machine["facts"].items() if c["role"] != "host"}
    assert set(table["component"]) == spending
    assert (table["source"] != "").all()
    hbm = table[(table["component"] == "hbm") & (table["constant"] == "energy_per_bit")].iloc[0]
    assert (hbm["value"], hbm["unit"]) == (3.9, "pJ/bit")
    assert "O'Connor" in hbm["source"]


def test_the_report_and_hwsim_energy_print_one_table_with_one_unit_per_constant(asic_run, capsys):
    """The report's provenance table and ``hwsim energy`` read the same facts: equal rows,
    and every unit is the dimension's base unit per what the constant is counted in."""
    report = energy.provenance_table(asic_run.machine)
    printed = pd.DataFrame(machine_constants(Machine(hwsim.load_arch(ARCH / "worldkv-asic.yaml"))))
    assert printed.to_dict("records") == report.to_dict("records")
    units = dict(zip(report["component"] + "." + report["constant"], report["unit"], strict=True))
    assert {k: units[k] for k in ("mxu.energy_per_flop", "vector.energy_per_flop", "simeng.energy_per_flop",
                                  "simeng.energy_per_compare", "cam.search_energy_per_bit",
                                  "cam.write_energy_per_bit", "sram.read_energy", "dma.energy_per_bit",
                                  "mxu.leakage_power")} == {
        "mxu.energy_per_flop": "pJ/FLOP", "vector.energy_per_flop": "pJ/FLOP", "simeng.energy_per_flop": "pJ/FLOP",
        "simeng.energy_per_compare": "pJ/compare", "cam.search_energy_per_bit": "pJ/bit",
        "cam.write_energy_per_bit": "pJ/bit", "sram.read_energy": "pJ/access", "dma.energy_per_bit": "pJ/bit",
        "mxu.leakage_power": "W"}
    assert main(["energy", "--arch", str(ARCH / "worldkv-asic.yaml")]) == 0
    lines = capsys.readouterr().out.splitlines()
    cam = next(line for line in lines if line.split()[:2] == ["cam", "search_energy_per_bit"])
    assert cam.split()[3] == "pJ/bit"


def test_write_energy_writes_the_plot_and_three_tables(tmp_path, offload_h200):
    out = energy.write_energy(offload_h200.summary, offload_h200.records, offload_h200.machine, tmp_path)
    assert is_png(out["png"].read_bytes())
    for part in ("components", "kinds", "provenance"):
        csv = pd.read_csv(out[f"{part}_csv"])
        parquet = pd.read_parquet(out[f"{part}_parquet"])
        assert list(csv.columns) == list(parquet.columns) and len(csv) == len(parquet) > 0


def test_per_access_sram_energy_is_kept_as_other_memory_and_rows_still_add_up(asic_run):
    table = energy.kind_energy(asic_run.records, asic_run.machine).set_index("kind")
    assert energy.OTHER_MEMORY in table.columns and "sram" not in table.columns
    assert table.loc["transfer", "dma"] == pytest.approx(
        asic_run.records["bytes_dma"].sum() * 8 * asic_run.machine["components"]["dma"]["energy_per_bit"])
    parts = table.drop(columns="total_pj").sum(axis=1)
    assert parts.to_numpy() == pytest.approx(table["total_pj"].to_numpy())
    assert dict(table["total_pj"]) == pytest.approx(asic_run.summary["energy"]["by_kind_pj"])
