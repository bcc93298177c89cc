"""Fixtures for the report tests: small runs, their folders, and a headless browser.

The browser fixture looks for Debian's ``chromium`` (/usr/bin/chromium). When it is missing
and the environment allows it (``CI`` or ``HWSIM_INSTALL_BROWSER`` set to a true value) and
the tests run as root, it installs the package with apt-get; otherwise the browser tests
are skipped with the reason, or fail when ``HWSIM_REQUIRE_BROWSER`` is set (``.ci/run`` sets
it, so CI never passes without having rendered the pages).
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
from pathlib import Path

import pytest

import hwsim

from ..conftest import ARCH, EXAMPLES

CHROMIUM = "/usr/bin/chromium"
TRUE_VALUES = ("1", "true", "yes", "on")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def is_png(data: bytes, min_colors: int = 3) -> bool:
    """True for PNG bytes of a figure that is not blank (several distinct colours)."""
    if not data.startswith(PNG_MAGIC):
        return False
    from matplotlib.image import imread

    pixels = imread(io.BytesIO(data), format="png")
    flat = pixels.reshape(-1, pixels.shape[-1])
    return len({tuple(p) for p in flat[:: max(1, len(flat) // 20000)]}) >= min_colors


@pytest.fixture(scope="session")
def offload_h200() -> hwsim.RunResult:
    """The KV-prefetch example on the H200: a link-bound copy stream beside attention."""
    return hwsim.simulate(hwsim.load_arch(ARCH / "h200.yaml"), hwsim.read_trace(EXAMPLES / "offload.csv"))


@pytest.fixture(scope="session")
def offload_tiny() -> hwsim.RunResult:
    """The same trace on the round-numbered machine (1 GHz: one cycle is one nanosecond)."""
    return hwsim.simulate(hwsim.load_arch(ARCH / "tiny.yaml"), hwsim.read_trace(EXAMPLES / "offload.csv"))


@pytest.fixture(scope="session")
def two_streams_systolic() -> hwsim.RunResult:
    """Two streams of GEMMs on two systolic arrays, then vector work on both streams on two
    vector units (so a unit runs two ops at once), and a copy."""
    ops = []
    for i in range(12):
        ops.append({"op_id": i, "stream": f"s{i % 2}", "kind": "gemm", "m": 256 + 64 * i,
                    "n": 256, "k": 256, "src": "weights", "bytes_read": 131072, "layer": i // 2,
                    "step": i, "phase": "fwd", "tag": f"g{i}"})
    ops.append({"op_id": 12, "stream": "s0", "kind": "vector", "flops": 1 << 20, "elements": 1 << 18,
                "src": "act", "bytes_read": 1 << 19, "deps": "10;11"})
    ops.append({"op_id": 15, "stream": "s1", "kind": "vector", "flops": 1 << 21, "elements": 1 << 18,
                "src": "act", "bytes_read": 1 << 19, "deps": "10;11"})
    ops.append({"op_id": 13, "stream": "copy", "kind": "alloc", "dst": "kv_bank", "bytes_written": 1 << 22})
    ops.append({"op_id": 14, "stream": "copy", "kind": "transfer", "src": "kv_bank", "dst": "act",
                "bytes_read": 1 << 22, "deps": "13"})
    trace = hwsim.Trace.from_ops(ops, meta={"work_unit": "token", "work_units": 256})
    machine = hwsim.load_arch(ARCH / "systolic-128.yaml", overrides={"placement.kv_bank": "hbm",
                                                                         "components.vector.count": 2})
    return hwsim.simulate(machine, trace)


@pytest.fixture(scope="session")
def asic_run() -> hwsim.RunResult:
    """A GEMM, a DMA gather from the CXL bank, a similarity and a CAM search on the WorldKV
    ASIC: banked SRAM (per-access energy), DMA engines, a CAM and a similarity engine."""
    ops = [
        {"op_id": 0, "kind": "gemm", "m": 512, "n": 512, "k": 512, "src": "weights", "bytes_read": 1 << 19,
         "src2": "act", "bytes_read2": 1 << 19, "dst": "act", "bytes_written": 1 << 19},
        {"op_id": 1, "stream": "copy", "kind": "transfer", "unit": "dma", "src": "kv_bank",
         "dst": "kv_window", "bytes_read": 1 << 22},
        {"op_id": 2, "kind": "similarity", "flops": 1 << 22, "elements": 4096, "k": 64, "src": "act",
         "bytes_read": 1 << 18, "deps": "0"},
        {"op_id": 3, "kind": "cam_search", "elements": 1, "k": 64, "deps": "2"},
    ]
    return hwsim.simulate(hwsim.load_arch(ARCH / "worldkv-asic.yaml"), hwsim.Trace.from_ops(ops))


@pytest.fixture(scope="session")
def run_folder(tmp_path_factory, offload_h200) -> Path:
    """A written run folder of ``offload_h200``."""
    return hwsim.write_run(offload_h200, tmp_path_factory.mktemp("runs") / "offload-h200")


@pytest.fixture(scope="session")
def reported_run(tmp_path_factory, offload_h200) -> Path:
    """A run folder with its HTML report written (shared by the HTML and browser tests)."""
    from hwsim.reports.html import write_report

    folder = hwsim.write_run(offload_h200, tmp_path_factory.mktemp("reported") / "run")
    return write_report(folder)


def _allowed(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in TRUE_VALUES


def _find_chromium() -> str | None:
    if os.path.exists(CHROMIUM):
        return CHROMIUM
    return shutil.which("chromium")


def _unavailable(reason: str):
    """Skip, or fail when the environment requires the browser tests to run."""
    if _allowed("HWSIM_REQUIRE_BROWSER"):
        pytest.fail(f"HWSIM_REQUIRE_BROWSER is set but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def chromium() -> str:
    """Path of a headless-capable Chromium, installing Debian's package when allowed."""
    found = _find_chromium()
    if found:
        return found
    if not (_allowed("CI") or _allowed("HWSIM_INSTALL_BROWSER")):
        _unavailable("chromium is not installed (/usr/bin/chromium); install Debian's 'chromium' "
                    "package, or set HWSIM_INSTALL_BROWSER=1 (as root) to let the tests install it")
    if os.geteuid() != 0:
        _unavailable("chromium is not installed and the tests are not running as root, "
                    "so they cannot apt-get install it")
    if shutil.which("apt-get") is None:
        _unavailable("chromium is not installed and apt-get is not available to install it")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for command in (["apt-get", "update"], ["apt-get", "install", "-y", "chromium"]):
        try:
            done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=1200)
        except (OSError, subprocess.TimeoutExpired) as err:
            _unavailable(f"installing chromium failed: {' '.join(command)}: {err}")
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            _unavailable(f"installing chromium failed: {' '.join(command)}: {' | '.join(tail)}")
    found = _find_chromium()
    if not found:
        _unavailable("apt-get install chromium succeeded but no chromium binary was found")
    return found
