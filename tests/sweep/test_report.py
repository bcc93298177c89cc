"""The sweep report: Pareto front, figures per axis and trace, and the Markdown table."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from hwsim.errors import ConfigError, HwsimError
from hwsim.reports.sweep import is_sweep_folder, pareto_front, render_sweep, tick_label
from hwsim.sweep import load_sweep, plan, read_results, run_sweep

from ..conftest import ARCH, EXAMPLES


def test_pareto_front_keeps_exactly_the_non_dominated_points():
    throughput = np.array([10.0, 8.0, 12.0, 12.0, 5.0, np.nan, 12.0])
    energy = np.array([2.0, 1.0, 3.0, 4.0, 1.5, 0.1, 3.0])
    # 0: 10@2; 1: 8@1; 2: 12@3 (and its duplicate 6); 3 loses to 2; 4 loses to 1; 5 is NaN.
    assert pareto_front(throughput, energy).tolist() == [True, True, True, False, False, False, True]


def brute_force_front(up: np.ndarray, down: np.ndarray) -> list[bool]:
    """Point i is on the front unless some j is >= on every maximised objective, <= on every
    minimised one and strictly better on one; NaN points are off it."""
    n = len(up)
    valid = [bool(np.isfinite(up[i]).all() and np.isfinite(down[i]).all()) for i in range(n)]
    front = []
    for i in range(n):
        dominated = any(valid[j] and all(up[j] >= up[i]) and all(down[j] <= down[i])
                        and (any(up[j] > up[i]) or any(down[j] < down[i])) for j in range(n))
        front.append(valid[i] and not dominated)
    return front


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 25).flatmap(lambda n: st.tuples(
    arrays(float, (n, 1), elements=st.sampled_from([1.0, 2.0, 3.0, np.nan])),
    arrays(float, (n, 2), elements=st.sampled_from([0.5, 1.0, 2.0])))))
def test_pareto_front_with_three_objectives_equals_a_brute_force_count(objectives):
    up, down = objectives
    assert pareto_front(up, down).tolist() == brute_force_front(up, down)


SRAM_SWEEP = f"""
machine: {ARCH / 'systolic-128.yaml'}
traces: [{EXAMPLES / 'gemm.csv'}]
axes:
  components.mxu.rows: [64, 128]
  components.sram.capacity: [16 MiB, 32 MiB]
