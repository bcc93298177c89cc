"""The main job: its report files exist and its tables agree with the run folders."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest

from hwsim.cli.main import main
from hwsim.demo.experiments import all_runs
from hwsim.demo.page import key_ratios
from hwsim.reports.tables import format_value


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    assert main(["demo", "--out", str(out), "--quiet"]) == 0
    return out


def test_demo_writes_report_results_and_one_folder_per_run(demo):
    for name in ("index.html", "summary.md", "results.parquet", "results.csv", "roofline.png", "comparison.png",
                 "worldkv.png", "kv_memory.png", "gdn2_scaling.png", "hrm_decode.png"):
        assert (demo / name).is_file(), name
    table = pd.read_parquet(demo / "results.parquet")
    assert len(table) == len(all_runs())
    for folder in table["folder"]:
        assert (demo / folder / "summary.json").is_file()


def test_results_table_equals_each_runs_summary(demo):
    table = pd.read_parquet(demo / "results.parquet")
    for _, row in table.iterrows():
        summary = json.loads((demo / row["folder"] / "summary.json").read_text())
        assert row["total_cycles"] == summary["total_cycles"]
        assert row["throughput"] == pytest.approx(summary["throughput"])
        assert row["energy_per_unit_j"] == pytest.approx(summary["energy_per_work_unit_j"])


def test_html_embeds_every_figure_and_the_key_ratios(demo):
    page = (demo / "index.html").read_text()
    images = re.findall(r'<img alt="[^"]*" src="data:image/png;base64,', page)
    assert len(images) == 6  # worldkv, kv memory, gdn2, hrm, roofline, comparison
    ratios = key_ratios(pd.read_parquet(demo / "results.parquet"))
    summary = (demo / "summary.md").read_text()
    for name, value in ratios.items():
        assert name in page and name in summary
        assert f"| {name} | {format_value(round(value, 4))} |" in summary


def test_worldkv_retrieval_beats_full_kv_and_gdn2_scales_flatter_than_softmax(demo):
    ratios = key_ratios(pd.read_parquet(demo / "results.parquet"))
    assert ratios["worldkv_over_full_h200"] > 1.0
    assert ratios["worldkv_over_full_4xh200"] > 1.0
    assert ratios["gdn2_16k_over_2k"] > ratios["transformer_16k_over_2k"]


def test_the_released_360_frame_rollout_fits_when_sharded_over_4_h200s(demo):
    table = pd.read_parquet(demo / "results.parquet")
    released = table[table["experiment"] == "worldkv-4xh200"]
    assert set(released["label"]) == {"full KV", "WorldKV rho=0.5"}
    assert (released["overflow"] == "").all()     # full KV of 357 frames: about 29 GB per GPU
    worldkv = released[released["label"] == "WorldKV rho=0.5"]
    assert int(worldkv["host_link_bytes"].iloc[0]) > 0   # its bank is in each device's CPU memory


def test_invalid_runs_are_marked_and_every_run_links_to_its_folder(demo):
    table = pd.read_parquet(demo / "results.parquet")
    page = (demo / "index.html").read_text()
    overflowed = table[table["overflow"] != ""]
    assert len(overflowed) >= 1   # full KV does not fit the gh200's 96 GB of HBM
    assert page.count('<tr class="invalid">') == len(overflowed)
    assert "INVALID: overflow hbm" in page
    for folder in table["folder"]:
        assert f'href="{folder}/' in page


def test_the_demo_page_fits_a_1400_px_window_with_every_figure(demo, chromium, tmp_path):
    from tests.reports.test_browser import check_page

    check_page(chromium, demo / "index.html", tmp_path / "profile")


def test_the_demo_shows_the_calibration_table_of_every_machine(demo):
    page = (demo / "index.html").read_text()
    assert "How far to trust these numbers" in page
    calibration = pd.read_csv(demo / "calibration.csv")
    assert set(calibration["machine"]) == {"h100-sxm", "h200", "gh200", "hgx-h100", "h200x8", "h200x4-pcie",
                                            "a3mega-h100x2"}
    for measurement in calibration["id"]:
        assert f"<td>{measurement}</td>" in page
