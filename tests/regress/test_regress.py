"""``hwsim regress``: the project's pinned cases pass, and the comparison logic fails when it should."""

from __future__ import annotations

import importlib.util
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from hwsim.cli.main import main
from hwsim.regress.baseline import baseline_text, format_value, parse_tolerance, read_baseline

from ..conftest import ARCH, EXAMPLES

HERE = Path(__file__).resolve().parent


def test_project_cases_match_the_pinned_baselines(capsys):
    status = main(["regress", "--cases", str(HERE / "regress.yaml"), "--baseline", str(HERE / "baselines.csv"),
                   "--quiet"])
    assert status == 0, capsys.readouterr().out


def test_project_cases_cover_every_machine_and_example_trace():
    pinned = {case.split("/")[0] for case in read_baseline(HERE / "baselines.csv")}
    assert pinned == {p.stem for p in ARCH.glob("*.yaml")}
    traces = {case.split("/")[1] for case in read_baseline(HERE / "baselines.csv")}
    assert traces == {p.stem for p in EXAMPLES.glob("*.csv")}


@pytest.mark.skipif(importlib.util.find_spec("workloads.registry") is None,
                    reason="workload generators (workloads.registry) are not installed")
def test_workload_cases_match_the_pinned_baselines(capsys):
    status = main(["regress", "--cases", str(HERE / "regress_workloads.yaml"),
                   "--baseline", str(HERE / "baselines_workloads.csv"), "--quiet"])
    assert status == 0, capsys.readouterr().out


@pytest.fixture
def small(tmp_path):
    """A two-case cases file on the tiny machine and its freshly pinned baseline."""
    cases = tmp_path / "cases.yaml"
    cases.write_text(f"matrix:\n  - machines: {ARCH / 'tiny.yaml'}\n"
                     f"    traces: [{EXAMPLES / 'gemm.csv'}, {EXAMPLES / 'decode_state.csv'}]\n")
    baseline = tmp_path / "baseline.csv"
    assert main(["regress", "--cases", str(cases), "--baseline", str(baseline), "--update", "--quiet"]) == 0
    return cases, baseline


def edit(baseline: Path, case: str, metric: str, factor: float) -> None:
    lines = []
    for line in baseline.read_text().splitlines():
        name, key, value = line.split(",")
        if (name, key) == (case, metric):
            value = str(int(int(value) * factor))
        lines.append(",".join((name, key, value)))
    baseline.write_text("\n".join(lines) + "\n")


def args(cases, baseline, *extra):
    return ["regress", "--cases", str(cases), "--baseline", str(baseline), "--quiet", *extra]


def test_update_pins_sorted_rows_with_deterministic_formatting(small):
    _, baseline = small
    lines = baseline.read_text().splitlines()
    assert lines[0] == "case,metric,value"
    assert lines[1:] == sorted(lines[1:])
    assert "tiny/gemm,total_cycles,6291456" in lines
    energy = next(line for line in lines if line.startswith("tiny/gemm,energy_j,")).split(",")[2]
    assert energy == format_value(float(energy)) and len(energy.replace("0.", "").lstrip("0")) <= 12
    assert baseline.read_text() == baseline_text(read_baseline(baseline))


def test_cycle_change_beyond_tolerance_fails_with_a_table(small, capsys):
    cases, baseline = small
    edit(baseline, "tiny/gemm", "total_cycles", 1.02)
    assert main(args(cases, baseline)) == 1
    out = capsys.readouterr().out
    assert "case" in out and "metric" in out and "old" in out and "new" in out and "change" in out
    row = next(line for line in out.splitlines() if line.startswith("tiny/gemm"))
    assert row.split() == ["tiny/gemm", "total_cycles", "6417285", "6291456", "-1.961%"]
    assert "1 of 2 cases failed (tolerance 0.5%)" in out


def test_change_within_tolerance_passes(small, capsys):
    cases, baseline = small
    edit(baseline, "tiny/gemm", "total_cycles", 1.002)
    assert main(args(cases, baseline)) == 0
    assert "1 changes within tolerance" in capsys.readouterr().out
    assert main(args(cases, baseline, "--tolerance", "0.1%")) == 1


def test_missing_and_extra_cases_fail(small, tmp_path, capsys):
    cases, baseline = small
    text = baseline.read_text()
    baseline.write_text("".join(line + "\n" for line in text.splitlines() if not line.startswith("tiny/gemm,"))
                        + "tiny/retired,total_cycles,1\n")
    assert main(args(cases, baseline)) == 1
    out = capsys.readouterr().out
    assert "extra case" in out and "missing case" in out
    assert "2 of 3 cases failed" in out


def test_update_rewrites_the_baseline_and_prints_the_diff(small, capsys):
    cases, baseline = small
    fresh = baseline.read_text()
    edit(baseline, "tiny/decode_state", "total_cycles", 2)
    assert main(["regress", "--cases", str(cases), "--baseline", str(baseline), "--update"]) == 0
    out = capsys.readouterr().out
    assert "tiny/decode_state" in out and "-50%" in out and "re-pinned 2 cases" in out
    assert baseline.read_text() == fresh


def test_junit_has_one_testcase_per_case_and_markdown_has_the_table(small, tmp_path):
    cases, baseline = small
    edit(baseline, "tiny/gemm", "total_cycles", 2)
    junit, md = tmp_path / "r.xml", tmp_path / "r.md"
    assert main(args(cases, baseline, "--junit", str(junit), "--markdown", str(md))) == 1
    suite = ET.parse(junit).getroot().find("testsuite")
    cases_xml = suite.findall("testcase")
    assert [c.get("name") for c in cases_xml] == ["tiny/decode_state", "tiny/gemm"]
    assert suite.get("tests") == "2" and suite.get("failures") == "1"
    failure = cases_xml[1].find("failure")
    assert failure is not None and "total_cycles" in failure.text
    text = md.read_text()
    assert text.startswith("### hwsim regress: 1 of 2 cases failed")
    assert "| tiny/gemm | total_cycles | 12582912 | 6291456 | -50% |" in text


def test_a_case_that_cannot_run_fails_without_stopping_the_others(small, tmp_path, capsys):
    _, baseline = small
    cases = tmp_path / "broken.yaml"
    cases.write_text(f"matrix:\n  - machines: {ARCH / 'tiny.yaml'}\n"
                     f"    traces: [{EXAMPLES / 'gemm.csv'}, {EXAMPLES / 'decode_state.csv'}]\n"
                     "    overrides: {components.hbm.capacity: 2 MiB}\n")
    assert main(args(cases, baseline)) == 1
    out = capsys.readouterr().out
    assert "tiny/gemm" in out and "does not fit" in out and "tiny/decode_state" not in out


@pytest.mark.parametrize(("text", "value"), [("0.5%", 0.005), ("0.001", 0.001), ("0", 0.0), ("2e-3", 0.002)])
def test_tolerance_is_a_relative_change(text, value):
    assert parse_tolerance(text) == pytest.approx(value)


def test_bad_cases_file_is_a_one_line_error(tmp_path, capsys):
    cases = tmp_path / "c.yaml"
    cases.write_text("cases:\n  - name: x\n    machin: a.yaml\n")
    assert main(["regress", "--cases", str(cases), "--baseline", str(tmp_path / "b.csv")]) == 2
    assert "c.yaml:3: cases[0].machin: unknown key (did you mean 'machine'?)" in capsys.readouterr().err
