"""Running sweeps: one row per point x trace, failures recorded, nothing lost, resume, Dask."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import subprocess
import sys

import numpy as np
import pandas as pd
import psutil
import pytest

from hwsim.cli.main import main
from hwsim.config.machine import load_arch
from hwsim.engine.machine import Machine
from hwsim.errors import ConfigError, HwsimError
from hwsim.sweep import load_sweep, plan, read_results, run_sweep
from hwsim.sweep import runner as runner_module
from hwsim.sweep.journal import JOURNAL, LEGACY_POINTS, RunJournal, read_runs
from hwsim.sweep.table import on_chip_bytes

from ..conftest import ARCH, EXAMPLES, ROOT
from .interrupt import kill_when_saved, slow_sweep, wait_until_saved

# Two capacities: 2 MiB holds decode_state.csv's 1 MiB state but not gemm.csv's 4 MiB of
# weights, so those two points fail.
SWEEP = f"""
name: tiny-capacity
machine: {ARCH / 'tiny.yaml'}
traces: [{EXAMPLES / 'gemm.csv'}, {EXAMPLES / 'decode_state.csv'}]
axes:
  components.hbm.capacity: [1 GiB, 2 MiB]
  components.hbm.bandwidth: [32 GB/s, 64 GB/s]
"""


@pytest.fixture
def sweep_file(tmp_path):
    path = tmp_path / "sweep.yaml"
    path.write_text(SWEEP)
    return path


def test_table_has_one_row_per_point_and_trace_with_axes_next_to_metrics(sweep_file, tmp_path):
    outcome = run_sweep(load_sweep(sweep_file), tmp_path / "out", workers=0, quiet=True)
    table, axes = read_results(tmp_path / "out")
    assert (outcome.runs, outcome.ran, outcome.missing) == (8, 8, 0)
    assert axes == ["components.hbm.capacity", "components.hbm.bandwidth"]
    assert len(table) == 8 and list(table["point_id"]) == sorted(table["point_id"])
    for column in ("point_id", "trace", *axes, "total_cycles", "seconds", "throughput", "throughput_unit",
                   "energy_j", "energy_per_work_unit_j", "avg_power_w", "bytes_hbm", "peak_bytes_hbm", "busiest_component",
                   "status", "error", "fidelity", "run_hash"):
        assert column in table.columns
    assert table["components.hbm.capacity"].iloc[0] == 2**30   # quantities in base units
    ok = table[table["status"] == "ok"]
    assert np.allclose(ok["avg_power_w"], ok["energy_j"] / ok["seconds"], rtol=1e-12)
    assert table["run_hash"].nunique() == 8


def test_a_failing_point_is_recorded_and_the_others_run(sweep_file, tmp_path):
    outcome = run_sweep(load_sweep(sweep_file), tmp_path / "out", workers=0, quiet=True)
    table, _ = read_results(tmp_path / "out")
    failed = table[table["status"] == "failed"]
    assert outcome.failed == len(failed) == 2  # 2 MiB x gemm.csv, at both bandwidths
    assert failed["error"].str.contains("the working set does not fit").all()
    assert failed["total_cycles"].isna().all()
    assert (table["status"] == "ok").sum() == 6


def test_each_run_is_saved_as_it_finishes_and_an_interrupted_sweep_resumes(sweep_file, tmp_path, monkeypatch):
    out = tmp_path / "out"
    real = runner_module.execute_run
    calls = []

    def interrupt_on_the_fourth(run):
        calls.append(run.name)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return real(run)

    monkeypatch.setattr(runner_module, "execute_run", interrupt_on_the_fourth)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(load_sweep(sweep_file), out, workers=0, quiet=True)
    assert sorted(read_runs(out)) == sorted(calls[:3])
    assert not (out / "results.parquet").exists()
    monkeypatch.setattr(runner_module, "execute_run", real)
    resumed = run_sweep(load_sweep(sweep_file), out, workers=0, resume=True, quiet=True)
    assert (resumed.reused, resumed.ran) == (3, 5)
    run_sweep(load_sweep(sweep_file), tmp_path / "clean", workers=0, quiet=True)
    assert (out / "results.parquet").read_bytes() == (tmp_path / "clean" / "results.parquet").read_bytes()


@pytest.mark.parametrize("workers", ["0", "2"])
def test_a_sweep_killed_mid_run_keeps_every_saved_run_and_resume_does_only_the_rest(tmp_path, workers):
    sweep, out = slow_sweep(tmp_path, points=8), tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    driver = subprocess.Popen([sys.executable, "-m", "hwsim", "sweep", str(sweep), "--out", str(out),
                               "--workers", workers, "--quiet"], env=env)
    wait_until_saved(out, count=1)
    workers_alive = psutil.Process(driver.pid).children(recursive=True)   # the local cluster's workers
    kill_when_saved(driver, out, count=3).join()
    assert driver.wait(timeout=60) == -signal.SIGKILL   # killed, not finished
    # The local cluster's worker processes notice their parent is gone and exit.
    assert len(workers_alive) == int(workers)
    _, still = psutil.wait_procs(workers_alive, timeout=30)
    assert not still
    lines = (out / JOURNAL).read_text().splitlines(keepends=True)
    saved = sorted(read_runs(out))
    assert 3 <= len(saved) < 8 and not (out / "results.parquet").exists()
    assert all(line.endswith("\n") and json.loads(line)["name"] in saved for line in lines)   # whole lines
    resumed = run_sweep(load_sweep(sweep), out, workers=0, resume=True, quiet=True)
    assert (resumed.reused, resumed.ran, resumed.missing) == (len(saved), 8 - len(saved), 0)
    assert not set(resumed.wall_s) & set(saved)
    run_sweep(load_sweep(sweep), tmp_path / "clean", workers=0, quiet=True)
    assert (out / "results.parquet").read_bytes() == (tmp_path / "clean" / "results.parquet").read_bytes()


def _rewrite_journal(out, edit) -> None:
    """Replace ``out``'s journal with ``edit(lines)`` (lines as parsed dicts, in file order)."""
    lines = [json.loads(line) for line in (out / JOURNAL).read_text().splitlines()]
    (out / JOURNAL).write_text("".join(json.dumps(line) + "\n" for line in edit(lines)))