"""


def test_extra_on_chip_sram_that_buys_nothing_is_off_the_default_front(tmp_path):
    sweep = tmp_path / "s.yaml"
    sweep.write_text(SRAM_SWEEP)
    run_sweep(load_sweep(sweep), tmp_path / "out", workers=0, quiet=True)
    table, _ = read_results(tmp_path / "out")
    # The flat on-chip SRAM tier's capacity is the point's on-chip storage.
    assert table["on_chip_bytes"].tolist() == table["components.sram.capacity"].astype(int).tolist()
    text = render_sweep(tmp_path / "out").read_text()
    front = text.split("## All runs")[0]
    # The 128-row array is faster and, leaking for less time, spends less energy per token;
    # gemm.csv fits 16 MiB, so 32 MiB ties on both at twice the SRAM and is off the front.
    assert "minimize energy_per_work_unit_j, on_chip_bytes" in front
    on_front = [p for p in ("p0000", "p0001", "p0002", "p0003") if f"| {p} |" in front]
    assert on_front == ["p0002"]
    big = table.set_index("point_id").loc[["p0002", "p0003"]]
    assert big["total_cycles"].nunique() == 1 and big["energy_per_work_unit_j"].nunique() == 1


def test_pareto_objectives_come_from_the_sweep_file(tmp_path):
    sweep = tmp_path / "s.yaml"
    sweep.write_text(SRAM_SWEEP + "pareto: {maximize: [components.sram.capacity], minimize: [total_cycles]}\n")
    run_sweep(load_sweep(sweep), tmp_path / "out", workers=0, quiet=True)
    assert json.loads((tmp_path / "out" / "sweep.json").read_text())["pareto"] == {
        "maximize": ["components.sram.capacity"], "minimize": ["total_cycles"]}
    front = render_sweep(tmp_path / "out").read_text().split("## All runs")[0]
    # 128 rows are faster; with SRAM maximised, only the 32 MiB 128-row point is on the front.
    assert "| p0003 |" in front and "| p0000 |" not in front and "| p0001 |" not in front
    assert "| p0002 |" not in front


@pytest.mark.parametrize(("block", "message"), [
    ("metrics: [throughput, bytes_hmb, energy_per_unit]",
     "metrics: unknown column 'energy_per_unit' (did you mean 'energy_per_work_unit_j'?)"),
    ("metrics: []", "metrics: expected a list of result columns"),
    ("pareto: {maximize: [throughput], minimize: [energy_per_unit]}",
     "pareto.minimize: unknown column 'energy_per_unit' (did you mean 'energy_per_work_unit_j'?)"),
    ("pareto: {maximize: [throughput], minimize: [throughput]}", "pareto: name each objective once"),
    ("pareto: {best: [throughput]}", "pareto.best: unknown key"),
])
def test_bad_pareto_objectives_name_the_sweep_file(tmp_path, block, message):
    sweep = tmp_path / "s.yaml"
    sweep.write_text(SRAM_SWEEP + block + "\n")
    with pytest.raises(ConfigError) as err:
        load_sweep(sweep)
    assert str(err.value).startswith(f"{sweep}:") and message in str(err.value)


def test_render_writes_a_figure_per_axis_and_trace_and_a_markdown_table(tmp_path):
    sweep = tmp_path / "s.yaml"
    sweep.write_text(f"machine: {ARCH / 'tiny.yaml'}\ntraces: [{EXAMPLES / 'gemm.csv'}, {EXAMPLES / 'offload.csv'}]\n"
                     "axes:\n  components.link.bandwidth: [4 GB/s, 16 GB/s]\n"
                     "  placement.kv_window: [hbm, dram]\n  components.link.energy_per_bit: [2 pJ/bit, 8 pJ/bit]\n")
    out = tmp_path / "out"
    run_sweep(load_sweep(sweep), out, workers=0, quiet=True)
    assert is_sweep_folder(out) and not is_sweep_folder(tmp_path)
    page = render_sweep(out)
    assert page == out / "sweep.md"
    pngs = sorted(p.name for p in (out / "report").glob("*.png"))
    assert pngs == ["axis-0-components-link-bandwidth.png", "axis-1-placement-kv-window.png",
                    "axis-2-components-link-energy-per-bit.png", "pareto-t0.png", "pareto-t1.png"]
    assert all((out / "report" / name).read_bytes().startswith(b"\x89PNG") for name in pngs)
    text = page.read_text()
    assert text.startswith("# hwsim sweep s: 8 points x 2 traces") and "Pareto front" in text
    assert "| 4 GB/s |" in text and "| 8 pJ/bit |" in text   # swept values in their units
    from hwsim.reports.html import write_report
    page = write_report(out).read_text()
    assert "<title>hwsim sweep s: 8 points x 2 traces</title>" in page
    assert "](report/pareto-t1.png)" in text and "| placement.kv_window |" in text


@pytest.mark.parametrize(("value", "dimension", "label"), [
    (16 * 2**20, "bytes", "16 MiB"), (1.5 * 2**30, "bytes", "1.5 GiB"), (1e6, "bytes", "1 MB"),
    (22_321_336_320.0, "bytes", "22.32 GB"),        # a measured count: not a round number of GiB
    (819e9, "bandwidth", "819 GB/s"), (1.25, "power", "1.25 W"), (64.0, "", "64"),
])
def test_tick_labels_show_swept_values_in_their_unit(value, dimension, label):
    assert tick_label(value, dimension) == label


def test_axis_dimensions_are_recorded_for_the_report(tmp_path):
    sweep = tmp_path / "s.yaml"
    sweep.write_text(SRAM_SWEEP.replace("axes:\n", "axes:\n  components.hbm_bus.bandwidth: {low: 1 TB/s, high: 2 TB/s, num: 2}\n"))
    run_sweep(load_sweep(sweep), tmp_path / "out", workers=0, quiet=True)
    assert json.loads((tmp_path / "out" / "sweep.json").read_text())["axis_dimensions"] == {
        "components.hbm_bus.bandwidth": "bandwidth", "components.sram.capacity": "bytes"}


def test_the_sweep_files_metrics_are_drawn_against_every_axis(tmp_path):
    sweep = tmp_path / "s.yaml"
    sweep.write_text(SRAM_SWEEP + "metrics: [total_cycles, bytes_hbm, on_chip_bytes]\n")
    run_sweep(load_sweep(sweep), tmp_path / "out", workers=0, quiet=True)
    assert json.loads((tmp_path / "out" / "sweep.json").read_text())["metrics"] == [
        "total_cycles", "bytes_hbm", "on_chip_bytes"]
    render_sweep(tmp_path / "out")
    from matplotlib.image import imread
    one_metric_wide = imread(tmp_path / "out" / "report" / "pareto-t0.png").shape[1]
    three_metrics_wide = imread(tmp_path / "out" / "report" / "axis-0-components-mxu-rows.png").shape[1]
    assert three_metrics_wide > 2 * one_metric_wide    # a panel per metric, side by side


def test_a_bytes_metric_must_name_a_tier_or_link_of_the_machine(tmp_path):
    sweep = tmp_path / "s.yaml"
    sweep.write_text(SRAM_SWEEP + "metrics: [throughput, bytes_hmb]\n")
    with pytest.raises(ConfigError, match=r"s.yaml: metrics: systolic-128 has no tier or link for 'bytes_hmb' "
                                          r"\(did you mean 'bytes_hbm'\?\)"):
        plan(load_sweep(sweep))


def test_a_sweep_json_naming_a_column_the_table_lacks_is_one_error(tmp_path):
    sweep = tmp_path / "s.yaml"
    sweep.write_text(SRAM_SWEEP)
    run_sweep(load_sweep(sweep), tmp_path / "out", workers=0, quiet=True)
    manifest = tmp_path / "out" / "sweep.json"
    manifest.write_text(manifest.read_text().replace('"bytes_hbm"', '"bytes_l3"').replace(
        '"metrics": [', '"metrics": ["bytes_l3", '))
    with pytest.raises(HwsimError, match=r"sweep.json: metrics: the results table has no column 'bytes_l3'"):
        render_sweep(tmp_path / "out")
