"""PyTorch profiler traces: kernels matched to operators, compared and fitted.

The traces here are written by the tests in the Chrome-trace layout torch.profiler exports
(``traceEvents`` of complete ``X`` events: ``cpu_op`` operators with ``Input Dims``, ``Input
type`` and ``Concrete Inputs``, ``cuda_runtime`` launches with a ``correlation``, and GPU
``kernel`` / ``gpu_memcpy`` events carrying the operator's ``External id``).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import hwsim
from hwsim.calibration import kineto
from hwsim.calibration.fit import Parameter
from hwsim.calibration.table import machine_file, predicted_seconds
from hwsim.cli.main import main
from hwsim.engine.machine import Machine

BF16 = "c10::BFloat16"


class ProfileWriter:
    """Builds a profiler trace event by event."""

    def __init__(self):
        self.events, self.next_id, self.ts = [], 1, 0.0

    def op(self, name, dims, types, kernel_us, concrete=None, via_runtime=False, kernel="k"):
        eid = corr = self.next_id
        self.next_id += 1
        args = {"External id": eid, "Input Dims": dims, "Input type": types}
        if concrete is not None:
            args["Concrete Inputs"] = concrete
        self.events.append({"ph": "X", "cat": "cpu_op", "name": name, "pid": 1, "tid": 1, "ts": self.ts,
                            "dur": 20.0, "args": args})
        self.events.append({"ph": "X", "cat": "cuda_runtime", "name": "cudaLaunchKernel", "pid": 1, "tid": 1,
                            "ts": self.ts + 1, "dur": 3.0, "args": {"External id": eid, "correlation": corr}})
        kernel_args = {"correlation": corr, "device": 0, "stream": 7}
        if not via_runtime:
            kernel_args["External id"] = eid
        self.events.append({"ph": "X", "cat": "kernel", "name": kernel, "pid": 0, "tid": 7,
                            "ts": self.ts + 5, "dur": kernel_us, "args": kernel_args})
        self.ts += 100

    def memcpy(self, nbytes, us):
        self.events.append({"ph": "X", "cat": "gpu_memcpy", "name": "Memcpy HtoD (Pinned -> Device)", "pid": 0,
                            "tid": 7, "ts": self.ts, "dur": us, "args": {"bytes": nbytes, "device": 0}})
        self.ts += 100

    def write(self, path):
        path.write_text(json.dumps({"schemaVersion": 1, "traceEvents": self.events}))
        return path


def mixed_profile(tmp_path, us=10.0):
    w = ProfileWriter()
    w.op("aten::linear", [[8, 512, 1024], [4096, 1024], [4096]], [BF16, BF16, BF16], us)
    w.op("aten::addmm", [[4096], [512, 1024], [1024, 4096]], [BF16, BF16, BF16], us, via_runtime=True)
    w.op("aten::bmm", [[4, 128, 64], [4, 64, 256]], [BF16, BF16], us)
    w.op("aten::_scaled_dot_product_flash_attention", [[2, 16, 2048, 128]] * 3, [BF16] * 3, us,
         concrete=["", "", "", "0.", "True", "False", ""])
    w.op("aten::add_", [[1024, 1024], [1024, 1024]], ["float", "float"], us)
    w.memcpy(1 << 20, us)
    w.events.append({"ph": "X", "cat": "kernel", "name": "ncclKernel", "pid": 0, "tid": 8, "ts": 1.0,
                     "dur": 50.0, "args": {"correlation": 999}})
    return w.write(tmp_path / "trace.json")


def test_kernels_are_matched_to_their_operators_shapes(tmp_path):
    profile = kineto.read_profile(mixed_profile(tmp_path))
    ops = [m.case.ops[0] for m in profile.kernels]
    linear, addmm, bmm, attention, add, copy = ops
    assert (linear["kind"], linear["m"], linear["k"], linear["n"]) == ("gemm", 4096, 1024, 4096)
    assert (addmm["m"], addmm["k"], addmm["n"], addmm["dtype"]) == (512, 1024, 4096, "bf16")
    assert (bmm["batch"], bmm["m"], bmm["k"], bmm["n"]) == (4, 128, 64, 256)
    assert attention["kind"] == "attention" and attention["batch"] == 32 and attention["k"] == 128
    assert attention["flops"] == 4 * (2048 * 2049 // 2) * 128 * 32       # is_causal = True
    assert (add["kind"], add["dtype"], add["bytes_read"]) == ("elementwise", "fp32", 2 * 4 * 2**20)
    assert (copy["kind"], copy["src"], copy["dst"], copy["bytes_read"]) == ("transfer", "cpu_dram", "hbm", 2**20)
    assert list(profile.unmatched) == ["no operator recorded for the kernel"]
    assert profile.unmatched["no operator recorded for the kernel"] == [pytest.approx(50e-6)]


def test_a_profile_measured_on_a_slower_machine_is_fitted_back(tmp_path):
    # Kernel times written by hwsim itself on an H100 whose tensor cores sustain 0.6 and whose
    # HBM reads 0.7: the fit, started from the shipped constants, must find both again.
    truth = Machine(hwsim.load_arch(machine_file("h100-sxm"), overrides={
        "components.tensor.efficiency": 0.6, "components.hbm.efficiency": 0.7,
        "components.hbm.write_efficiency": 0.7}))
    w = ProfileWriter()
    shapes = [(4096, 4096, 4096), (8192, 8192, 2048), (2048, 4096, 8192), (16384, 1024, 4096)]
    for m, n, k in shapes:
        w.op("aten::mm", [[m, k], [k, n]], [BF16, BF16], 1.0)
    for size in (1 << 26, 1 << 27, 1 << 28):
        w.op("aten::add", [[size], [size]], [BF16, BF16], 1.0)
    draft = kineto.read_profile(w.write(tmp_path / "draft.json"))
    seconds = predicted_seconds(truth, draft.kernels)
    for event, s in zip([e for e in w.events if e["cat"] == "kernel"], seconds, strict=True):
        event["dur"] = s * 1e6
    profile = kineto.read_profile(w.write(tmp_path / "measured.json"))
    # (reads and writes of element-wise kernels only fix a blend of the two fractions: keep
    # the write fraction at its true value and fit the read one)
    params = [Parameter("components.tensor.efficiency", 0.3, 1.0), Parameter("components.hbm.efficiency", 0.3, 1.0)]
    result = kineto.fit_profile(profile, machine_file("h100-sxm"), params,
                                overrides=["components.hbm.write_efficiency=0.7"])
    assert result.values["components.tensor.efficiency"] == pytest.approx(0.6, rel=0.02)
    assert result.values["components.hbm.efficiency"] == pytest.approx(0.7, rel=0.05)
    assert result.loss_after < 0.01 < result.loss_before


def test_calibrate_profile_prints_per_kind_and_writes_an_overlay(tmp_path, capsys):
    trace = mixed_profile(tmp_path, us=25.0)
    out = tmp_path / "fitted.yaml"
    assert main(["calibrate", "--profile", str(trace), "--arch", str(machine_file("h100-sxm")),
                 "--fit", str(out), "--param", "components.tensor.efficiency=0.3:1"]) == 0
    printed = capsys.readouterr().out
    assert "6 kernels matched" in printed and "not matched: 1 kernels" in printed
    for kind in ("gemm", "attention", "elementwise", "transfer"):
        assert f"\n{kind}" in printed
    fitted = hwsim.load_arch(out)
    assert fitted.name == "h100-sxm" and 0.3 <= fitted.component("tensor").config.efficiency <= 1


@pytest.mark.parametrize("content", ["{not json", '{"traceEvents": 3}',
                                     '{"traceEvents": [{"ph": "X", "cat": "cpu_op", "name": "aten::mm"}]}'])
def test_a_file_that_is_no_profile_is_one_error_line(tmp_path, capsys, content):
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    assert main(["calibrate", "--profile", str(bad), "--arch", str(machine_file("h100-sxm"))]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"hwsim: error: {bad}: ")


def test_kernel_harness_counts_device_time_only(tmp_path):
    profile = kineto.read_profile(mixed_profile(tmp_path))
    machine = Machine(hwsim.load_arch(machine_file("h100-sxm")))
    device = predicted_seconds(machine, profile.kernels)
    assert np.all(device > 0)
    # a host launch latency is part of an isolated timing, not of a kernel's profiled duration
    gemm = [m for m in profile.kernels if m.category == "gemm"][0]
    assert device[0] < hwsim.simulate(machine, gemm.case.trace("isolated")).summary["seconds"]