def test_resume_recomputes_only_missing_or_stale_runs(sweep_file, tmp_path):
    out = tmp_path / "out"
    run_sweep(load_sweep(sweep_file), out, workers=0, quiet=True)
    kept = read_runs(out)["p0001-t0"]
    _rewrite_journal(out, lambda lines: [{**line, "key": "x" + line["key"]} if line["name"] == "p0003-t0" else line
                                         for line in lines if line["name"] != "p0000-t1"])
    outcome = run_sweep(load_sweep(sweep_file), out, workers=0, resume=True, quiet=True)
    assert (outcome.reused, outcome.ran) == (6, 2)
    assert sorted(outcome.wall_s) == ["p0000-t1", "p0003-t0"]
    assert read_runs(out)["p0001-t0"] == kept   # reused as saved, wall time and all
    run_sweep(load_sweep(sweep_file), tmp_path / "clean", workers=0, quiet=True)
    assert (out / "results.parquet").read_bytes() == (tmp_path / "clean" / "results.parquet").read_bytes()


def test_a_torn_last_line_is_dropped_and_resume_appends_after_whole_lines_only(sweep_file, tmp_path):
    out = tmp_path / "out"
    run_sweep(load_sweep(sweep_file), out, workers=0, quiet=True)
    text = (out / JOURNAL).read_text()
    last = text.splitlines(keepends=True)[-1]
    (out / JOURNAL).write_text(text[:-len(last)] + last[:len(last) // 2])   # killed in the middle of a write
    assert len(read_runs(out)) == 7
    outcome = run_sweep(load_sweep(sweep_file), out, workers=0, resume=True, quiet=True)
    assert (outcome.reused, outcome.ran) == (7, 1)
    lines = (out / JOURNAL).read_text().splitlines(keepends=True)
    assert len(lines) == 8 and all(json.loads(line) for line in lines)


def test_the_runs_of_a_task_are_appended_in_one_write_and_read_back_whole(tmp_path, monkeypatch):
    journal = RunJournal(tmp_path)
    journal.start([("p0-t0", {"key": "a", "row": {"status": "ok"}})])
    writes = []
    real_write = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: writes.append(len(data)) or real_write(fd, data))
    with journal:
        journal.append_all([(f"p{i}-t0", {"key": str(i), "row": {"status": "ok"}}) for i in range(1, 4)])
    assert len(writes) == 1
    assert {name: run["key"] for name, run in read_runs(tmp_path).items()} == {
        "p0-t0": "a", "p1-t0": "1", "p2-t0": "2", "p3-t0": "3"}


def test_a_run_that_reads_its_trace_is_marked_cold_and_the_next_one_is_not(sweep_file, monkeypatch):
    monkeypatch.setattr(runner_module, "_TRACE_CACHE", {})
    runs = plan(load_sweep(sweep_file))
    first, again, other = (runner_module.execute_run(r) for r in (runs[0], runs[2], runs[1]))
    assert (runs[0].trace, runs[1].trace) == (runs[2].trace, runs[3].trace)
    assert first["timing"].get("cold") is True and "cold" not in again["timing"]
    assert other["timing"].get("cold") is True            # another trace is read too


def test_a_sweep_keeps_its_plan_out_of_the_collector_and_gives_it_back(sweep_file, tmp_path, monkeypatch):
    import gc

    frozen = []
    real = runner_module.execute_run
    monkeypatch.setattr(runner_module, "execute_run", lambda run: frozen.append(gc.get_freeze_count()) or real(run))
    run_sweep(load_sweep(sweep_file), tmp_path / "a", workers=0, quiet=True)
    assert min(frozen) > 0 and gc.get_freeze_count() == 0
    calls = []
    monkeypatch.setattr(gc, "get_freeze_count", lambda: 5)   # a process that froze objects of its own
    monkeypatch.setattr(gc, "freeze", lambda: calls.append("freeze"))
    monkeypatch.setattr(gc, "unfreeze", lambda: calls.append("unfreeze"))
    run_sweep(load_sweep(sweep_file), tmp_path / "b", workers=0, quiet=True)
    assert calls == []                                    # theirs stay frozen


def test_resuming_a_few_points_keeps_the_other_saved_runs(sweep_file, tmp_path):
    out = tmp_path / "out"
    run_sweep(load_sweep(sweep_file), out, workers=0, quiet=True)
    before = read_runs(out)
    _rewrite_journal(out, lambda lines: [line for line in lines if not line["name"].startswith("p0002")])
    outcome = run_sweep(load_sweep(sweep_file), out, workers=0, resume=True, quiet=True, only=["p0002"])
    assert (outcome.reused, outcome.ran) == (0, 2)
    after = read_runs(out)
    assert sorted(after) == sorted(before)
    assert all(after[name] == before[name] for name in after if not name.startswith("p0002"))


def test_runs_saved_one_file_each_by_an_earlier_version_are_resumed(sweep_file, tmp_path):
    out = tmp_path / "out"
    run_sweep(load_sweep(sweep_file), out, workers=0, quiet=True)
    legacy = out / LEGACY_POINTS
    legacy.mkdir()
    for name, result in read_runs(out).items():
        if name != "p0002-t0":
            (legacy / f"{name}.json").write_text(json.dumps({k: v for k, v in result.items() if k != "name"}))
    (out / JOURNAL).unlink()
    with pytest.raises(HwsimError, match="already holds sweep results"):
        run_sweep(load_sweep(sweep_file), out, workers=0, quiet=True)
    outcome = run_sweep(load_sweep(sweep_file), out, workers=0, resume=True, quiet=True)
    assert (outcome.reused, outcome.ran) == (7, 1)
    assert sorted(read_runs(out)) == sorted(json.loads(line)["name"] for line in (out / JOURNAL).read_text().splitlines())


def test_retry_failed_reruns_saved_failures(sweep_file, tmp_path):
    out = tmp_path / "out"
    run_sweep(load_sweep(sweep_file), out, workers=0, quiet=True)
    outcome = run_sweep(load_sweep(sweep_file), out, workers=0, resume=True, retry_failed=True, quiet=True)
    assert (outcome.reused, outcome.ran) == (6, 2)


def test_an_existing_sweep_folder_needs_resume(sweep_file, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["sweep", str(sweep_file), "--out", str(out), "--workers", "0", "--quiet"]) == 0
    assert main(["sweep", str(sweep_file), "--out", str(out), "--workers", "0"]) == 2
    assert "already holds sweep results; pass --resume" in capsys.readouterr().err


def test_lost_runs_are_reported_missing_and_filled_in_by_resume(sweep_file, tmp_path, monkeypatch, capsys):
    def lose_every_other(todo, save, bar, workers, scheduler):
        for run in todo[::2]:
            save([(runner_module.execute_run(run), run)])
        bar.advance(len(todo[1::2]), failed=True)

    monkeypatch.setattr(runner_module, "_run_on_dask", lose_every_other)
    out = tmp_path / "out"
    assert main(["sweep", str(sweep_file), "--out", str(out), "--workers", "2", "--quiet"]) == 1
    table, _ = read_results(out)
    assert (table["status"] == "missing").sum() == 4
    assert "rerun with --resume" in capsys.readouterr().out
    monkeypatch.undo()
    assert main(["sweep", str(sweep_file), "--out", str(out), "--workers", "0", "--resume", "--quiet"]) == 0
    assert (read_results(out)[0]["status"] != "missing").all()


def test_roofline_fidelity_fills_the_same_columns_and_is_never_slower(sweep_file, tmp_path):
    run_sweep(load_sweep(sweep_file), tmp_path / "event", workers=0, quiet=True)
    run_sweep(load_sweep(sweep_file), tmp_path / "roof", workers=0, fidelity="roofline", quiet=True)
    event, _ = read_results(tmp_path / "event")
    roof, _ = read_results(tmp_path / "roof")
    assert list(event.columns) == list(roof.columns)
    assert set(roof["fidelity"]) == {"roofline"}
    ok = event["status"] == "ok"
    assert (roof.loc[ok, "total_cycles"] <= event.loc[ok, "total_cycles"]).all()
    assert (roof.loc[ok, "bytes_hbm"] == event.loc[ok, "bytes_hbm"]).all()


def test_local_dask_cluster_gives_the_same_table_as_in_process(sweep_file, tmp_path):
    assert main(["sweep", str(sweep_file), "--out", str(tmp_path / "serial"), "--workers", "0", "--quiet"]) == 0
    assert main(["sweep", str(sweep_file), "--out", str(tmp_path / "dask"), "--workers", "2", "--quiet"]) == 0
    serial = (tmp_path / "serial" / "results.parquet").read_bytes()
    assert (tmp_path / "dask" / "results.parquet").read_bytes() == serial
    manifest = json.loads((tmp_path / "dask" / "sweep.json").read_text())
    assert manifest["runs"] == 8 and "time" not in json.dumps(manifest)


@pytest.mark.skipif(importlib.util.find_spec("workloads.registry") is None,
                    reason="workload generators (workloads.registry) are not installed")
def test_a_workload_spec_is_generated_on_the_worker(tmp_path):
    path = tmp_path / "w.yaml"
    path.write_text(f"machine: {ARCH / 'h200.yaml'}\n"
                    "traces: [{family: transformer, preset: transformer-1.3b, "
                    "params: {num_layers: 1, seq_len: 64, tokens_per_step: 64}, seed: 0}]\n"
                    "axes: {components.hbm.bandwidth: [2 TB/s, 4 TB/s]}\n")
    run_sweep(load_sweep(path), tmp_path / "out", workers=0, quiet=True)
    table, _ = read_results(tmp_path / "out")
    assert list(table["status"]) == ["ok", "ok"], list(table["error"])
    assert table["trace"].iat[0] == "transformer:transformer-1.3b num_layers=1 seq_len=64 tokens_per_step=64 seed=0"
    assert set(table["throughput_unit"]) == {"token/s"}
    assert isinstance(table, pd.DataFrame)


@pytest.mark.skipif(importlib.util.find_spec("workloads.registry") is None,
                    reason="workload generators (workloads.registry) are not installed")
def test_a_bad_workload_parameter_names_the_sweep_file_and_trace(tmp_path):
    path = tmp_path / "w.yaml"
    path.write_text(f"machine: {ARCH / 'h200.yaml'}\n"
                    "traces: [{family: transformer, preset: transformer-1.3b, params: {num_layerz: 1}}]\n"
                    "axes: {components.hbm.bandwidth: [2 TB/s]}\n")
    with pytest.raises(ConfigError, match=r"w.yaml: traces\[0\]: .*num_layerz"):
        plan(load_sweep(path))


@pytest.mark.parametrize(("machine", "expected"), [
    ("worldkv-asic.yaml", 256 * 2**20 + 65536 * 64 // 8),   # banked SRAM + CAM keys
    ("systolic-128.yaml", 32 * 2**20),                        # a flat tier marked on_chip
    ("h100-sxm.yaml", 0),                                     # HBM and CPU DRAM are off chip
])
def test_on_chip_bytes_counts_srams_and_cam_keys_only(machine, expected):
    assert on_chip_bytes(Machine(load_arch(ARCH / machine)).config_dict) == expected


def test_dry_run_lists_the_points_and_checks_their_machines_without_running(tmp_path, capsys):
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(f"machine: {ARCH / 'tiny.yaml'}\ntraces: [{EXAMPLES / 'gemm.csv'}, {EXAMPLES / 'offload.csv'}]\n"
                     "axes:\n  components.hbm.bandwidth: [32 GB/s, 64 GB/s, 128 GB/s]\n"
                     "  components.link.bandwidth: [4 GB/s, 8 GB/s]\n"
                     "constraints: ['hbm.bandwidth <= 64 GB/s']\n")
    assert main(["sweep", str(sweep), "--dry-run"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "sweep sweep: 4 points (grid; 6 before constraints) x 2 traces = 8 runs, event"
    assert [line.split()[0] for line in out[2:]] == ["p0000", "p0001", "p0002", "p0003"]
    assert out[2].split() == ["p0000", "32", "GB/s", "4", "GB/s", "ok"]
    assert list(tmp_path.iterdir()) == [sweep]

    sweep.write_text(sweep.read_text().replace("4 GB/s, 8 GB/s]", "4 GB/s, -8 GB/s]"))
    assert main(["sweep", str(sweep), "--dry-run"]) == 2
    text = capsys.readouterr().out
    assert "p0001" in text and "invalid: " in text and "components.link.bandwidth: must be > 0" in text
    assert "2 of 4 points have an invalid machine" in text


def test_gdn2_decode_example_state_stops_spilling_where_the_docs_say(tmp_path):
    run_sweep(load_sweep(ROOT / "examples" / "sweeps" / "gdn2-decode-sram.yaml"), tmp_path / "out",
              workers=0, quiet=True)
    table, _ = read_results(tmp_path / "out")
    assert (table["status"] == "ok").all()
    mib = 2**20
    for trace, fits_from in (("batch-1", 32 * mib), ("batch-4", 128 * mib), ("batch-8", 256 * mib)):
        rows = table[table["trace"] == trace].set_index("components.sram.capacity")
        spilled = rows["bytes_hbm"] > rows["bytes_hbm"].min()
        # 18 MiB of state per sequence: HBM traffic is higher exactly while it does not fit.
        assert spilled.to_dict() == {float(c): c < fits_from for c in rows.index}


def test_the_sweep_command_names_the_fastest_and_the_most_frugal_point_per_trace(sweep_file, tmp_path, capsys):
    assert main(["sweep", str(sweep_file), "--out", str(tmp_path / "out"), "--workers", "0"]) == 0
    out = capsys.readouterr().out
    table, _ = read_results(tmp_path / "out")
    for _, rows in table[table["status"] == "ok"].groupby("trace_index"):
        fast = rows.loc[rows["throughput"].idxmax()]
        frugal = rows.loc[rows["energy_per_work_unit_j"].idxmin()]
        assert f"fastest      {fast['point_id']}  {fast['throughput']:.4g} token/s" in out
        assert f"least energy {frugal['point_id']}" in out
    assert "components.hbm.capacity=1 GiB, components.hbm.bandwidth=" in out


def test_a_finer_sweep_of_a_coarse_sweeps_pareto_points_matches_the_full_sweep_there(sweep_file, tmp_path):
    assert main(["sweep", str(sweep_file), "--out", str(tmp_path / "coarse"), "--fidelity", "roofline",
                 "--workers", "0", "--quiet"]) == 0
    assert main(["report", str(tmp_path / "coarse")]) == 0
    front = (tmp_path / "coarse" / "pareto_points.txt").read_text().split()
    coarse, _ = read_results(tmp_path / "coarse")
    assert front and set(front) < set(coarse["point_id"])
    assert main(["sweep", str(sweep_file), "--out", str(tmp_path / "fine"), "--workers", "0", "--quiet",
                 "--points", f"@{tmp_path / 'coarse' / 'pareto_points.txt'}"]) == 0
    fine, _ = read_results(tmp_path / "fine")
    assert sorted(fine["point_id"].unique()) == front
    run_sweep(load_sweep(sweep_file), tmp_path / "full", workers=0, quiet=True)
    full, _ = read_results(tmp_path / "full")
    pd.testing.assert_frame_equal(fine.reset_index(drop=True),
                                  full[full["point_id"].isin(front)].reset_index(drop=True))


def test_points_the_sweep_does_not_have_are_named(sweep_file, tmp_path, capsys):
    assert main(["sweep", str(sweep_file), "--dry-run", "--points", "p0001,p001"]) == 2
    assert "--points: " in (err := capsys.readouterr().err) and "no point 'p001'" in err and "did you mean" in err
    (tmp_path / "empty.txt").write_text("\n")
    assert main(["sweep", str(sweep_file), "--dry-run", "--points", f"@{tmp_path / 'empty.txt'}"]) == 2
    assert "--points: no point ids given" in capsys.readouterr().err
    assert main(["sweep", str(sweep_file), "--dry-run", "--points", f"@{tmp_path / 'nope.txt'}"]) == 2
    assert "no such --points file" in capsys.readouterr().err


def test_a_worker_builds_each_points_machine_once(tmp_path, monkeypatch):
    from hwsim.engine import machine as machine_module
    from hwsim.sweep import runner

    built = []
    real = machine_module.Machine.__init__

    def counting(self, config):
        built.append(config.name)
        real(self, config)

    monkeypatch.setattr(machine_module.Machine, "__init__", counting)
    runner._MACHINE_CACHE.clear()
    path = tmp_path / "two-traces.yaml"
    path.write_text(f"name: two\nmachine: {ROOT / 'arch_configs' / 'tiny.yaml'}\n"
                    f"traces: [{ROOT / 'traces' / 'examples' / 'gemm.csv'}, {ROOT / 'traces' / 'examples' / 'decode_state.csv'}]\n"
                    "axes:\n  components.hbm.bandwidth: [32 GB/s, 64 GB/s, 128 GB/s]\n")
    outcome = runner.run_sweep(load_sweep(path), tmp_path / "out", workers=0, quiet=True)
    assert (outcome.runs, outcome.failed) == (6, 0)
    assert len(built) == 3   # one machine per point, for both of its traces


def test_a_point_whose_values_make_an_invalid_machine_is_a_failed_run_and_the_others_run(tmp_path):
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(f"machine: {ARCH / 'tiny.yaml'}\ntraces: [{EXAMPLES / 'gemm.csv'}]\n"
                     "axes: {components.link.bandwidth: [4 GB/s, -8 GB/s]}\n")
    outcome = run_sweep(load_sweep(sweep), tmp_path / "out", workers=0, quiet=True)
    table = pd.read_parquet(outcome.table).set_index("point_id")
    assert (outcome.ran, outcome.failed) == (2, 1)
    assert table.loc["p0000", "status"] == "ok" and table.loc["p0000", "on_chip_bytes"] == on_chip_bytes(
        Machine(load_arch(ARCH / "tiny.yaml")).config_dict)
    bad = table.loc["p0001"]
    assert bad["status"] == "failed" and pd.isna(bad["on_chip_bytes"]) and bad["machine"] == ""
    assert "tiny.yaml" in bad["error"] and "components.link.bandwidth: must be > 0" in bad["error"]


def test_run_hashes_follow_the_machine_files_contents(tmp_path):
    machine = tmp_path / "m.yaml"
    machine.write_text((ARCH / "tiny.yaml").read_text())
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(f"machine: m.yaml\ntraces: [{EXAMPLES / 'gemm.csv'}]\naxes: {{components.hbm.bandwidth: [32 GB/s]}}\n")
    before = plan(load_sweep(sweep))[0]
    assert plan(load_sweep(sweep))[0].run_hash == before.run_hash
    machine.write_text(machine.read_text().replace("clock: 1 GHz", "clock: 2 GHz", 1))
    after = plan(load_sweep(sweep))[0]
    assert after.run_hash != before.run_hash and after.machine_hash != before.machine_hash


def test_a_worker_freezes_its_heap_once_after_a_first_run_of_a_trace(sweep_file, monkeypatch):
    import gc

    monkeypatch.setattr(runner_module, "_TRACE_CACHE", {})
    runs = plan(load_sweep(sweep_file))
    calls = []
    monkeypatch.setattr(gc, "collect", lambda *a: calls.append("collect") or 0)
    monkeypatch.setattr(gc, "freeze", lambda: calls.append("freeze"))
    assert runner_module._in_worker() is False            # this process is no Dask worker
    runner_module.execute_runs(runs[:1])
    assert calls == []                                    # a user's process is left alone
    monkeypatch.setattr(runner_module, "_in_worker", lambda: True)
    monkeypatch.setattr(runner_module, "_TRACE_CACHE", {})
    results = runner_module.execute_runs([runs[0], runs[2], runs[4]])   # one trace: one cold run
    assert [bool(r["timing"].get("cold")) for r in results] == [True, False, False]
    assert calls == ["collect", "freeze"]


def test_run_hashes_follow_the_machine_files_a_device_kind_names(tmp_path):
    for name in ("h200x4-pcie-kvasic.yaml", "h200x4-pcie.yaml", "h200x4.yaml", "h200.yaml", "worldkv-asic.yaml"):
        if (ARCH / name).exists():
            (tmp_path / name).write_text((ARCH / name).read_text())
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(f"machine: h200x4-pcie-kvasic.yaml\ntraces: [{EXAMPLES / 'gemm.csv'}]\n"
                     "axes: {components.hbm.bandwidth: [4 TB/s]}\n")
    before = plan(load_sweep(sweep))[0].run_hash
    kind = tmp_path / "worldkv-asic.yaml"
    text = kind.read_text()
    edited = re.sub(r"(\n\s+bandwidth:\s*)([0-9.]+)", lambda m: m.group(1) + str(float(m.group(2)) * 2), text, count=1)
    assert edited != text
    kind.write_text(edited)
    assert plan(load_sweep(sweep))[0].run_hash != before
