"""Calibration cases: the benchmark's workload as ops, and the work its metric counts."""

from __future__ import annotations

import pytest

import hwsim
from hwsim.calibration.cases import LOOP_LAUNCHES, parse_replay


def test_flashattention_counts_causal_work_as_half_the_dense_work():
    dense = parse_replay("attention kernel=flash3 seqlen=512 head_dim=128 heads=16 batch=32", "t")
    causal = parse_replay("attention kernel=flash3 seqlen=512 head_dim=128 heads=16 batch=32 causal=true", "t")
    assert dense.flops == 4 * 32 * 512**2 * 16 * 128
    assert causal.flops == dense.flops / 2
    # the op itself carries the pairs really visible under the mask (the diagonal included)
    assert causal.ops[0]["flops"] == 4 * (512 * 513 // 2) * 128 * 16 * 32


def test_backward_attention_is_its_own_kind_with_five_matmuls():
    case = parse_replay("attention pass=bwd seqlen=1024 head_dim=64 heads=8", "t")
    assert case.ops[0]["kind"] == "attention_bwd"
    assert case.flops == 10 * 1024**2 * 64 * 8


@pytest.mark.parametrize(("kernel", "arrays"), [("copy", 2), ("mul", 2), ("add", 3), ("triad", 3), ("dot", 2)])
def test_babelstream_kernels_count_the_arrays_they_touch(kernel, arrays):
    case = parse_replay(f"stream op={kernel} elements=1000 dtype=fp64", "t")
    assert case.bytes == arrays * 8000
    op = case.ops[0]
    assert op["bytes_read"] + op.get("bytes_written", 0) == arrays * 8000


def test_a_copy_within_one_memory_counts_its_read_and_its_write():
    assert parse_replay("copy src=hbm dst=hbm bytes=100", "t").bytes == 200
    assert parse_replay("copy src=cpu_dram dst=hbm bytes=100", "t").bytes == 100


def test_a_loop_harness_replays_back_to_back_launches():
    case = parse_replay("gemm m=64 n=64 k=64", "t")
    assert len(list(case.trace("isolated").iter_batches())[0]) == 1
    assert len(list(case.trace("loop").iter_batches())[0]) == LOOP_LAUNCHES


@pytest.mark.parametrize(("spec", "message"), [
    ("", "empty replay spec"),
    ("gem m=1 n=1 k=1", "unknown replay kind 'gem' \\(did you mean 'gemm'\\?\\)"),
    ("gemm m=1 n=1", "missing k="),
    ("gemm m=1 n=1 k=0", "k must be > 0"),
    ("gemm m=1 n=1 k=x", "k='x' is not a whole number"),
    ("gemm m=1 n=1 k=1 batchh=2", "unknown field 'batchh' \\(did you mean 'batch'\\?\\)"),
    ("gemm m=1 n=1 k=1 dtype=fp7", "dtype='fp7' is not one of"),
    ("stream op=fma elements=1", "op='fma' is not one of"),
    ("attention seqlen=8 head_dim=8 heads=1 causal=yes", "causal='yes' is not one of true, false"),
])
def test_malformed_specs_name_the_row(spec, message):
    with pytest.raises(hwsim.ConfigError, match=f"set.csv: row 3, column 'replay': {message}"):
        parse_replay(spec, "set.csv: row 3, column 'replay'")
