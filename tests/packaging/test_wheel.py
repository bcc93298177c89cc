"""The wheel works outside a clone: built from the repository, installed in a fresh virtual
environment and run from an empty directory.

The fresh environment gets the wheel alone (``--no-deps``); its dependencies come from the
suite's own environment through a ``.pth`` file, which adds those folders to ``sys.path``
after the fresh site-packages (without running the ``.pth`` files inside them, so the
editable install of the clone stays invisible). That keeps the test to about a minute.
"""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from ..conftest import ROOT

#: What a build must not copy from the working tree: top-level outputs, and caches anywhere.
TOP_LEVEL_IGNORED = {".venv", ".git", "build", "dist", "reports", "out"}
CACHES = shutil.ignore_patterns("*.egg-info", "__pycache__", ".pytest_cache", ".hypothesis", ".ruff_cache",
                                "*.nbi", "*.nbc")


def ignored(folder: str, names: list[str]) -> set[str]:
    top = TOP_LEVEL_IGNORED.intersection(names) if Path(folder) == ROOT else set()
    return top | set(CACHES(folder, names))


def run(command: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: int = 600) -> str:
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(command)}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout + done.stderr


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> tuple[Path, str]:
    """The wheel built from a copy of the source tree, and the build's output."""
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "source"
    shutil.copytree(ROOT, source, ignore=ignored)
    log = run([sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "--no-build-isolation",
               "-w", str(tmp / "dist"), str(source)], cwd=tmp)
    (built,) = (tmp / "dist").glob("hwsim-*.whl")
    return built, log


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """A fresh virtual environment with the wheel installed: its bin folder and environment."""
    venv = tmp_path_factory.mktemp("venv") / "fresh"
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=venv.parent)
    python = venv / "bin" / "python"
    purelib = Path(run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                       cwd=venv.parent).strip())
    ours = [sysconfig.get_path("purelib"), *site.getsitepackages()]
    (purelib / "suite_dependencies.pth").write_text("".join(f"{p}\n" for p in dict.fromkeys(ours)))
    run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index",
         str(wheel[0])], cwd=venv.parent)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return venv / "bin", env


def test_the_build_prints_no_packaging_warnings(wheel):
    _, log = wheel
    noisy = [line for line in log.splitlines()
             if any(word in line for word in ("Deprecat", "BuildBackendWarning", "SetuptoolsWarning",
                                              "warning: no files found"))]
    assert noisy == []


def test_the_wheel_carries_machines_examples_license_and_py_typed(wheel):
    names = set(zipfile.ZipFile(wheel[0]).namelist())
    for path in ROOT.glob("arch_configs/*.yaml"):
        assert f"hwsim/_shipped/arch_configs/{path.name}" in names
    for path in [*ROOT.glob("traces/examples/*.csv"), *ROOT.glob("examples/sweeps/*.yaml")]:
        assert f"hwsim/_shipped/{path.relative_to(ROOT).as_posix()}" in names
    assert "hwsim/py.typed" in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    (metadata,) = [n for n in names if n.endswith(".dist-info/METADATA")]
    text = zipfile.ZipFile(wheel[0]).read(metadata).decode()
    assert "License-Expression: Apache-2.0" in text


def test_the_installed_commands_work_from_an_empty_directory(installed, tmp_path):
    bin_dir, env = installed
    hwsim = str(bin_dir / "hwsim")
    cwd = tmp_path / "empty"
    cwd.mkdir()
    assert run([hwsim, "--version"], cwd, env).strip() == "hwsim 0.1.0"

    listed = run([hwsim, "machines", "--paths"], cwd, env)
    shipped = sorted(p.stem for p in ROOT.glob("arch_configs/*.yaml"))
    assert [line.split()[0] for line in listed.splitlines() if not line.startswith(" ")] == shipped
    root = Path(run([str(bin_dir / "python"), "-c",
                     "from hwsim.config.catalog import shipped_root; print(shipped_root())"], cwd, env).strip())
    assert root.parts[-2:] == ("hwsim", "_shipped") and "site-packages" in root.parts  # the wheel's copy

    out = run([hwsim, "run", "--arch", "h200", "--trace", str(root / "traces/examples/offload.csv"),
               "--out", "h200-run", "--quiet"], cwd, env)
    assert "h200-run" in out
    summary = json.loads((cwd / "h200-run" / "summary.json").read_text())
    assert summary["machine"] == "h200" and summary["total_cycles"] > 0

    # A sweep's relative paths (machine: ../../arch_configs/...) resolve inside the package.
    points = run([hwsim, "sweep", str(root / "examples/sweeps/systolic-array-size.yaml"), "--dry-run"], cwd, env)
    assert "points" in points

    run([hwsim, "demo", "--quiet", "--out", "demo"], cwd, env, timeout=900)
    page = (cwd / "demo" / "index.html").read_text()
    assert "<h1>" in page and (cwd / "demo" / "results.parquet").is_file()
    assert sorted(p.name for p in cwd.iterdir()) == ["demo", "h200-run"]  # nothing written elsewhere
