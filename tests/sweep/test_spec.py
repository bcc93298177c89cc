"""Sweep files: axes, combinations, sampling, constraints and the errors they report."""

from __future__ import annotations

import numpy as np
import pytest

from hwsim.errors import ConfigError
from hwsim.sweep import load_sweep, plan
from hwsim.sweep.runner import point_error
from hwsim.sweep.spec import compile_expression

from ..conftest import ARCH, EXAMPLES


def write_sweep(tmp_path, body: str, name: str = "sweep.yaml"):
    path = tmp_path / name
    path.write_text(f"machine: {ARCH / 'tiny.yaml'}\ntraces: [{EXAMPLES / 'gemm.csv'}]\n" + body)
    return path


def test_grid_takes_every_combination_in_axis_order(tmp_path):
    spec = load_sweep(write_sweep(tmp_path, "axes:\n  components.hbm.bandwidth: [32 GB/s, 64 GB/s]\n"
                                            "  components.tensor.num_units: [1, 2, 4]\n"))
    points = spec.points()
    assert [p.point_id for p in points] == [f"p{i:04d}" for i in range(6)]
    assert [tuple(p.values.values()) for p in points[:3]] == [("32 GB/s", 1), ("32 GB/s", 2), ("32 GB/s", 4)]


def test_zip_pairs_values_and_rejects_unequal_lengths(tmp_path):
    spec = load_sweep(write_sweep(tmp_path, "combine: zip\naxes:\n  components.hbm.bandwidth: [32 GB/s, 64 GB/s]\n"
                                            "  components.tensor.num_units: [1, 2]\n"))
    assert [tuple(p.values.values()) for p in spec.points()] == [("32 GB/s", 1), ("64 GB/s", 2)]
    bad = write_sweep(tmp_path, "combine: zip\naxes:\n  components.hbm.bandwidth: [1, 2]\n"
                                "  components.tensor.num_units: [1, 2, 3]\n", "bad.yaml")
    with pytest.raises(ConfigError, match=r"bad.yaml:\d+: axes: zip needs axes of equal length "
                                          r"\(components.hbm.bandwidth: 2, components.tensor.num_units: 3\)"):
        load_sweep(bad)


def test_range_on_a_grid_is_evenly_spaced_in_base_units(tmp_path):
    spec = load_sweep(write_sweep(tmp_path, "axes:\n  components.hbm.capacity: {low: 1 MiB, high: 4 MiB, log: true, "
                                            "num: 3, integer: true}\n"))
    assert [p.values["components.hbm.capacity"] for p in spec.points()] == [2**20, 2**21, 2**22]


def test_latin_hypercube_puts_one_sample_in_every_stratum_of_every_axis(tmp_path):
    body = ("combine: sample\nsample: {method: latin_hypercube, n: 10, seed: 3}\naxes:\n"
            "  components.hbm.bandwidth: {low: 10 GB/s, high: 20 GB/s}\n"
            "  components.link.bandwidth: {low: 1 GB/s, high: 1000 GB/s, log: true}\n")
    points = load_sweep(write_sweep(tmp_path, body)).points()
    hbm = np.array([p.values["components.hbm.bandwidth"] for p in points])
    link = np.array([p.values["components.link.bandwidth"] for p in points])
    assert sorted(np.floor((hbm - 10e9) / 1e9).astype(int)) == list(range(10))
    assert sorted(np.floor(np.log10(link / 1e9) / 0.3).astype(int)) == list(range(10))


def test_sampling_is_reproducible_for_a_seed_and_changes_with_it(tmp_path):
    body = "combine: sample\nsample: {{method: random, n: 5, seed: {}}}\naxes:\n  components.hbm.bandwidth: {{low: 1, high: 2}}\n"
    first = load_sweep(write_sweep(tmp_path, body.format(1), "a.yaml")).points()
    again = load_sweep(write_sweep(tmp_path, body.format(1), "b.yaml")).points()
    other = load_sweep(write_sweep(tmp_path, body.format(2), "c.yaml")).points()
    assert first == again
    assert first != other


def test_constraints_drop_points_without_renaming_the_rest(tmp_path):
    body = ("axes:\n  components.hbm.bandwidth: [32 GB/s, 64 GB/s, 128 GB/s]\n  components.tensor.num_units: [1, 2]\n"
            "constraints:\n  - \"hbm.bandwidth / num_units >= 32 GB/s\"\n"
            "  - {key: components.hbm.bandwidth, op: \"<=\", value: 64 GB/s}\n")
    points = load_sweep(write_sweep(tmp_path, body)).points()
    assert [(p.point_id, tuple(p.values.values())) for p in points] == [
        ("p0000", ("32 GB/s", 1)), ("p0002", ("64 GB/s", 1)), ("p0003", ("64 GB/s", 2))]


@pytest.mark.parametrize(("text", "values", "expected"), [
    ("1 <= a < 3", {"a": 2}, True),
    ("a in [1, 2] and not b == 'ws'", {"a": 2, "b": "os"}, True),
    ("max(a, 2 * b) % 4 == 0 or false", {"a": 3, "b": 4}, True),
    ("a * 1024 >= 2 KiB", {"a": 1}, False),
    ("log2(a) == 3", {"a": 8}, True),
])
def test_expression_language_evaluates_comparisons_logic_and_quantities(text, values, expected):
    assert compile_expression(text, list(values), "s.yaml: constraints[0]").holds(values) is expected


