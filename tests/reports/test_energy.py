from __future__ import annotations

import pandas as pd
import pytest

from hwsim.reports import energy

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


def test_provenance_lists_every_energy_and_leakage_key_with_its_source():
    machine = {"name": "m", "clock_hz": 1e9, "components": {
        "cam": {"kind": "cam_unit", "entries": 1024, "search_energy_per_bit": 0.02,
                "write_energy_per_bit": 0.1, "leakage_power": 0.5, "memory": "hbm",
                "source": "CAM paper", "provenance": {"search_energy_per_bit": "measured at 28 nm"}},
        "sram": {"kind": "sram", "capacity": 1e6, "read_energy": 5.0, "write_energy": 6.0,
                 "bank_width": 32},
        "eng": {"kind": "matrix_engine", "energy_per_flop": {"bf16": 0.1, "fp8": 0.05},
                "peak_flops": {"bf16": 1e12}, "source": "datasheet"},
    }}
    table = energy.provenance_table(machine)
    rows = {(r.component, r.constant): (r.value, r.unit, r.source) for r in table.itertuples()}
    assert rows == {
        ("cam", "search_energy_per_bit"): (0.02, "pJ/bit", "measured at 28 nm"),
        ("cam", "write_energy_per_bit"): (0.1, "pJ/bit", "CAM paper"),
        ("cam", "leakage_power"): (0.5, "W", "CAM paper"),
        ("sram", "read_energy"): (5.0, "pJ", "(no source given)"),
        ("sram", "write_energy"): (6.0, "pJ", "(no source given)"),
        ("eng", "energy_per_flop.bf16"): (0.1, "pJ/FLOP", "datasheet"),
        ("eng", "energy_per_flop.fp8"): (0.05, "pJ/FLOP", "datasheet"),
    }


def test_provenance_of_a_shipped_machine_names_a_source_for_every_constant(offload_h200):
    table = energy.provenance_table(offload_h200.machine)
    spending = {name for name, c in offload_h200.machine["components"].items() if c["role"] != "host"}
    assert set(table["component"]) == spending
    assert (table["source"] != "").all()
    hbm = table[(table["component"] == "hbm") & (table["constant"] == "energy_per_bit")].iloc[0]
    assert (hbm["value"], hbm["unit"]) == (3.9, "pJ/bit")
    assert "O'Connor" in hbm["source"]


@pytest.mark.parametrize(("key", "unit"), [
    ("energy_per_flop", "pJ/FLOP"), ("energy_per_bit", "pJ/bit"), ("energy_per_compare", "pJ/compare"),
    ("read_energy", "pJ"), ("leakage_power", "W")])
def test_constant_unit_follows_the_key_name(key, unit):
    assert energy.constant_unit(key) == unit


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
