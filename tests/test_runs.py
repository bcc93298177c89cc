"""hwsim.runs: several runs, each machine and trace loaded once, folders written as they finish."""

from __future__ import annotations

import pytest

import hwsim
from hwsim import runs
from hwsim.errors import HwsimError
from hwsim.results import read_summary

from .conftest import ARCH, EXAMPLES


def test_run_all_writes_each_folder_and_reports_each_run(tmp_path):
    specs = [runs.RunSpec("a", ARCH / "tiny.yaml", EXAMPLES / "gemm.csv"),
             runs.RunSpec("b", ARCH / "tiny.yaml", EXAMPLES / "gemm.csv", {"components.hbm.bandwidth": "1 GB/s"})]
    seen = []
    done = runs.run_all(specs, tmp_path, on_result=lambda run: seen.append(run.spec.label))
    assert seen == ["a", "b"]
    assert [d.folder.name for d in done] == ["a", "b"]
    assert read_summary(tmp_path / "b") == done[1].result.summary
    # A slower HBM can only lengthen the run.
    assert done[1].result.summary["total_cycles"] > done[0].result.summary["total_cycles"]


def test_consecutive_runs_of_one_trace_read_it_once(tmp_path, monkeypatch):
    reads = []
    real = hwsim.trace.io.read_trace

    def counting(path):
        reads.append(path)
        return real(path)

    monkeypatch.setattr(hwsim.trace.io, "read_trace", counting)
    specs = [runs.RunSpec(name, ARCH / f"{name}.yaml", EXAMPLES / "offload.csv") for name in ("tiny", "h200")]
    runs.run_all(specs, None, allow_overflow=True)
    assert len(reads) == 1


def test_a_failing_run_is_named(tmp_path):
    specs = [runs.RunSpec("too-small", ARCH / "tiny.yaml", EXAMPLES / "gemm.csv",
                          {"components.hbm.capacity": "1 KiB"})]
    with pytest.raises(HwsimError, match="run 'too-small': .*does not fit"):
        runs.run_all(specs, tmp_path)


def test_simulate_runs_labels_machines_on_one_trace_by_name(tmp_path):
    done = runs.simulate_runs([EXAMPLES / "gemm.csv"], [ARCH / "tiny.yaml", ARCH / "h200.yaml"], tmp_path)
    assert [r.label for r in done] == ["tiny", "h200"]
    assert (tmp_path / "h200" / "records.parquet").is_file()
