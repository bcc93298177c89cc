"""Fitting a machine's constants: the search, the overlay it writes, and the CLI."""

from __future__ import annotations

import numpy as np
import pytest

import hwsim
from hwsim.calibration.fit import Parameter, _golden, fit, loss, overlay
from hwsim.calibration.parameters import for_machine, parse_parameter
from hwsim.calibration.table import machine_file
from hwsim.cli.main import main
from hwsim.config.machine import load_arch


def test_golden_section_finds_the_minimum_of_a_convex_function():
    value, score = _golden(lambda x: (x - 0.37) ** 2 + 1, 0.0, 1.0, 30)
    assert value == pytest.approx(0.37, abs=1e-5) and score == pytest.approx(1.0)


def test_loss_is_symmetric_in_log_speed_and_penalises_bias():
    assert loss([2.0]) == pytest.approx(loss([0.5]))
    assert loss([2.0, 0.5]) < loss([2.0, 2.0])


def test_fit_recovers_a_known_fraction():
    # The speed a machine would show if the true efficiency were 0.62: 0.62 / efficiency.
    path = machine_file("h100-sxm")

    def speeds(machine):
        return np.array([machine.units["tensor"].config.efficiency / 0.62])

    result = fit(path, [Parameter("components.tensor.efficiency", 0.3, 1.0)], speeds)
    assert result.values["components.tensor.efficiency"] == pytest.approx(0.62, abs=1e-3)
    assert result.loss_after < 1e-3


def test_overlay_extends_the_base_and_loads(tmp_path):
    base = machine_file("h100-sxm")
    params = [Parameter("components.tensor.efficiency", 0.3, 1.0), Parameter("components.host.launch_latency", 0, 1e-5, "us")]
    text = overlay(str(base), {params[0].key: 0.7123, params[1].key: 3.2e-6}, params, "fitted\nby a test")
    assert text.startswith("# fitted\n# by a test\n")
    (tmp_path / "o.yaml").write_text(text)
    machine = load_arch(tmp_path / "o.yaml")
    assert machine.component("tensor").config.efficiency == pytest.approx(0.712)
    assert machine.component("host").config.launch_latency == pytest.approx(3.2e-6)


def test_the_catalogue_fits_only_constants_the_machine_has():
    keys = {p.key for p in for_machine(["host_link", "attention"], load_arch(machine_file("gh200")).to_dict())}
    assert "components.c2c.efficiency_to.hbm" in keys and "components.pcie.efficiency" not in keys
    assert "components.tensor.attention_efficiency.flash3_fwd" in keys
    assert not [k for k in keys if "flash2_fwd_fp8" in k]   # the machine sets no such constant


@pytest.mark.parametrize("text", ["components.hbm.efficiency", "components.hbm.efficiency=0.6",
                                  "components.hbm.efficiency=a:b", "k=0:1:ms"])
def test_bad_param_specs_are_one_clear_error(text):
    with pytest.raises(hwsim.ConfigError, match="expected KEY=LOW:HIGH"):
        parse_parameter(text)


def test_calibrate_prints_rows_and_the_category_table(capsys):
    assert main(["calibrate", "--category", "host_link"]) == 0
    out = capsys.readouterr().out
    assert "pcie_h100_h2d" in out and "c2c_gh200_paper_d2h" in out
    summary = out.split("\n\n")[-1].splitlines()
    assert summary[0].split()[:2] == ["category", "rows"] and summary[1].split()[:2] == ["host_link", "10"]


def test_calibrate_fit_writes_an_overlay_of_the_shipped_machine(tmp_path, capsys):
    out = tmp_path / "pcie.yaml"
    assert main(["calibrate", "--machine", "h100-sxm", "--category", "host_link", "--fit", str(out)]) == 0
    fitted = load_arch(out)
    assert 0.5 <= fitted.component("pcie").config.efficiency <= 1.0
    assert "components.pcie.efficiency" in capsys.readouterr().out


@pytest.mark.parametrize(("argv", "message"), [
    (["--machine", "a100"], "--machine a100: no rows of that machine"),
    (["--category", "gemms"], "--category gemms: no rows of that category"),
    (["--fit", "x.yaml"], "--fit needs exactly one --machine"),
    (["--arch", "h100-sxm"], "--arch is for --profile"),
])
def test_calibrate_usage_errors_are_one_line(capsys, argv, message):
    assert main(["calibrate", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_calibrate_out_writes_a_page_and_the_table(tmp_path, capsys):
    assert main(["calibrate", "--category", "kernel_launch", "--summary-only", "--out", str(tmp_path / "cal")]) == 0
    page = (tmp_path / "cal" / "index.html").read_text()
    assert "<table" in page and "launch_h200_stream_64kB" in page
    assert (tmp_path / "cal" / "calibration.csv").read_text().count("\n") == 3  # header + 2 rows
