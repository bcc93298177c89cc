from __future__ import annotations

import json

import pandas as pd
import pytest

import hwsim
from hwsim import runs as runs_module
from hwsim.cli.main import main
from hwsim.errors import HwsimError
from hwsim.reports import compare
from hwsim.results import read_summary

from ..conftest import ARCH, EXAMPLES
from .conftest import is_png


@pytest.fixture(scope="module")
def machines_on_one_trace(tmp_path_factory):
    out = tmp_path_factory.mktemp("cmp") / "machines"
    runs = runs_module.simulate_runs([EXAMPLES / "gemm.csv"],
                                 [ARCH / "tiny.yaml", ARCH / "systolic-128.yaml", ARCH / "h100-sxm.yaml"], out)
    return compare.compare_runs(runs, out)


def test_comparison_writes_tables_markdown_plot_and_run_folders(machines_on_one_trace):
    out = machines_on_one_trace
    for name in ("comparison.parquet", "comparison.csv", "comparison.md", "comparison.png",
                 "comparison.json", "comparison_runs.csv"):
        assert (out / name).is_file(), name
    for label in ("tiny", "systolic-128", "h100-sxm"):
        assert (out / label / "summary.json").is_file()
    assert is_png((out / "comparison.png").read_bytes())
    info = json.loads((out / "comparison.json").read_text())
    assert info["baseline"] == "tiny"
    assert [r["folder"] for r in info["runs"]] == ["tiny", "systolic-128", "h100-sxm"]


def test_comparison_numbers_equal_each_run_summary(machines_on_one_trace):
    out = machines_on_one_trace
    table = pd.read_parquet(out / "comparison.parquet").set_index("metric")
    for label in ("tiny", "systolic-128", "h100-sxm"):
        summary = read_summary(out / label)
        assert table.loc["cycles", label] == summary["total_cycles"]
        assert table.loc["seconds", label] == summary["seconds"]
        assert table.loc["throughput", label] == summary["throughput"]
        assert table.loc["energy per work unit", label] == summary["energy_per_work_unit_j"]
        assert table.loc["total energy", label] == summary["energy"]["total_j"]
        assert table.loc["busiest utilization", label] == summary["busiest_utilization"]
        for tier, stats in summary["tiers"].items():
            assert table.loc[f"bytes {tier}", label] == stats["bytes"]
            assert table.loc[f"peak occupancy {tier}", label] == stats["peak_occupancy_bytes"]
        for unit, stats in summary["units"].items():
            assert table.loc[f"utilization {unit}", label] == stats["utilization"]
    assert table.loc["throughput", "unit"] == "token/s"


def test_ratio_columns_divide_by_the_first_run(machines_on_one_trace):
    table = pd.read_parquet(machines_on_one_trace / "comparison.parquet")
    for label in ("systolic-128", "h100-sxm"):
        ratio = table[f"{label} / tiny"]
        expected = table[label] / table["tiny"]
        usable = table["tiny"].notna() & (table["tiny"] != 0) & table[label].notna()
        assert ratio[usable].to_numpy() == pytest.approx(expected[usable].to_numpy())
        assert ratio[~usable].isna().all()


def test_runs_table_names_machine_trace_and_busiest_unit(machines_on_one_trace):
    runs = pd.read_csv(machines_on_one_trace / "comparison_runs.csv")
    assert list(runs["machine"]) == ["tiny", "systolic-128", "h100-sxm"]
    assert runs["trace"].str.endswith("gemm.csv").all()
    for row in runs.itertuples():
        assert row.busiest_component == read_summary(machines_on_one_trace / row.folder)["busiest_component"]
    markdown = (machines_on_one_trace / "comparison.md").read_text()
    assert "| metric | unit | tiny | systolic-128 | h100-sxm | systolic-128 / tiny | h100-sxm / tiny |" in markdown


def test_comparison_files_are_byte_identical_when_rewritten(tmp_path, machines_on_one_trace):
    runs = [compare.RunData.load(machines_on_one_trace / label) for label in ("tiny", "h100-sxm")]
    a = compare.compare_runs(runs, tmp_path / "a", plots=False)
    b = compare.compare_runs(runs, tmp_path / "b", plots=False)
    for name in ("comparison.csv", "comparison.md", "comparison_runs.csv"):
        assert (a / name).read_bytes() == (b / name).read_bytes()


