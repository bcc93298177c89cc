"""The fused-attention model against brute-force counts of its work units and key blocks."""

from __future__ import annotations

import heapq
import math

import numpy as np
import pytest

import hwsim
from hwsim.components.attention import (
    KERNELS,
    SOFTMAX_FLOPS_PER_SCORE,
    KernelOnMachine,
    attention_cycles,
)

from ..conftest import ARCH

UNITS, PEAK, EXP, FP32 = 132, 4096.0, 15.0, 256.0
ON = KernelOnMachine(efficiency=0.8, overlap=0.5, tile_cycles=3000.0)


def block_cycles(br, bc, d, passes=4, on=ON):
    matmul = passes * br * bc * d / (PEAK * on.efficiency)
    softmax = br * bc / EXP + SOFTMAX_FLOPS_PER_SCORE * br * bc / FP32
    return max(matmul, softmax) + (1 - on.overlap) * min(matmul, softmax)


def model(s, d, heads, batch, causal, kernel="flash3", pass_name="fwd", on=ON):
    pairs = s * (s + 1) // 2 if causal else s * s
    flops = (4 if pass_name == "fwd" else 10) * pairs * d * heads * batch
    return attention_cycles(np.array([s]), np.array([s]), np.array([d]), np.array([heads * batch]),
                            np.array([float(flops)]), kernel=KERNELS[kernel], pass_name=pass_name,
                            on_machine=on, units=UNITS, unit_flops_per_cycle=np.array([PEAK]),
                            exp_per_cycle=EXP, fp32_per_cycle=FP32)[0]


def lpt_schedule(unit_cycles, units):
    """Longest work first onto the least loaded unit: the makespan."""
    loads = [0.0] * units
    for work in sorted(unit_cycles, reverse=True):
        heapq.heapreplace(loads, loads[0] + work)
    return max(loads)


@pytest.mark.parametrize(("s", "d", "heads", "batch"), [(512, 128, 16, 32), (16384, 128, 16, 1),
                                                        (2048, 64, 32, 8), (4096, 256, 8, 4)])
def test_dense_attention_is_waves_of_equal_query_tiles(s, d, heads, batch):
    br, bc = KERNELS["flash3"].blocks("fwd", False, d)
    unit = math.ceil(s / bc) * block_cycles(br, bc, d) + ON.tile_cycles
    units = batch * heads * math.ceil(s / br)
    assert model(s, d, heads, batch, causal=False) == pytest.approx(math.ceil(units / UNITS) * unit)


@pytest.mark.parametrize(("s", "d", "heads", "batch"), [(512, 128, 16, 32), (16384, 128, 16, 1),
                                                        (2048, 256, 8, 8), (8192, 64, 32, 2)])
def test_causal_attention_is_within_5_percent_of_scheduling_every_visible_block(s, d, heads, batch):
    br, bc = KERNELS["flash3"].blocks("fwd", True, d)
    block = block_cycles(br, bc, d)
    tiles = [min(math.ceil(s / bc), math.ceil((i + 1) * br / bc)) * block + ON.tile_cycles
             for i in range(math.ceil(s / br))]
    exact = lpt_schedule(tiles * (batch * heads), UNITS)
    assert model(s, d, heads, batch, causal=True) == pytest.approx(exact, rel=0.05)


def test_flash3_hides_the_softmax_that_flash2_pays_at_head_dim_64():
    # At d = 64 the exponentials take about as long as the two matmuls of a block.
    flash2 = KernelOnMachine(efficiency=0.8, overlap=0.0, tile_cycles=0.0)
    flash3 = KernelOnMachine(efficiency=0.8, overlap=1.0, tile_cycles=0.0)
    for d, gain in ((64, 1.6), (256, 1.1)):
        ratio = model(8192, d, 2048 // d, 2, False, "flash2", on=flash2) / \
            model(8192, d, 2048 // d, 2, False, "flash2", on=flash3)
        assert ratio > gain


def test_decode_splits_the_keys_across_units():
    # One query per head, 32 heads: 32 query tiles cannot fill 132 units, so the key range
    # is split four ways (132 // 32) and each unit sweeps a quarter of the 32k keys.
    d, keys = 128, 32768
    br, bc = KERNELS["flash3"].blocks("fwd", False, d)
    got = attention_cycles(np.array([1]), np.array([keys]), np.array([d]), np.array([32]),
                           np.array([4.0 * keys * d * 32]), kernel=KERNELS["flash3"], pass_name="fwd",
                           on_machine=ON, units=UNITS, unit_flops_per_cycle=np.array([PEAK]),
                           exp_per_cycle=EXP, fp32_per_cycle=FP32)[0]
    rows = 64  # a tile computes at least one warpgroup's 64 rows
    expected = math.ceil(math.ceil(keys / bc) / 4) * block_cycles(rows, bc, d) + 2 * ON.tile_cycles
    assert got == pytest.approx(expected)


def test_backward_owns_key_blocks_and_counts_five_matmuls():
    s, d, heads = 4096, 128, 16
    br, bc = KERNELS["flash3"].blocks("bwd", False, d)
    unit = math.ceil(s / br) * block_cycles(bc, br, d, passes=10) + ON.tile_cycles
    units = heads * math.ceil(s / bc)
    assert model(s, d, heads, 1, False, pass_name="bwd") == pytest.approx(math.ceil(units / UNITS) * unit)


def test_the_trace_selects_the_kernel_and_an_unknown_one_is_an_error():
    machine = hwsim.load_arch(ARCH / "h100-sxm.yaml")
    op = {"op_id": 0, "kind": "attention", "m": 4096, "n": 4096, "k": 128, "batch": 16,
          "flops": 4 * 4096 * 4096 * 128 * 16}
    cycles = {kernel: hwsim.simulate(machine, hwsim.Trace.from_ops([{**op, "kernel": kernel}]))
              .records["compute_cycles"].iloc[0] for kernel in ("flash2", "flash3")}
    assert cycles["flash3"] < 0.7 * cycles["flash2"]
    with pytest.raises(hwsim.TraceError, match=r"column 'kernel': unknown attention kernel 'flash9'"):
        hwsim.simulate(machine, hwsim.Trace.from_ops([{**op, "kernel": "flash9"}]))
