"""The run pipeline's speed and memory, as ratios against SimPy's bare event rate.

Generates a 10,000-frame LingBot-World-Fast WorldKV rollout (1.87M ops, the trace of
``hwsim trace worldkv --preset lingbot-world-fast --param rollout_frames=10000``) and
measures, with SimPy's bare ``timeout`` rate measured in this same process, right before
and after each step, as the unit (events/s; a ratio of 1 = as many ops per second as SimPy
alone processes timeouts):

1. read + validate the Parquet rollout (ops/s)                           target >= 5x
2. the roofline level on the validated rollout (ops/s, summary only): a first run (indexes
   the trace) and a later run on a machine with another HBM bandwidth (a sweep point)
                                                                          target >= 20x
3. the event replay of ``bench_engine.py``'s 200,000-op mixed trace (ops/s)  target >= 0.5x
4. ``simulate()`` of a one-op trace: the fixed cost of a run (ms)        target <= 1 ms
5. peak memory of ``hwsim run`` on the rollout (resident, bytes per op)   target <= 300
6. a 1,000-point roofline sweep of the demo's WorldKV trace on 2 local workers against 100
   event-level points of the same sweep                                   target: faster

Timings are never tests; this script prints them. Run:
``python benchmarks/bench_pipeline.py [--frames 10000] [--skip-sweep]``
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_engine import mixed_trace, simpy_bare_rate  # noqa: E402

import hwsim  # noqa: E402

ARCH = ROOT / "arch_configs"
SIMPY_EVENTS = 200_000
#: Peak resident memory of a child process, printed by the child itself as its last line:
#: VmHWM (getrusage's maxrss would include the parent's memory before the child's exec).
PEAK_RSS = ("import re, sys\nfrom hwsim.cli.main import main\nstatus = main(sys.argv[1:]) if len(sys.argv) > 1 "
            "else 0\nstatus_text = open('/proc/self/status').read()\n"
            "print(int(re.search(r'VmHWM:\\s*(\\d+) kB', status_text).group(1)) * 1024)\nsys.exit(status)\n")


def timed(ops: int, call) -> object:
    """A step for :func:`against_simpy`: run ``call()``, count ``ops``, time it whole."""
    def step():
        call()
        return ops, None
    return step


def against_simpy(step) -> tuple[float, float]:
    """Run ``step()`` between two SimPy measurements: (ops/s, SimPy events/s). ``step``
    returns (ops, seconds) to time part of itself, or (ops, None) to be timed whole."""
    before = simpy_bare_rate(SIMPY_EVENTS)
    start = time.perf_counter()
    ops, seconds = step()
    elapsed = time.perf_counter() - start if seconds is None else seconds
    after = simpy_bare_rate(SIMPY_EVENTS)
    return ops / elapsed, (before + after) / 2


def median_ratio(step, repeats: int) -> tuple[float, float, float, list[float]]:
    """Median over ``repeats`` of (ops/s) / (SimPy rate): ratio, ops/s, SimPy rate, all ratios."""
    runs = [against_simpy(step) for _ in range(repeats)]
    ratios = sorted(rate / simpy for rate, simpy in runs)
    rate, simpy = sorted(runs, key=lambda r: r[0] / r[1])[len(runs) // 2]
    return rate / simpy, rate, simpy, ratios


def peak_rss(args: list[str]) -> int:
    """Peak resident bytes of ``python -c PEAK_RSS args`` (a fresh process)."""
    out = subprocess.run([sys.executable, "-c", PEAK_RSS, *args], cwd=ROOT, check=True, capture_output=True,
                         text=True).stdout
    return int(out.strip().splitlines()[-1])


def one_op_ms(machine, fidelity: str, calls: int = 2000) -> float:
    """Mean wall time of ``simulate()`` of a one-GEMM trace, after warming up (ms)."""
    trace = hwsim.Trace.from_ops([{"op_id": 0, "kind": "gemm", "m": 4096, "n": 4096, "k": 4096,
                                   "src": "weights", "bytes_read": 2**25}])
    for _ in range(50):
        hwsim.simulate(machine, trace, fidelity=fidelity)
    start = time.perf_counter()
    for _ in range(calls):
        hwsim.simulate(machine, trace, fidelity=fidelity)
    return (time.perf_counter() - start) / calls * 1e3


def sweep_file(folder: Path, points: int) -> Path:
    path = folder / f"worldkv-{points}.yaml"
    path.write_text(json.dumps({
        "name": f"worldkv-hbm-{points}", "machine": str(ARCH / "h200.yaml"),
        "traces": [{"family": "worldkv", "preset": "lingbot-world-fast", "label": "demo-worldkv",
                    "params": {"policy": "worldkv", "keep_ratio": "0.5", "rollout_frames": "237"}}],
        "axes": {"components.hbm.bandwidth": {"low": "2 TB/s", "high": "6 TB/s", "num": points}},
        "allow_overflow": True}))
    return path


def timed_sweep(path: Path, out: Path, fidelity: str) -> float:
    from hwsim.sweep import load_sweep, run_sweep

    start = time.perf_counter()
    outcome = run_sweep(load_sweep(path), out, workers=2, fidelity=fidelity, quiet=True)
    elapsed = time.perf_counter() - start
    if outcome.failed or outcome.missing:
        raise SystemExit(f"{path.name}: {outcome.failed} failed and {outcome.missing} missing runs")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=10_000, help="rollout length (video frames)")
    parser.add_argument("--repeats", type=int, default=3, help="measurements per ratio (median shown)")
    parser.add_argument("--mixed-ops", type=int, default=200_000, help="ops of bench_engine's mixed trace")
    parser.add_argument("--skip-sweep", action="store_true", help="leave out the sweep comparison")
    args = parser.parse_args()
    from workloads.registry import generate_trace

    h200 = hwsim.load_arch(ARCH / "h200.yaml")
    with tempfile.TemporaryDirectory(prefix="hwsim-bench-pipeline-") as tmp:
        folder = Path(tmp)
        start = time.perf_counter()
        rollout = generate_trace("worldkv", "lingbot-world-fast", {"rollout_frames": str(args.frames)}, seed=0)
        path = hwsim.write_trace(rollout, folder / "rollout.parquet")
        n = rollout.num_ops
        del rollout
        print(f"rollout: {n:,} ops ({args.frames:,} frames), generated and written in "
              f"{time.perf_counter() - start:.1f} s; {path.stat().st_size / 2**20:.1f} MiB of Parquet")

        def validate():
            trace = hwsim.read_trace(path)
            return sum(len(b) for b in trace.iter_batches()), None

        ratio, rate, simpy, ratios = median_ratio(validate, args.repeats)
        print(f"SimPy bare timeout rate     : {simpy:12,.0f} events/s (around the validation runs)")
        print(f"1. read + validate          : {rate:12,.0f} ops/s = {ratio:6.2f}x SimPy   (target >= 5; "
              f"runs {ratios[0]:.2f}-{ratios[-1]:.2f})")

        # The compiled kernels load once per process (Numba's import and on-disk cache);
        # timed apart, so the first run below measures indexing the trace, not that.
        start = time.perf_counter()
        hwsim.simulate(h200, mixed_trace(20_000), fidelity="roofline", records=False, allow_overflow=True)
        kernels_s = time.perf_counter() - start
        memory = hwsim.read_trace(path).loaded()
        cold = against_simpy(timed(n, lambda: hwsim.simulate(h200, memory, fidelity="roofline", records=False,
                                                              allow_overflow=True)))
        points = iter(f"{3 + 0.01 * i:.2f} TB/s" for i in range(1000))

        def roofline_point():
            machine = hwsim.load_arch(ARCH / "h200.yaml", overrides={"components.hbm.bandwidth": next(points)})
            start = time.perf_counter()
            hwsim.simulate(machine, memory, fidelity="roofline", records=False, allow_overflow=True)
            return n, time.perf_counter() - start

        ratio, rate, simpy, ratios = median_ratio(roofline_point, args.repeats)
        with_records = against_simpy(timed(n, lambda: hwsim.simulate(h200, memory, fidelity="roofline",
                                                                      allow_overflow=True)))
        print(f"2. roofline, a sweep point  : {rate:12,.0f} ops/s = {ratio:6.2f}x SimPy   (target >= 20, aim 50; "
              f"runs {ratios[0]:.1f}-{ratios[-1]:.1f})")
        print(f"   first run of the trace   : {cold[0]:12,.0f} ops/s = {cold[0] / cold[1]:6.2f}x SimPy   "
              f"(indexes the trace: cost signatures; the compiled kernels loaded once before, {kernels_s:.1f} s)")
        print(f"   with records in memory   : {with_records[0]:12,.0f} ops/s = {with_records[0] / with_records[1]:6.2f}x SimPy")
        event_rollout = against_simpy(timed(n, lambda: hwsim.simulate(h200, hwsim.read_trace(path), records=False,
                                                                       allow_overflow=True)))
        print(f"   event replay of the rollout (streamed, incl. validation): {event_rollout[0]:,.0f} ops/s = "
              f"{event_rollout[0] / event_rollout[1]:.2f}x SimPy")
        memory = None   # free the in-memory rollout

        h100 = hwsim.load_arch(ARCH / "h100-sxm.yaml")
        mixed = mixed_trace(args.mixed_ops)
        hwsim.simulate(h100, mixed, allow_overflow=True)   # index the trace once, as a sweep would
        ratio, rate, simpy, ratios = median_ratio(
            timed(args.mixed_ops, lambda: hwsim.simulate(h100, mixed, allow_overflow=True)), max(args.repeats, 5))
        print(f"3. event replay, mixed trace: {rate:12,.0f} ops/s = {ratio:6.3f}x SimPy   (target >= 0.5; "
              f"{args.mixed_ops:,} ops, 4 streams, records in memory; runs {ratios[0]:.3f}-{ratios[-1]:.3f})")
        mixed = None

        event_ms, roof_ms = one_op_ms(h200, "event"), one_op_ms(h200, "roofline")
        print(f"4. one-op simulate()        : {event_ms:6.3f} ms event, {roof_ms:6.3f} ms roofline (target <= 1 ms)")

        base = peak_rss([])
        run = peak_rss(["run", "--arch", str(ARCH / "h200.yaml"), "--trace", str(path), "--out",
                        str(folder / "run"), "--quiet", "--allow-overflow"])
        print(f"5. hwsim run peak memory    : {run / 2**20:,.0f} MiB = {run / n:,.0f} B per op (target <= 300); "
              f"{(run - base) / n:,.0f} B per op above a process that imports hwsim ({base / 2**20:,.0f} MiB)")

        if not args.skip_sweep:
            # Dask's import (about 0.3 s) is paid by whichever sweep runs first in this process;
            # ``hwsim sweep`` pays it for either. Loaded before both; the two sweeps alternate.
            import distributed  # noqa: F401
            times: dict[str, list[float]] = {"roofline": [], "event": []}
            for i in range(2):
                times["event"].append(timed_sweep(sweep_file(folder, 100), folder / f"event-{i}", "event"))
                times["roofline"].append(timed_sweep(sweep_file(folder, 1000), folder / f"roof-{i}", "roofline"))
            roof, event = min(times["roofline"]), min(times["event"])
            print(f"6. sweep on 2 local workers : 1,000 roofline points {roof:.2f} s, 100 event points {event:.2f} s "
                  f"(best of 2 each; the event sweep took {event / roof:.2f}x as long; target > 1)")


if __name__ == "__main__":
    main()