def test_several_traces_on_one_machine_are_labelled_by_trace(tmp_path):
    runs = runs_module.simulate_runs([EXAMPLES / "gemm.csv", EXAMPLES / "decode_state.csv"], [ARCH / "tiny.yaml"],
                                 tmp_path)
    assert [r.label for r in runs] == ["gemm", "decode_state"]
    out = compare.compare_runs(runs, tmp_path)
    table = pd.read_parquet(out / "comparison.parquet").set_index("metric")
    assert table.loc["cycles", "decode_state"] == runs[1].summary["total_cycles"]


def test_compare_runs_accepts_results_by_label_and_writes_their_folders(tmp_path, offload_tiny, offload_h200):
    out = compare.compare_runs({"small": offload_tiny, "big": offload_h200}, tmp_path)
    assert (out / "small" / "records.parquet").is_file() and (out / "big" / "summary.json").is_file()
    table = pd.read_parquet(out / "comparison.parquet").set_index("metric")
    assert table.loc["cycles", "big / small"] == pytest.approx(
        offload_h200.summary["total_cycles"] / offload_tiny.summary["total_cycles"])


def test_unique_labels_are_folder_safe_and_distinct():
    assert compare.unique_labels(["a b", "a b", "x/y", ""]) == ["a_b", "a_b-2", "x_y", "run"]


def test_cli_compare_runs_machines_and_prints_the_table(tmp_path, capsys):
    status = main(["compare", "--trace", str(EXAMPLES / "offload.csv"), "--arch", str(ARCH / "tiny.yaml"),
                   "--arch", str(ARCH / "h200.yaml"), "--out", str(tmp_path), "--quiet"])
    assert status == 0
    assert f"comparison  -> {tmp_path}/" in capsys.readouterr().out
    table = pd.read_csv(tmp_path / "comparison.csv").set_index("metric")
    assert table.loc["cycles", "h200"] == read_summary(tmp_path / "h200")["total_cycles"]


def test_cli_compare_includes_existing_run_folders(tmp_path, run_folder, capsys):
    status = main(["compare", "--run", str(run_folder), "--run", str(run_folder),
                   "--label", "first", "--label", "again", "--out", str(tmp_path / "c")])
    assert status == 0
    table = pd.read_parquet(tmp_path / "c" / "comparison.parquet").set_index("metric")
    assert table.loc["cycles", "again / first"] == 1.0
    assert "| first |" in capsys.readouterr().out


@pytest.mark.parametrize(("args", "fragment"), [
    (["--trace", "T.csv"], "compare: --arch is missing"),
    (["--arch", "A.yaml"], "compare: --trace is missing"),
    (["--trace", str(EXAMPLES / "gemm.csv"), "--arch", str(ARCH / "tiny.yaml")], "needs at least two runs"),
    (["--run", "/nonexistent", "--run", "/nonexistent"], "/nonexistent: not a run folder"),
])
def test_cli_compare_bad_options_are_one_line_and_exit_2(tmp_path, capsys, args, fragment):
    status = main(["compare", *args, "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert status == 2
    assert fragment in err and err.count("\n") == 1


def test_cli_compare_passes_allow_overflow_through(tmp_path, capsys):
    trace = tmp_path / "big.csv"
    trace.write_text("op_id,kind,dst,bytes_written\n0,alloc,weights,2000000000\n")
    args = ["compare", "--trace", str(trace), "--arch", str(ARCH / "tiny.yaml"), "--arch", str(ARCH / "h200.yaml"),
            "--out", str(tmp_path / "o"), "--quiet"]
    assert main(args) == 2
    assert "run 'tiny':" in capsys.readouterr().err
    assert main([*args, "--allow-overflow"]) == 0
    assert read_summary(tmp_path / "o" / "tiny")["overflow"] == ["hbm"]


def test_load_rejects_a_folder_that_is_not_a_run(tmp_path):
    with pytest.raises(HwsimError, match="not a run folder"):
        compare.RunData.load(tmp_path)


def test_simulate_runs_needs_traces_and_machines(tmp_path):
    with pytest.raises(HwsimError):
        runs_module.simulate_runs([], [ARCH / "tiny.yaml"], tmp_path)
    with pytest.raises(HwsimError, match="labels"):
        runs_module.simulate_runs([EXAMPLES / "gemm.csv"], [ARCH / "tiny.yaml"], tmp_path, labels=["a", "b"])
    assert hwsim.__version__
