"""Throughput of the Gated DeltaNet-2 reference kernels, the same thread count on both sides.

Run from the repository root::

    python benchmarks/bench_kernels.py [--threads 1] [--seq-len 8192] [--heads 4] [--dim 128]

Reports, for float32 kernels at B = 1 (defaults T = 8192, H = 4, K = V = 128, C = 64):

* the chunked kernel's achieved GFLOP/s, using the closed-form count ``gdn2_chunked_flops``
  (WORKLOADS Eq 2.19), against NumPy's float32 1024×1024 matmul GFLOP/s measured in the
  same run with the same threads (target ≥ 0.20);
* the token-serial ``gdn2_recurrent`` time and the chunked speed-up over it;
* cold (first call: Numba compile or cache load) and warm (best of several) times.

``--threads N`` (default 1) gives both sides N threads: BLAS (which runs the chunked
kernel's and the reference matmul's products) gets ``OPENBLAS_NUM_THREADS=N`` before NumPy
loads, and the recurrent kernel spreads its sequences over N threads (on a shared 2-core
machine two BLAS threads slow the chunked form's small products down). Timings are
wall-clock; other load on the machine inflates them, so warm figures take the best of
``--repeats`` runs, and the two kernels alternate so that a passing burst of load hits
both alike.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
RATIO_TARGET = 0.20


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1, help="threads on each side")
    parser.add_argument("--seq-len", type=int, default=8192)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--dim", type=int, default=128, help="K = V")
    parser.add_argument("--chunk-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def make_inputs(np, rng, T: int, H: int, K: int, V: int) -> tuple:
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
    args = parse_args(argv)
    threads = max(1, args.threads)
    os.environ["OPENBLAS_NUM_THREADS"] = str(threads)  # before NumPy loads its BLAS
    import numpy as np

    # Runnable from a checkout without installing: the kernels load from the repo root.
    sys.path.insert(0, str(REPO_ROOT))
    from workloads.deltanet2 import flops, kernels

    kernels._n_cores = lambda: threads
    kernels._MIN_PARALLEL_WORK = 0
    T, H, K, C = args.seq_len, args.heads, args.dim, args.chunk_size
    rng = np.random.default_rng(args.seed)
    inputs = make_inputs(np, rng, T, H, K, K)
    a = rng.standard_normal((1024, 1024), dtype=np.float32)
    b = rng.standard_normal((1024, 1024), dtype=np.float32)
    a @ b

    cold_chunked, (o_c, _) = timed(kernels.gdn2_chunked, *inputs, chunk_size=C)
    cold_recurrent, (o_r, _) = timed(kernels.gdn2_recurrent, *inputs)
    recurrent_note = cache_note(kernels._recurrent_items)
    chunked, recurrent, matmul_s = best_of_alternating(
        args.repeats, (kernels.gdn2_chunked, inputs, {"chunk_size": C}),
        (kernels.gdn2_recurrent, inputs, {}), (np.matmul, (a, b), {}))
    matmul = 2 * 1024**3 / matmul_s / 1e9
    flops_chunked = flops.gdn2_chunked_flops(T, H, K, K, C)
    flops_recurrent = flops.gdn2_recurrent_flops(T, H, K, K)
    achieved = flops_chunked / chunked / 1e9
    ratio = achieved / matmul
    max_diff = float(np.abs(o_c - o_r).max() / np.abs(o_r).max())

    print(f"gdn2 float32, B=1 T={T} H={H} K=V={K} chunk={C}; {threads} thread"
          f"{'s' if threads > 1 else ''} on both sides (BLAS and recurrent kernel); "
          f"cores: {os.cpu_count()}")
    print(f"  chunked   cold {cold_chunked * 1e3:8.1f} ms (NumPy, nothing to compile), "
          f"warm {chunked * 1e3:8.1f} ms, {flops_chunked / 1e9:.3f} GFLOP (Eq 2.19) "
          f"-> {achieved:6.1f} GFLOP/s")
    print(f"  recurrent cold {cold_recurrent * 1e3:8.1f} ms ({recurrent_note}), "
          f"warm {recurrent * 1e3:8.1f} ms, {flops_recurrent / 1e9:.3f} GFLOP "
          f"-> {flops_recurrent / recurrent / 1e9:6.1f} GFLOP/s")
    print(f"  numpy float32 1024^3 matmul: {matmul:6.1f} GFLOP/s")
    print(f"  chunked / matmul throughput: {ratio:5.2f} "
          f"(target >= {RATIO_TARGET:.2f}: {'met' if ratio >= RATIO_TARGET else 'missed'})")
    print(f"  chunked speed-up over recurrent: {recurrent / chunked:5.2f}x")
    print(f"  max |o_chunked - o_recurrent| / max |o|: {max_diff:.1e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
