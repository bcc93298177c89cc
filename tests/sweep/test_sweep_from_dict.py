"""A sweep built from a Python dict is the sweep its YAML file gives."""

from __future__ import annotations

import pytest
import yaml

from hwsim.errors import ConfigError
from hwsim.sweep import load_sweep, sweep_from_dict

from ..conftest import ROOT


def test_a_dict_gives_the_same_points_as_the_file():
    path = ROOT / "examples" / "sweeps" / "systolic-array-size.yaml"
    from_file = load_sweep(path)
    from_dict = sweep_from_dict(yaml.safe_load(path.read_text()), base=path.parent)
    assert from_dict.points() == from_file.points()
    assert from_dict.machine == from_file.machine and from_dict.traces == from_file.traces


def test_a_dict_may_name_a_shipped_machine_and_errors_name_its_source():
    spec = sweep_from_dict({"machine": "tiny", "traces": [str(ROOT / "traces/examples/gemm.csv")],
                            "axes": {"components.hbm.bandwidth": ["1 TB/s", "2 TB/s"]}})
    assert spec.machine.endswith("tiny.yaml") and len(spec.points()) == 2
    with pytest.raises(ConfigError, match=r"<dict>: axs: unknown key \(did you mean 'axes'\?\)"):
        sweep_from_dict({"machine": "tiny", "traces": [], "axs": {}})
