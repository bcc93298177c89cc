"""Time the WorldKV trace generator on a long rollout.

Generates a 10,000-video-frame lingbot-world-fast rollout (834 chunks) and prints the wall
time of each stage, the op count and the peak resident-memory growth::

    python benchmarks/bench_generators.py [--frames 10000] [--preset lingbot-world-fast]
        [--param key=value ...]
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from hwsim.trace import Trace  # noqa: E402
from workloads import worldkv  # noqa: E402
from workloads.common.spec import trace_meta  # noqa: E402
from workloads.worldkv.generator import build_ops  # noqa: E402
from workloads.worldkv.policies import plan_rollout  # noqa: E402


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (2**20 if sys.platform == "darwin" else 2**10)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=10_000, help="video frames to generate")
    parser.add_argument("--preset", default="lingbot-world-fast")
    parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    params = dict(item.split("=", 1) for item in args.param)
    params["rollout_frames"] = str(args.frames)
    spec = worldkv.load_spec(args.preset, params)
    rng = np.random.default_rng(args.seed)
    rss_before = peak_rss_mib()

    start = time.perf_counter()
    plan = plan_rollout(spec, rng)
    planned = time.perf_counter()
    frame = build_ops(spec, plan).build()
    built = time.perf_counter()
    meta = trace_meta("worldkv", spec, preset=args.preset, seed=args.seed, work_unit="frame",
                      work_units=spec.video_frames)
    trace = Trace.from_frame(frame, meta)
    validated = time.perf_counter()

    total = validated - start
    print(f"worldkv {args.preset} {spec.policy}: {spec.video_frames:,} video frames, "
          f"{spec.num_chunks:,} chunks, {trace.num_ops:,} ops")
    print(f"  kernels (trajectory, retrieval, compression) {planned - start:6.2f} s")
    print(f"  op table                                     {built - planned:6.2f} s")
    print(f"  Trace.from_frame validation                  {validated - built:6.2f} s")
    print(f"  total                                        {total:6.2f} s "
          f"({trace.num_ops / total / 1e3:,.0f} k ops/s)")
    print(f"  peak RSS growth {peak_rss_mib() - rss_before:,.0f} MiB "
          f"(trace frame {trace.to_frame().memory_usage(deep=False).sum() / 2**20:,.0f} MiB "
          f"without text payloads)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
