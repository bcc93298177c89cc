"""Run folders are written whole or not at all: killing ``hwsim run`` while it overwrites a
folder, at random moments, never leaves a folder that a reader accepts as a mix or part.

``make test`` kills a few times; ``make fuzz`` many (``HWSIM_FUZZ_KILLS``)."""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import hwsim
from hwsim.errors import HwsimError
from hwsim.reports.compare import RunData
from hwsim.results import MANIFEST, load_run, write_run

from ..conftest import ARCH
from ..contract import assert_user_error, run_cli

KILLS = int(os.environ.get("HWSIM_FUZZ_KILLS", "8"))


def vector_trace(path: Path, ops: int, work_units: int) -> Path:
    frame = pd.DataFrame({"op_id": np.arange(ops), "kind": "vector", "flops": 4096, "elements": 4096})
    return hwsim.write_trace(hwsim.Trace.from_frame(frame, hwsim.TraceMeta(work_unit="token", work_units=work_units)),
                             path)


def _child(args: list[str]) -> None:
    from hwsim.cli.main import main

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    os._exit(main(args))


def start_run(trace: Path, out: Path) -> multiprocessing.Process:
    """``hwsim run`` in a forked process (already imported: it starts at once)."""
    process = multiprocessing.get_context("fork").Process(
        target=_child, args=(["run", "--arch", str(ARCH / "tiny.yaml"), "--trace", str(trace), "--out", str(out),
                              "--csv", "--quiet"],))
    process.start()
    return process


def temporaries(out: Path, pid: int | None = None) -> list[Path]:
    """Temporary folders of writes of ``out`` (by process ``pid``)."""
    return list(out.parent.glob(f".{out.name}.hwsim-*-{pid if pid is not None else ''}*"))


def wait_for_write(process: multiprocessing.Process, out: Path) -> float:
    """Wait until ``process`` starts writing ``out`` (its temporary folder appears) or ends;
    returns the seconds waited."""
    start = time.monotonic()
    while process.is_alive() and not temporaries(out, process.pid):
        time.sleep(0.0005)
    return time.monotonic() - start


def write_window(trace: Path, out: Path) -> float:
    """Seconds a run of ``trace`` spends writing ``out`` (temporary folder to its end)."""
    process = start_run(trace, out)
    wait_for_write(process, out)
    start = time.monotonic()
    process.join()
    assert process.exitcode == 0
    return time.monotonic() - start


def check_readers(out: Path, sizes: dict[int, int]) -> str:
    """Every reader either refuses ``out`` or sees one whole run; returns what was seen."""
    try:
        records, summary, _, meta = load_run(out)
    except HwsimError:
        assert_user_error(run_cli("report", out), out)
        return "refused"
    assert len(records) == summary["ops"] in sizes, "records and summary of different runs"
    assert meta["work_units"] == sizes[len(records)], "trace metadata of a different run"
    assert RunData.load(out).summary == summary
    return f"run of {len(records)} ops"


@pytest.mark.skipif(sys.platform != "linux", reason="forks the test process")
def test_killing_run_while_it_overwrites_a_folder_never_leaves_a_mix(tmp_path):
    small, large = vector_trace(tmp_path / "small.parquet", 1_000, 7), vector_trace(tmp_path / "large.parquet", 4_000, 11)
    sizes = {1_000: 7, 4_000: 11}
    out = tmp_path / "run"
    assert run_cli("run", "--arch", ARCH / "tiny.yaml", "--trace", small, "--out", out, "--quiet").status == 0
    window = write_window(large, out)
    assert check_readers(out, sizes) == "run of 4000 ops"
    rng = random.Random(20240)
    for i in range(KILLS):
        process = start_run(small if i % 2 else large, out)
        if rng.random() < 0.8:   # most kills land while the folder is written, some before
            wait_for_write(process, out)
            time.sleep(rng.uniform(0.0, window * 1.2))
        else:
            time.sleep(rng.uniform(0.0, 0.3))
        os.kill(process.pid, signal.SIGKILL)
        process.join()
        check_readers(out, sizes)
    # A later run cleans up what the killed ones left and writes a whole folder.
    assert run_cli("run", "--arch", ARCH / "tiny.yaml", "--trace", small, "--out", out, "--quiet").status == 0
    assert check_readers(out, sizes) == "run of 1000 ops"
    assert temporaries(out) == []


def test_a_run_replaces_a_previous_run_folder_whole(tmp_path):
    out = tmp_path / "run"
    result = hwsim.simulate(hwsim.load_arch(ARCH / "tiny.yaml"), hwsim.read_trace(ARCH.parent / "traces" / "examples" / "gemm.csv"))
    write_run(result, out, csv=True)
    (out / "index.html").write_text("stale report")
    write_run(result, out)
    assert sorted(p.name for p in out.iterdir()) == sorted([MANIFEST, "machine.resolved.yaml", "records.parquet",
                                                            "summary.json", "trace_meta.json"])


def test_a_folder_of_other_files_is_never_replaced(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    outcome = run_cli("run", "--arch", ARCH / "tiny.yaml", "--trace", ARCH.parent / "traces" / "examples" / "gemm.csv",
                      "--out", tmp_path, "--quiet")
    assert_user_error(outcome, "holds files that are not a run's")
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_a_folder_without_its_manifest_says_what_is_missing(tmp_path):
    out = tmp_path / "run"
    assert run_cli("run", "--arch", ARCH / "tiny.yaml", "--trace", ARCH.parent / "traces" / "examples" / "gemm.csv",
                   "--out", out, "--quiet").status == 0
    (out / MANIFEST).unlink()
    (out / "summary.json").unlink()
    line = assert_user_error(run_cli("report", out), out)[0]
    assert "no run.json (missing summary.json)" in line
