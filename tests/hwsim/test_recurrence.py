"""Recurrences on a vector unit: few states cannot fill it, and each step has a latency floor."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import hwsim
from hwsim.components.vector import recurrence_cycles

from ..conftest import ARCH


def brute_force(flops, batch, n, steps, units, tile_n, rate, step_cycles):
    """Every value tile of every state, step by step, on the least loaded unit."""
    tiles = batch * -(-n // tile_n)
    per_step = max(flops / (tiles * steps) / rate, step_cycles)
    loads = [0.0] * units
    for _ in range(tiles):
        u = loads.index(min(loads))
        loads[u] += steps * per_step
    return math.ceil(max(loads) - 1e-6)


@settings(max_examples=80, deadline=None)
@given(batch=st.integers(1, 40), n=st.integers(1, 300), steps=st.integers(1, 50), units=st.integers(1, 16),
       step_cycles=st.sampled_from([0.0, 100.0]), flops=st.integers(1, 10**9))
def test_closed_form_equals_scheduling_every_tile(batch, n, steps, units, step_cycles, flops):
    got = recurrence_cycles(np.array([float(flops)]), np.array([batch]), np.array([n]), np.array([steps]),
                            units=units, tile_n=64, unit_flops_per_cycle=8.0, step_cycles=step_cycles)[0]
    assert got == brute_force(flops, batch, n, steps, units, 64, 8.0, step_cycles)


def test_one_unit_and_no_latency_is_the_plain_flop_count():
    got = recurrence_cycles(np.array([1e6]), np.array([7]), np.array([130]), np.array([9]), units=1, tile_n=64,
                            unit_flops_per_cycle=128.0, step_cycles=0.0)[0]
    assert got == math.ceil(1e6 / 128)


def test_a_chunked_state_pass_over_few_heads_is_bound_by_its_serial_steps():
    # GDN-style chunk state pass: 16 heads x 2 value tiles = 32 tiles on 132 SMs, 64 chunks,
    # each step at least 1 us: the pass cannot take less than 64 us however few its FLOPs.
    machine = hwsim.load_arch(ARCH / "h100-sxm.yaml")
    op = {"op_id": 0, "kind": "state_update", "m": 64, "n": 128, "k": 128, "batch": 16, "elements": 64,
          "flops": 10**8, "dtype": "fp32"}
    rec = hwsim.simulate(machine, hwsim.Trace.from_ops([op])).records.iloc[0]
    assert rec["compute_cycles"] == pytest.approx(64 * 1e-6 * machine.clock_hz, rel=1e-3)


def test_on_tensor_cores_a_chunk_fills_the_tiles_and_a_decoded_token_falls_back_to_fp32():
    machine = hwsim.load_arch(ARCH / "h100-sxm.yaml", overrides={"components.tensor.step_latency": "0 us"})
    tensor = machine.component("tensor").config
    op = {"kind": "state_update", "n": 128, "k": 128, "batch": 264, "elements": 10, "flops": 10**12, "dtype": "bf16"}
    ops = [{"op_id": 0, **op, "m": 64}, {"op_id": 1, **op, "m": 1}]
    compute = hwsim.simulate(machine, hwsim.Trace.from_ops(ops)).records["compute_cycles"].tolist()
    # 264 states x 2 value tiles = 528 tiles: exactly 4 waves of 132 units, no tail
    chunk = 1e12 / (tensor.peak_flops["bf16"] * tensor.efficiency) * machine.clock_hz
    fp32 = 1e12 / (tensor.peak_flops["fp32"] * tensor.efficiency_by_dtype["fp32"]) * machine.clock_hz
    assert compute[0] == pytest.approx(chunk, rel=1e-6)
    assert compute[1] == pytest.approx(fp32, rel=1e-6)   # 1/64 of the tensor rate is slower than FP32
