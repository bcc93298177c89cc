"""Shared fixtures: the repository root, the tiny machine, a tiny trace and an rng."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import hwsim

ROOT = Path(__file__).resolve().parents[1]
ARCH = ROOT / "arch_configs"
EXAMPLES = ROOT / "traces" / "examples"


@pytest.fixture
def root() -> Path:
    return ROOT


@pytest.fixture
def tiny():
    """The round-numbered test machine (1 GHz; HBM 64 B/cycle; link 8 B/cycle per direction)."""
    return hwsim.load_arch(ARCH / "tiny.yaml")


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture
def tiny_trace() -> hwsim.Trace:
    return hwsim.Trace.from_ops([
        {"op_id": 0, "kind": "gemm", "m": 64, "n": 64, "k": 64, "src": "weights", "bytes_read": 8192},
        {"op_id": 1, "kind": "vector", "flops": 4096, "elements": 4096, "deps": "0"},
    ])
