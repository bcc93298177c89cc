"""The GEMM tile-and-wave model against a brute-force schedule of every tile and iteration."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import hwsim
from hwsim.components.gemm_tiles import TileShape, gemm_cycles, parse_tiles

from ..conftest import ARCH


def brute_force(m, n, k, batch, shape, units, flops_per_cycle, out_bytes, epilogue_bpc, overhead, stream_k):
    """Schedule the kernel explicitly: tiles (or their k-iterations) handed to units one by one."""
    tm = min(shape.m, max(16, 1 << max(0, math.ceil(math.log2(m)))))
    iteration = 2.0 * tm * shape.n * shape.k / flops_per_cycle
    epilogue = tm * shape.n * out_bytes / epilogue_bpc if epilogue_bpc else 0.0
    tiles = [(b, i, j) for b in range(batch) for i in range(-(-m // tm)) for j in range(-(-n // shape.n))]
    kiters = -(-k // shape.k)
    busy = [0.0] * units
    waves = -(-len(tiles) // units)
    for w in range(waves):  # data-parallel: a wave ends when its slowest unit does
        wave = tiles[w * units:(w + 1) * units]
        for u in range(len(wave)):
            busy[u] += kiters * iteration + epilogue
        top = max(busy)
        busy = [top] * units
    best = max(busy) + overhead
    if stream_k:
        work = [0] * units
        for it in range(len(tiles) * kiters):  # iterations dealt round-robin
            work[it % units] += 1
        best = min(best, max(work) * iteration + 2 * waves * epilogue + overhead)
    return best


@settings(max_examples=60, deadline=None)
@given(m=st.integers(1, 700), n=st.integers(1, 700), k=st.integers(1, 900), batch=st.integers(1, 3),
       tile=st.sampled_from([(64, 128, 64), (128, 128, 32), (128, 256, 64)]), units=st.integers(1, 12),
       epilogue=st.sampled_from([0.0, 16.0]), stream_k=st.booleans())
def test_closed_form_equals_a_brute_force_schedule(m, n, k, batch, tile, units, epilogue, stream_k):
    shape = TileShape(*tile)
    expected = brute_force(m, n, k, batch, shape, units, 512.0, 2, epilogue, 7.0, stream_k)
    got = gemm_cycles(np.array([m]), np.array([n]), np.array([k]), np.array([batch]),
                      unit_flops_per_cycle=np.array([512.0]), out_bytes=np.array([2]), shapes=(shape,),
                      units=units, min_tile_m=16, stream_k=np.array([stream_k]),
                      epilogue_bytes_per_cycle=epilogue, overhead_cycles=7.0)[0]
    assert got == pytest.approx(expected, rel=1e-12)


def test_the_fastest_candidate_tile_wins():
    args = dict(unit_flops_per_cycle=np.array([512.0]), out_bytes=np.array([2]), units=8, min_tile_m=16,
                stream_k=np.array([False]), epilogue_bytes_per_cycle=0.0, overhead_cycles=0.0)
    shapes = parse_tiles("64x128 128x256", 64, "test")
    one = [gemm_cycles(np.array([256]), np.array([384]), np.array([512]), np.array([1]), shapes=(s,), **args)[0]
           for s in shapes]
    both = gemm_cycles(np.array([256]), np.array([384]), np.array([512]), np.array([1]), shapes=shapes, **args)[0]
    assert both == min(one) < max(one)


def test_stream_k_fills_a_half_empty_wave():
    # m=256, n=k=4096 on 132 units with 128x128 tiles: 64 tiles, one half-empty wave.
    # Spreading the 64 x 64 k-iterations over all 132 units cuts the main loop about 2x.
    args = dict(unit_flops_per_cycle=np.array([4096.0]), out_bytes=np.array([2]), units=132, min_tile_m=64,
                shapes=(TileShape(128, 128, 64),), epilogue_bytes_per_cycle=0.0, overhead_cycles=0.0)
    shape = [np.array([v]) for v in (256, 4096, 4096, 1)]
    plain = gemm_cycles(*shape, stream_k=np.array([False]), **args)[0]
    split = gemm_cycles(*shape, stream_k=np.array([True]), **args)[0]
    assert plain == 64 * 512
    assert split == math.ceil(64 * 64 / 132) * 512


def test_malformed_tile_lists_are_refused():
    for text in ("128", "128xx256", "0x128", "", "128x256x"):
        with pytest.raises(ValueError):
            parse_tiles(text, 64, "components.tensor.tiles.default")


def test_a_dtype_the_engine_has_no_peak_for_is_an_error_naming_the_row():
    machine = hwsim.load_arch(ARCH / "tiny.yaml")
    trace = hwsim.Trace.from_ops([{"op_id": 0, "kind": "gemm", "m": 64, "n": 64, "k": 64, "dtype": "fp8"}],
                                 source="fp8.csv")
    with pytest.raises(hwsim.TraceError, match=r"fp8.csv: row 1 \(op_id 0\), column 'dtype': unit 'tensor' "
                                               r"has no peak for 'fp8'"):
        hwsim.simulate(machine, trace)


def test_each_dtype_runs_at_its_own_sustained_peak():
    machine = hwsim.load_arch(ARCH / "tiny.yaml", overrides={"components.tensor.efficiency_by_dtype": {"fp32": 0.5}})
    ops = [{"op_id": i, "kind": "similarity", "flops": 512 * 1000, "dtype": d, "unit": "tensor"}
           for i, d in enumerate(("bf16", "fp32"))]
    compute = hwsim.simulate(machine, hwsim.Trace.from_ops(ops)).records["compute_cycles"].tolist()
    # tiny: bf16 2048 FLOP/cycle at efficiency 1; fp32 512 FLOP/cycle at 0.5
    assert compute == [250, 2000]
