"""Workload registry and ``hwsim trace``: every preset loads and generates, parameters carry
source tags, traces are deterministic per seed, and user errors name what is wrong."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest

import hwsim
from hwsim.cli.trace_cmd import describe_lines, parse_params
from hwsim.errors import ConfigError
from workloads.registry import FAMILIES, generate_trace, get_family

SOURCE_TAG = re.compile(r"\[(P|C|S|D|A)[\] ]")
#: Small scenarios so that every preset generates in well under a second.
QUICK = {
    "worldkv": {"rollout_frames": "141"},
    "deltanet2": {"seq_len": "256", "tokens_per_step": "512"},
    "hrm": {"seq_len": "256", "tokens_per_step": "512"},
    "transformer": {"seq_len": "256", "tokens_per_step": "512"},
}


def all_presets():
    return [(family, preset) for family in FAMILIES for preset in get_family(family).presets()]


def test_the_four_families_are_registered_with_presets():
    assert set(FAMILIES) == {"worldkv", "deltanet2", "hrm", "transformer"}
    assert get_family("worldkv").presets() == ["lingbot-world-fast", "lingbot-world-fast-4xh200", "matrix-game-2"]
    assert get_family("deltanet2").presets() == ["gdn2-1.3b", "gdn2-1.3b-hybrid"]
    assert get_family("hrm").presets() == ["hrm-text-1b"]
    assert get_family("transformer").presets() == ["llama-2-70b", "llama-2-7b", "llama-3.1-8b",
                                                   "transformer-1.3b"]


@pytest.mark.parametrize("family, preset", all_presets())
def test_every_preset_parameter_has_a_tagged_source(family, preset):
    info = get_family(family).describe()["presets"][preset]
    assert info["description"]
    for row in info["params"]:
        assert SOURCE_TAG.search(row["source"]), (row["name"], row["source"])
        assert row["help"], row["name"]


@pytest.mark.parametrize("family, preset", all_presets())
def test_every_preset_generates_a_valid_trace(family, preset):
    trace = generate_trace(family, preset, QUICK[family], seed=1)
    meta = trace.meta
    assert trace.num_ops > 0
    assert meta.generator == f"workloads.{family}" and meta.preset == preset and meta.seed == 1
    assert meta.work_unit == get_family(family).work_unit and meta.work_units > 0
    spec = get_family(family).load_spec(preset, QUICK[family])
    assert json.loads(json.dumps(meta.params)) == meta.params          # JSON-safe
    parallel = {"dp", "fsdp", "tp", "sp", "sp_mode", "devices"}   # a preset of a parallel run adds these
    assert set(meta.params) - parallel == set(spec.__dataclass_fields__)


@pytest.mark.parametrize("family", ["worldkv", "deltanet2"])
def test_generate_trace_is_deterministic_for_a_seed(family):
    preset = get_family(family).presets()[0]
    a = generate_trace(family, preset, QUICK[family], seed=4).to_frame()
    b = generate_trace(family, preset, QUICK[family], seed=4).to_frame()
    pd.testing.assert_frame_equal(a, b)


def test_unknown_family_preset_and_parameter_are_named():
    with pytest.raises(ConfigError, match=r"'worldvk'.*did you mean 'worldkv'"):
        generate_trace("worldvk", "lingbot-world-fast")
    with pytest.raises(ConfigError, match=r"unknown preset 'gdn2-13b'.*did you mean 'gdn2-1.3b'"):
        generate_trace("deltanet2", "gdn2-13b")
    with pytest.raises(ConfigError, match=r"unknown parameter 'seqlen'.*did you mean 'seq_len'"):
        generate_trace("hrm", "hrm-text-1b", {"seqlen": "4"})
    with pytest.raises(ConfigError, match=r"transformer\.seq_len: .*whole number"):
        generate_trace("transformer", "transformer-1.3b", {"seq_len": "2.5"})


def test_param_values_are_read_as_yaml_scalars():
    spec = get_family("worldkv").load_spec(
        "lingbot-world-fast", {"keep_ratio": "0.25", "concat_window": "true", "policy": "full"})
    assert spec.keep_ratio == 0.25 and spec.concat_window is True and spec.policy == "full"
    assert parse_params(["a=1", "b = x=y"]) == {"a": "1", "b": "x=y"}
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_params(["novalue"])


def test_cli_writes_a_trace_and_prints_one_line(tmp_path, capsys):
    from hwsim.cli.main import main

    out = tmp_path / "wkv.parquet"
    code = main(["trace", "worldkv", "--preset", "lingbot-world-fast", "--param", "rollout_frames=141",
                 "--param", "keep_ratio=0.25", "--seed", "3", "-o", str(out)])
    assert code == 0
    line = capsys.readouterr().out.strip()
    trace = hwsim.read_trace(out)
    assert line == f"worldkv/lingbot-world-fast: {trace.num_ops:,} ops, 141 frames -> {out}"
    assert trace.meta.seed == 3 and trace.meta.params["keep_ratio"] == 0.25
    expected = generate_trace("worldkv", "lingbot-world-fast",
                              {"rollout_frames": "141", "keep_ratio": "0.25"}, seed=3)
    pd.testing.assert_frame_equal(trace.to_frame(), expected.to_frame(), check_dtype=False)


def test_cli_reports_bad_parameters_as_user_errors(tmp_path, capsys):
    from hwsim.cli.main import main

    code = main(["trace", "worldkv", "--preset", "lingbot-world-fast", "--param", "keep_ratio=2",
                 "-o", str(tmp_path / "x.parquet")])
    assert code == 2
    assert "worldkv.keep_ratio" in capsys.readouterr().err
    assert main(["trace", "worldkv", "-o", str(tmp_path / "x.parquet")]) == 2
    assert "--preset is required" in capsys.readouterr().err


def test_cli_list_shows_families_presets_parameters_and_sources(capsys):
    from hwsim.cli.main import main

    assert main(["trace", "--list"]) == 0
    text = capsys.readouterr().out
    for family, preset in all_presets():
        assert f"{family}:" in text and f"preset {preset}" in text
    assert re.search(r"keep_ratio\s+0\.5\s+\[C\]", text)
    assert re.search(r"sliding_window_frames\s+18\s+\[A\]", text)
    lines = describe_lines([get_family("hrm").describe()])
    assert lines[0].startswith("hrm: ") and any(line.split()[:2] == ["bp", "2"] for line in lines)
