"""Property: every mutation of every input format keeps the error contract.

A mutated machine, trace (CSV or Parquet), sweep file, regress cases file or baseline either
runs and gives finite, non-negative results, or exits 2 with ``hwsim: error:`` lines that
name the mutated file, never a traceback, an internal error or a NumPy repr. (``regress``
may also exit 1: a changed metric is a failed check, not bad input.) ``make test`` tries a
few examples of each; ``make fuzz`` many (see conftest.py).
"""

from __future__ import annotations

import itertools
import tempfile
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from hypothesis import event, given
from hypothesis import strategies as st

import hwsim
from hwsim.trace.io import PARQUET_KEY

from ..conftest import ARCH, EXAMPLES, ROOT
from ..contract import assert_sane_run, assert_user_error, run_cli
from .mutate import HOSTILE, damaged_text, mutated_csv, mutated_yaml

MACHINES = {p.name: yaml.safe_load(p.read_text()) for p in sorted(ARCH.glob("*.yaml"))}
TRACES = {p.name: p.read_text() for p in sorted(EXAMPLES.glob("*.csv"))}
SWEEPS = {p.name: p for p in sorted((ROOT / "examples" / "sweeps").glob("*.yaml"))}
_counter = itertools.count()


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """A folder holding copies of the shipped machines (so ``extends`` resolves) and traces."""
    root = tmp_path_factory.mktemp("fuzz")
    for path in ARCH.glob("*.yaml"):
        (root / path.name).write_text(path.read_text())
    for path in EXAMPLES.glob("*.csv"):
        (root / path.name).write_text(path.read_text())
    return root


def fresh(workspace: Path) -> Path:
    """A new folder for one example, inside the workspace (so relative paths resolve)."""
    return Path(tempfile.mkdtemp(prefix=f"ex{next(_counter)}-", dir=workspace))


def check_run(outcome, folder: Path, *names) -> None:
    """The contract for ``hwsim run``: a sane run folder, or lines that name the input."""
    event(f"exit {outcome.status}")
    if outcome.status == 0:
        assert_sane_run(folder)
    else:
        assert_user_error(outcome, *names)


@given(data=st.data(), name=st.sampled_from(sorted(MACHINES)))
def test_mutated_machines_run_sanely_or_fail_with_lines_naming_the_file(workspace, data, name):
    folder = fresh(workspace)
    machine = folder.parent / f"{folder.name}-{name}"
    text = data.draw(mutated_yaml(MACHINES[name]))
    machine.write_bytes(text)
    outcome = run_cli("run", "--arch", machine, "--trace", workspace / "gemm.csv", "--out", folder / "run", "--quiet")
    check_run(outcome, folder / "run", machine.name)


@given(data=st.data(), name=st.sampled_from(sorted(TRACES)))
def test_mutated_csv_traces_run_sanely_or_fail_with_lines_naming_the_file(workspace, data, name):
    folder = fresh(workspace)
    trace = folder / name
    trace.write_bytes(data.draw(mutated_csv(TRACES[name])))
    outcome = run_cli("run", "--arch", workspace / "h200.yaml", "--trace", trace, "--out", folder / "run", "--quiet")
    check_run(outcome, folder / "run", trace.name)


def _cell_values():
    return st.one_of(st.sampled_from([v for v in HOSTILE if not isinstance(v, list | dict)]),
                     st.integers(min_value=-2**70, max_value=2**70), st.floats(), st.text(max_size=6))


@given(data=st.data(), name=st.sampled_from(sorted(TRACES)))
def test_mutated_parquet_traces_run_sanely_or_fail_with_lines_naming_the_file(workspace, data, name):
    folder = fresh(workspace)
    frame = hwsim.read_trace(EXAMPLES / name).to_frame().astype(object)
    meta = hwsim.read_trace(EXAMPLES / name).meta.to_json()
    action = data.draw(st.sampled_from(("cell", "column-type", "metadata", "bytes", "drop-column")))
    if action == "cell":
        row = data.draw(st.integers(0, len(frame) - 1))
        column = data.draw(st.sampled_from(list(frame.columns)))
        frame.at[row, column] = data.draw(_cell_values())
        frame[column] = frame[column].map(str) if frame[column].map(type).nunique() > 1 else frame[column]
    elif action == "column-type":
        column = data.draw(st.sampled_from(list(frame.columns)))
        frame[column] = data.draw(st.sampled_from((
            frame[column].map(str), frame[column].map(lambda v: float(v) if str(v).lstrip("-").isdigit() else v),
            pd.Series([[1, 2]] * len(frame)), pd.Series([None] * len(frame)))))
    elif action == "metadata":
        meta = data.draw(st.sampled_from(('{"work_units": -5}', '[1]', '{"seed": "x"}', "{", '{"params": NaN}',
                                          '{"work_units": 1e999}', '{"schema_version": 7}')))
    elif action == "drop-column":
        frame = frame.drop(columns=[data.draw(st.sampled_from(list(frame.columns)))])
    trace = folder / "t.parquet"
    try:
        table = pa.Table.from_pandas(frame, preserve_index=False)
    except (pa.ArrowException, TypeError, ValueError, OverflowError):
        table = pa.Table.from_pandas(frame.astype(str), preserve_index=False)
    pq.write_table(table.replace_schema_metadata({PARQUET_KEY: meta.encode()}), trace)
    if action == "bytes":
        raw = bytearray(trace.read_bytes())
        for _ in range(data.draw(st.integers(1, 8))):
            raw[data.draw(st.integers(0, len(raw) - 1))] ^= data.draw(st.integers(1, 255))
        trace.write_bytes(bytes(raw))
    outcome = run_cli("run", "--arch", workspace / "h200.yaml", "--trace", trace, "--out", folder / "run", "--quiet")
    check_run(outcome, folder / "run", trace.name)


