"""``hwsim validate``: every numeric check passes, and a broken kernel makes it fail."""

from __future__ import annotations

import numpy as np
import pytest

from hwsim.cli.main import main
from workloads import validate
from workloads.deltanet2 import kernels as dn

from ..conftest import ROOT


def test_every_check_passes_and_the_table_lists_them(capsys):
    assert main(["validate"]) == 0
    out = capsys.readouterr().out
    assert "gdn2 chunked == recurrent (float32, T=103, partial chunk, with initial state)" in out
    assert "worldkv window error vs full KV, retrieval on, rho=0.25" in out
    assert "hrm numba kernel equals its numpy twin" in out
    assert "kv int2: oscar error / plain per-channel error" in out
    assert out.strip().endswith("0 failed")
    # The README shows part of this table: every line it shows is a line printed here.
    readme = (ROOT / "README.md").read_text()
    shown = readme[readme.index("every check holds for every seed. Its tail:"):]
    shown = shown[shown.index("```\n") + 4:]
    shown = shown[:shown.index("```")].splitlines()
    printed = out.splitlines()
    assert len(shown) >= 10 and [line for line in shown if line not in printed] == []


@pytest.mark.parametrize("seed", [3, 1, 4, 16, 19, 28])
def test_retrieval_narrows_the_gap_to_full_kv_and_compression_widens_it(seed):
    # Seeds 1, 4, 16, 19 and 28 once gave retrieval-on exactly the retrieval-off error.
    checks = {c.name: c.error for c in validate.worldkv_fidelity_checks(np.random.default_rng(seed))}
    off = checks["worldkv window error vs full KV, retrieval off (sink + recent)"]
    on = [checks[f"worldkv window error vs full KV, retrieval on, rho={rho}"] for rho in (0.25, 0.5, 1.0)]
    assert on[2] < on[1] < on[0] < 0.9 * off


def test_validate_passes_for_every_seed(monkeypatch):
    # The FLOP checks draw no random numbers: run them once (above), not per seed.
    monkeypatch.setattr(validate, "flop_checks", lambda: [])
    failed = {seed: [c.name for c in validate.run_checks(seed) if not c.passed] for seed in range(31)}
    assert {seed: names for seed, names in failed.items() if names} == {}


def test_validate_cli_takes_the_seed(capsys):
    assert main(["validate", "--seed", "19"]) == 0
    assert capsys.readouterr().out.strip().endswith("0 failed")


def test_a_broken_chunked_kernel_fails_validation(monkeypatch, capsys):
    real = dn.gdn2_chunked

    def off_by_a_little(*args, **kwargs):
        o, s = real(*args, **kwargs)
        return o * (1 + 1e-6), s

    monkeypatch.setattr(dn, "gdn2_chunked", off_by_a_little)
    monkeypatch.setattr(validate, "worldkv_fidelity_checks", lambda rng: [])
    monkeypatch.setattr(validate, "flop_checks", lambda: [])
    assert main(["validate"]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "gdn2 chunked == recurrent (float64" in out
