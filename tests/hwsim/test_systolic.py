"""Systolic-array compute cycles against a brute-force rebuild of SCALE-Sim's demand matrices.

SCALE-Sim (v2/v3) computes a layer's compute cycles as the number of rows of its operand
demand matrices: per fold, the operand stream plus the fill/drain padding, skewed across
the array. The helpers below rebuild those matrices' row counts literally (pad, concatenate,
skew) on small shapes, independently of the closed form in hwsim.components.systolic.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import hwsim
from hwsim.components.systolic import gemm_cycles

from ..conftest import ARCH


def skew_rows(matrix: np.ndarray) -> int:
    """Rows after SCALE-Sim's skew: column c is delayed by c cycles."""
    rows, cols = matrix.shape
    out = np.full((rows + cols - 1, cols), -1)
    for c in range(cols):
        out[c:c + rows, c] = matrix[:, c]
    return out.shape[0]


def demand_rows(m: int, n: int, k: int, R: int, C: int, dataflow: str) -> int:
    """Total rows of the IFMAP demand matrix over all folds, built as SCALE-Sim builds it."""
    if dataflow == "os":
        sr, sc, t = m, n, k
    elif dataflow == "ws":
        sr, sc, t = k, n, m
    else:
        sr, sc, t = k, m, n
    total = 0
    for _ in range(math.ceil(sc / C)):
        for _ in range(math.ceil(sr / R)):
            if dataflow == "os":
                fold = np.zeros((t, R))                       # T operand rows, padded to R wide
                fold = np.vstack([fold, -np.ones((C - 1, R))])  # drain of the outputs
                total += skew_rows(fold)
            else:
                fold = -np.ones((R, R))                         # stationary operand load
                fold = np.vstack([fold, np.zeros((t, R))])      # stream T rows
                fold = np.vstack([fold, -np.ones((C - 1, R))])  # drain
                total += skew_rows(fold)
    return total


SHAPES = [(1, 1, 1), (7, 5, 3), (33, 17, 9), (64, 64, 64), (65, 31, 100), (100, 7, 129)]


@pytest.mark.parametrize("dataflow", ["os", "ws", "is"])
@pytest.mark.parametrize(("m", "n", "k"), SHAPES)
@pytest.mark.parametrize(("R", "C"), [(8, 8), (16, 4), (5, 12)])
def test_fold_model_matches_rebuilt_scalesim_demand_matrix(dataflow, m, n, k, R, C):
    assert int(gemm_cycles(m, n, k, R, C, dataflow)) == demand_rows(m, n, k, R, C, dataflow)


def test_closed_forms_for_non_multiple_shapes():
    # 100x7 @ 7x... : OS folds ceil(100/8)*ceil(50/8) = 13*7 = 91, each T+R+C-2 = 7+14 = 21
    assert int(gemm_cycles(100, 50, 7, 8, 8, "os")) == 91 * 21
    # WS: Sr=K=7 -> 1 row fold, Sc=N=50 -> 7 col folds, each 2R+C+T-2 = 16+8+100-2 = 122
    assert int(gemm_cycles(100, 50, 7, 8, 8, "ws")) == 7 * 122
    # IS: Sr=K=7 -> 1, Sc=M=100 -> 13, each 2R+C+T-2 = 16+8+50-2 = 72
    assert int(gemm_cycles(100, 50, 7, 8, 8, "is")) == 13 * 72


def test_systolic_machine_charges_fold_cycles_per_batch_in_the_engine():
    machine = hwsim.load_arch(ARCH / "systolic-128.yaml", overrides={"components.mxu.count": 1})
    trace = hwsim.Trace.from_ops([{"op_id": 0, "kind": "gemm", "m": 300, "n": 200, "k": 130, "batch": 3}])
    result = hwsim.simulate(machine, trace)
    expected = 3 * int(gemm_cycles(300, 200, 130, 128, 128, "ws"))
    assert result.records["compute_cycles"].iat[0] == expected
    assert result.summary["total_cycles"] == expected


def test_unknown_dataflow_is_rejected_at_load(tmp_path):
    with pytest.raises(hwsim.ConfigError, match=r"components.mxu.dataflow: 'rs' is not one of os, ws, is"):
        hwsim.load_arch(ARCH / "systolic-128.yaml", overrides={"components.mxu.dataflow": "rs"})


def test_folds_of_one_op_spread_over_all_arrays():
    trace = hwsim.Trace.from_ops([{"op_id": 0, "kind": "gemm", "m": 300, "n": 200, "k": 130, "batch": 3}])
    folds = 3 * math.ceil(130 / 128) * math.ceil(200 / 128)   # ws: Sr = K, Sc = N; 12 folds
    per_fold = 2 * 128 + 128 + 300 - 2
    for count in (1, 2, 5):
        machine = hwsim.load_arch(ARCH / "systolic-128.yaml", overrides={"components.mxu.count": count})
        cycles = hwsim.simulate(machine, trace).records["compute_cycles"].iat[0]
        assert cycles == math.ceil(folds / count) * per_fold


def test_partition_by_ops_runs_independent_ops_on_separate_arrays():
    machine = hwsim.load_arch(ARCH / "systolic-128.yaml", overrides={"components.mxu.partition": "ops"})
    one = {"op_id": 0, "stream": "a", "kind": "gemm", "m": 128, "n": 128, "k": 128}
    two = {"op_id": 1, "stream": "b", "kind": "gemm", "m": 128, "n": 128, "k": 128}
    alone = hwsim.simulate(machine, hwsim.Trace.from_ops([one])).summary["total_cycles"]
    both = hwsim.simulate(machine, hwsim.Trace.from_ops([one, two])).summary["total_cycles"]
    assert both == alone  # count: 2 arrays, one op each