def _sweep_tree(path: Path) -> dict:
    """A shipped sweep file with its paths made absolute (so the copy can live anywhere)."""
    tree = yaml.safe_load(path.read_text())
    tree["machine"] = str((path.parent / tree["machine"]).resolve())
    tree["traces"] = [str((path.parent / t).resolve()) if isinstance(t, str) else t for t in tree["traces"]]
    return tree


@given(data=st.data(), name=st.sampled_from(sorted(SWEEPS)))
def test_mutated_sweep_files_plan_or_fail_with_lines_naming_the_file(workspace, data, name):
    folder = fresh(workspace)
    sweep = folder / name
    sweep.write_bytes(data.draw(mutated_yaml(_sweep_tree(SWEEPS[name]))))
    outcome = run_cli("sweep", sweep, "--dry-run")
    event(f"exit {outcome.status}")
    if outcome.status != 0:
        assert_user_error(outcome, sweep.name)


CASES = {"cases": [{"name": "tiny/gemm", "machine": str(ARCH / "tiny.yaml"), "trace": str(EXAMPLES / "gemm.csv"),
                    "overrides": {"components.hbm.bandwidth": "128 GB/s"}}],
         "matrix": [{"machines": [str(ARCH / "tiny.yaml"), str(ARCH / "edge-npu.yaml")],
                     "traces": str(EXAMPLES / "decode_state.csv"), "name": "{machine}/{trace}"}]}


@pytest.fixture(scope="module")
def baseline(workspace) -> Path:
    cases = workspace / "cases.yaml"
    cases.write_text(yaml.safe_dump(CASES))
    path = workspace / "baseline.csv"
    assert run_cli("regress", "--cases", cases, "--baseline", path, "--update", "--quiet").status == 0
    return path


@given(data=st.data(), target=st.sampled_from(("cases", "baseline")))
def test_mutated_regress_files_pass_fail_or_refuse_with_lines_naming_the_file(workspace, baseline, data, target):
    folder = fresh(workspace)
    cases, pinned = folder / "cases.yaml", folder / "baseline.csv"
    cases.write_text(yaml.safe_dump(CASES))
    pinned.write_bytes(baseline.read_bytes())
    if target == "cases":
        cases.write_bytes(data.draw(mutated_yaml(CASES)))
    else:
        pinned.write_bytes(data.draw(st.one_of(mutated_csv(baseline.read_text()), damaged_text(baseline.read_text()))))
    outcome = run_cli("regress", "--cases", cases, "--baseline", pinned, "--quiet")
    event(f"exit {outcome.status}")
    if outcome.status == 2:
        assert_user_error(outcome, cases.name if target == "cases" else pinned.name)
    else:
        assert outcome.status in (0, 1), outcome
        assert "Traceback" not in outcome.err and "internal error" not in outcome.err


@given(data=st.data())
def test_mutated_overrides_run_sanely_or_fail_naming_the_option(workspace, data):
    folder = fresh(workspace)
    machine = yaml.safe_load((ARCH / "worldkv-asic.yaml").read_text())
    keys = [f"components.{c}.{k}" for c, block in machine["components"].items() for k in block if k != "kind"]
    key = data.draw(st.sampled_from([*keys, "clock", "placement.default", "dispatch.gemm", "name", "components"]))
    value = data.draw(st.one_of(st.sampled_from(HOSTILE), st.floats(), st.integers()))
    text = yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()
    outcome = run_cli("run", "--arch", workspace / "worldkv-asic.yaml", "--trace", workspace / "offload.csv",
                      "--out", folder / "run", "--quiet", "--allow-overflow", "--set", f"{key}={text}")
    check_run(outcome, folder / "run", "worldkv-asic.yaml", "--set")
