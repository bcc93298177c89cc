"""Run folders are written whole or not at all: killing ``hwsim run`` while it overwrites a
folder, at random moments, never leaves a folder that a reader accepts as a mix or part.

``make test`` kills a few times; ``make fuzz`` many (``HWSIM_FUZZ_KILLS``)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
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

from ..conftest import ARCH, ROOT
from ..contract import assert_user_error, run_cli

KILLS = int(os.environ.get("HWSIM_FUZZ_KILLS", "8"))


def vector_trace(path: Path, ops: int, work_units: int) -> Path:
    frame = pd.DataFrame({"op_id": np.arange(ops), "kind": "vector", "flops": 4096, "elements": 4096})
    return hwsim.write_trace(hwsim.Trace.from_frame(frame, hwsim.TraceMeta(work_unit="token", work_units=work_units)),
                             path)


#: A helper process that imports hwsim once and forks one ``hwsim run`` per request, so
#: that a run starts at once. It is a fresh interpreter: forking the test process itself,
#: which may hold threads of earlier tests (Dask's event loops), could deadlock the child.
FORKER = """
import os, sys
from hwsim.cli.main import main
for line in sys.stdin:
    command, *words = line.rstrip("\\n").split("\\t")
    if command == "run":
        pid = os.fork()
        if pid == 0:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            os._exit(main(words))
        print(pid, flush=True)
    elif command == "poll":
        pid, status = os.waitpid(int(words[0]), os.WNOHANG)
        print(-1 if pid == 0 else os.waitstatus_to_exitcode(status), flush=True)
"""
#: Seconds any one run may take before the test gives up on it (a hang fails, not waits).
RUN_TIMEOUT_S = 120


class Forker:
    """Start ``hwsim run`` processes through the helper; poll and kill them by pid."""

    def __init__(self) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        self.helper = subprocess.Popen([sys.executable, "-c", FORKER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                       text=True, env=env)

    def _ask(self, *words: str) -> int:
        self.helper.stdin.write("\t".join(words) + "\n")
        self.helper.stdin.flush()
        return int(self.helper.stdout.readline())

    def start(self, trace: Path, out: Path) -> int:
        return self._ask("run", "run", "--arch", str(ARCH / "tiny.yaml"), "--trace", str(trace), "--out", str(out),
                         "--csv", "--quiet")

    def exit_code(self, pid: int) -> int | None:
        """The run's exit status once it has ended (None while it runs)."""
        code = self._ask("poll", str(pid))
        return None if code == -1 else code

    def wait(self, pid: int) -> int:
        deadline = time.monotonic() + RUN_TIMEOUT_S
        while (code := self.exit_code(pid)) is None:
            assert time.monotonic() < deadline, f"hwsim run (pid {pid}) did not end in {RUN_TIMEOUT_S} s"
            time.sleep(0.002)
        return code

    def close(self) -> None:
        self.helper.stdin.close()
        self.helper.wait(timeout=30)


def temporaries(out: Path, pid: int | None = None) -> list[Path]:
    """Temporary folders of writes of ``out`` (by process ``pid``)."""
    return list(out.parent.glob(f".{out.name}.hwsim-*-{pid if pid is not None else ''}*"))


def wait_for_write(forker: Forker, pid: int, out: Path) -> None:
    """Wait until run ``pid`` starts writing ``out`` (its temporary folder appears) or ends."""
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while not temporaries(out, pid) and os.path.exists(f"/proc/{pid}") and _state(pid) != "Z":
        assert time.monotonic() < deadline, f"hwsim run (pid {pid}) did not start writing in {RUN_TIMEOUT_S} s"
        time.sleep(0.0005)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "Z"


def write_window(forker: Forker, trace: Path, out: Path) -> float:
    """Seconds a run of ``trace`` spends writing ``out`` (temporary folder to its end)."""
    pid = forker.start(trace, out)
    wait_for_write(forker, pid, out)
    start = time.monotonic()
    assert forker.wait(pid) == 0
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


@pytest.mark.skipif(sys.platform != "linux", reason="forks runs and reads /proc")
def test_killing_run_while_it_overwrites_a_folder_never_leaves_a_mix(tmp_path):
    small, large = vector_trace(tmp_path / "small.parquet", 1_000, 7), vector_trace(tmp_path / "large.parquet", 4_000, 11)
    sizes = {1_000: 7, 4_000: 11}
    out = tmp_path / "run"
    assert run_cli("run", "--arch", ARCH / "tiny.yaml", "--trace", small, "--out", out, "--quiet").status == 0
    forker = Forker()
    try:
        window = write_window(forker, large, out)
        assert check_readers(out, sizes) == "run of 4000 ops"
        rng = random.Random(20240)
        for i in range(KILLS):
            pid = forker.start(small if i % 2 else large, out)
            if rng.random() < 0.8:   # most kills land while the folder is written, some before
                wait_for_write(forker, pid, out)
                time.sleep(rng.uniform(0.0, window * 1.2))
            else:
                time.sleep(rng.uniform(0.0, 0.3))
            os.kill(pid, signal.SIGKILL)
            forker.wait(pid)
            check_readers(out, sizes)
    finally:
        forker.close()
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