@pytest.mark.parametrize("text", ["__import__('os').system('true')", "a.__class__", "open('x')",
                                  "a ** 2", "[x for x in a]", "lambda: 1", "a if a else a"])
def test_expressions_outside_the_language_are_rejected_not_run(text):
    with pytest.raises(ConfigError, match=r"s.yaml: constraints\[0\]"):
        compile_expression(text, ["a"], "s.yaml: constraints[0]")


def test_unknown_names_point_to_the_sweep_file_with_a_suggestion(tmp_path):
    with pytest.raises(ConfigError, match=r"sweep.yaml:\d+: axis: unknown key \(did you mean 'axes'\?\)"):
        load_sweep(write_sweep(tmp_path, "axis:\n  x: [1]\n"))
    body = "axes:\n  components.hbm.bandwidth: [1]\nconstraints: [\"bandwith > 0\"]\n"
    with pytest.raises(ConfigError, match=r"constraints\[0\]: 'bandwith > 0': 'bandwith' is not an axis "
                                          r"\(did you mean 'bandwidth'\?\)"):
        load_sweep(write_sweep(tmp_path, body))
    with pytest.raises(ConfigError, match=r"combine: 'gird' is not one of grid, zip, sample \(did you mean 'grid'\?\)"):
        load_sweep(write_sweep(tmp_path, "combine: gird\naxes:\n  components.hbm.bandwidth: [1]\n"))


def test_an_axis_key_the_machine_lacks_names_the_sweep_file_and_axis(tmp_path):
    with pytest.raises(ConfigError, match=r"sweep.yaml:\d+: axes.components.hbm.bandwith: .*"
                                          r"unknown key \(did you mean 'bandwidth'\?\)"):
        load_sweep(write_sweep(tmp_path, "axes:\n  components.hbm.bandwith: [1 TB/s]\n"))


def test_missing_trace_file_and_workload_without_preset_are_reported(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(f"machine: {ARCH / 'tiny.yaml'}\ntraces: [nope.csv]\naxes: {{components.hbm.bandwidth: [1]}}\n")
    with pytest.raises(ConfigError, match=r"s.yaml:\d+: traces\[0\]: no such trace file 'nope.csv'"):
        load_sweep(path)
    path.write_text(f"machine: {ARCH / 'tiny.yaml'}\ntraces: [{{family: hrm}}]\naxes: {{components.hbm.bandwidth: [1]}}\n")
    with pytest.raises(ConfigError, match=r"s.yaml:\d+: traces\[0\].preset: required"):
        load_sweep(path)


def test_paths_are_relative_to_the_sweep_file(tmp_path):
    folder = tmp_path / "sweeps"
    folder.mkdir()
    (folder / "s.yaml").write_text("machine: ../m.yaml\ntraces: [../t.csv]\naxes: {components.hbm.bandwidth: [1]}\n")
    (tmp_path / "m.yaml").write_text((ARCH / "tiny.yaml").read_text())
    (tmp_path / "t.csv").write_text((EXAMPLES / "gemm.csv").read_text())
    spec = load_sweep(folder / "s.yaml")
    assert spec.machine == str((tmp_path / "m.yaml").resolve())
    assert spec.traces[0].label == "../t.csv"


def test_run_hash_ignores_the_machine_path_but_not_its_values(tmp_path):
    body = "axes:\n  components.hbm.bandwidth: [32 GB/s, 64 GB/s]\n"
    runs = plan(load_sweep(write_sweep(tmp_path, body)))
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "tiny.yaml").write_text((ARCH / "tiny.yaml").read_text())
    moved = (copy / "s.yaml")
    moved.write_text(f"machine: tiny.yaml\ntraces: [{EXAMPLES / 'gemm.csv'}]\n" + body)
    assert [r.run_hash for r in plan(load_sweep(moved))] == [r.run_hash for r in runs]
    assert runs[0].run_hash != runs[1].run_hash


@pytest.mark.parametrize("example", sorted(p.name for p in (ARCH.parent / "examples" / "sweeps").glob("*.yaml")))
def test_example_sweep_files_load_and_plan(example):
    spec = load_sweep(ARCH.parent / "examples" / "sweeps" / example)
    runs = plan(spec)
    assert runs and all(point_error(run) == "" for run in runs)


def test_constraints_that_drop_every_point_are_an_error_not_an_empty_sweep(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(f"machine: {ARCH / 'tiny.yaml'}\ntraces: [{EXAMPLES / 'gemm.csv'}]\n"
                    "axes: {components.link.bandwidth: [4 GB/s, 8 GB/s]}\nconstraints: ['link.bandwidth > 1 TB/s']\n")
    with pytest.raises(ConfigError, match=r"s.yaml: constraints: all 2 combinations of the axes break a constraint"):
        plan(load_sweep(path))
