"""Throughput of the Gated DeltaNet-2 reference kernels against this machine's matmul speed.

Run from the repository root::

    python benchmarks/bench_kernels.py [--seq-len 8192] [--heads 4] [--dim 128] [--chunk-size 64]

Reports, for float32 ``gdn2_chunked`` at B = 1 (defaults T = 8192, H = 4, K = V = 128):

* achieved GFLOP/s, using the closed-form count ``gdn2_chunked_flops`` (WORKLOADS Eq 2.19);
* NumPy float32 1024×1024 matmul GFLOP/s measured in the same run, and the ratio
  (target ≥ 0.20);
* the token-serial ``gdn2_recurrent`` time at the same size and the chunked speed-up
  (target ≥ 3×);
* cold (first call: Numba compile or cache load) and warm (best of several) times.

Timings are wall-clock; other load on the machine inflates them, so warm figures take the
best of ``--repeats`` runs, and the chunked and recurrent runs alternate so that a passing
burst of load hits both alike. The chunked kernel spreads its sequences over the cores
(``--threads`` caps them; the recurrent kernel runs on one), and a process holding a core
slows it accordingly. Multi-threaded BLAS degrades badly when another process holds a
core; ``OPENBLAS_NUM_THREADS=1 python benchmarks/bench_kernels.py`` pins NumPy's BLAS (used
here only for the matmul reference) to one thread.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
RATIO_TARGET = 0.20
SPEEDUP_TARGET = 3.0


def make_inputs(rng: np.random.Generator, T: int, H: int, K: int, V: int) -> tuple:
    """float32 q, k (L2-normalised), v, log decays in [log 0.9, 0], sigmoid gates b, w."""
    q = rng.standard_normal((1, T, H, K), dtype=np.float32)
    k = rng.standard_normal((1, T, H, K), dtype=np.float32)
    q /= np.linalg.norm(q, axis=-1, keepdims=True)
    k /= np.linalg.norm(k, axis=-1, keepdims=True)
    v = rng.standard_normal((1, T, H, V), dtype=np.float32)
    g = np.log(rng.uniform(0.9, 1.0, (1, T, H, K))).astype(np.float32)
    b = (1 / (1 + np.exp(-rng.standard_normal((1, T, H, K))))).astype(np.float32)
    w = (1 / (1 + np.exp(-rng.standard_normal((1, T, H, V))))).astype(np.float32)
    return q, k, v, g, b, w


def timed(fn, *args, **kwargs) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - start, result


def best_of(repeats: int, fn, *args, **kwargs) -> float:
    return min(timed(fn, *args, **kwargs)[0] for _ in range(repeats))


def matmul_gflops(rng: np.random.Generator, n: int = 1024, repeats: int = 10) -> float:
    """Best-of-``repeats`` float32 n×n @ n×n throughput of NumPy's BLAS."""
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    a @ b
    return 2 * n**3 / best_of(repeats, np.matmul, a, b) / 1e9


def best_of_alternating(repeats: int, *calls) -> list[float]:
    """Best-of-``repeats`` wall time of each ``(fn, args, kwargs)``, the calls taking turns."""
    best = [float("inf")] * len(calls)
    for _ in range(repeats):
        for n, (fn, fn_args, fn_kwargs) in enumerate(calls):
            best[n] = min(best[n], timed(fn, *fn_args, **fn_kwargs)[0])
    return best


def cache_note(*dispatchers) -> str:
    hits = sum(sum(d.stats.cache_hits.values()) for d in dispatchers)
    misses = sum(sum(d.stats.cache_misses.values()) for d in dispatchers)
    return "loaded from Numba cache" if hits and not misses else "compiled"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seq-len", type=int, default=8192)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--dim", type=int, default=128, help="K = V")
    parser.add_argument("--chunk-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None,
                        help="cap on the chunked kernel's threads (default: all cores)")
    args = parser.parse_args(argv)
    # Runnable from a checkout without installing: the kernels load from the repo root.
    sys.path.insert(0, str(REPO_ROOT))
    kernels = importlib.import_module("workloads.deltanet2.kernels")
    core = importlib.import_module("workloads.deltanet2.chunked_core")
    flops = importlib.import_module("workloads.deltanet2.flops")
    if args.threads is not None:
        cores = max(1, args.threads)
        kernels._n_cores = lambda: cores
    T, H, K, C = args.seq_len, args.heads, args.dim, args.chunk_size
    rng = np.random.default_rng(args.seed)
    inputs = make_inputs(rng, T, H, K, K)

    cold_chunked, (o_c, _) = timed(kernels.gdn2_chunked, *inputs, chunk_size=C)
    chunked_note = cache_note(core.chunked_items)
    cold_recurrent, (o_r, _) = timed(kernels.gdn2_recurrent, *inputs)
    recurrent_note = cache_note(kernels._recurrent_core)
    warm_chunked, warm_recurrent = best_of_alternating(
        args.repeats, (kernels.gdn2_chunked, inputs, {"chunk_size": C}),
        (kernels.gdn2_recurrent, inputs, {}))
    matmul = matmul_gflops(rng)
    threads = kernels._chunked_workers(1, H, T, K, K)[0]

    flops_chunked = flops.gdn2_chunked_flops(T, H, K, K, C)
    flops_recurrent = flops.gdn2_recurrent_flops(T, H, K, K)
    achieved = flops_chunked / warm_chunked / 1e9
    ratio = achieved / matmul
    speedup = warm_recurrent / warm_chunked
    max_diff = float(np.abs(o_c - o_r).max() / np.abs(o_r).max())

    blas = os.environ.get("OPENBLAS_NUM_THREADS", "library default")
    print(f"gdn2 float32, B=1 T={T} H={H} K=V={K} chunk={C}, BLAS threads: {blas}, "
          f"cores: {os.cpu_count()}, chunked kernel threads: {threads}")
    print(f"  chunked   cold {cold_chunked * 1e3:8.1f} ms ({chunked_note}), "
          f"warm {warm_chunked * 1e3:8.1f} ms, {flops_chunked / 1e9:.3f} GFLOP (Eq 2.19) "
          f"-> {achieved:6.1f} GFLOP/s")
    print(f"  recurrent cold {cold_recurrent * 1e3:8.1f} ms ({recurrent_note}), "
          f"warm {warm_recurrent * 1e3:8.1f} ms, {flops_recurrent / 1e9:.3f} GFLOP "
          f"-> {flops_recurrent / warm_recurrent / 1e9:6.1f} GFLOP/s")
    print(f"  numpy float32 1024^3 matmul: {matmul:6.1f} GFLOP/s")
    print(f"  chunked / matmul throughput: {ratio:5.2f} "
          f"(target >= {RATIO_TARGET:.2f}: {'met' if ratio >= RATIO_TARGET else 'missed'})")
    print(f"  chunked speed-up over recurrent: {speedup:5.2f}x "
          f"(target >= {SPEEDUP_TARGET:.0f}x: {'met' if speedup >= SPEEDUP_TARGET else 'missed'})")
    print(f"  max |o_chunked - o_recurrent| / max |o|: {max_diff:.1e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
