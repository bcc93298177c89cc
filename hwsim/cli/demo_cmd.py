"""``hwsim demo``: the main job on built-in defaults (what ``make run`` runs)."""

from __future__ import annotations

import argparse
from pathlib import Path

from hwsim.cli.output import summary_lines
from hwsim.config.machine import load_arch
from hwsim.engine.simulate import simulate
from hwsim.results import write_run
from hwsim.trace.io import read_trace

ROOT = Path(__file__).resolve().parents[2]
DEMO_MACHINES = ("h100-sxm", "h200", "systolic-128")
DEMO_TRACES = ("gemm", "offload", "decode_state")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the built-in demonstration",
                       description="Replay the example traces on the shipped machines.")
    p.add_argument("--out", default="reports/demo", help="output folder (default: reports/demo)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    for machine_name in DEMO_MACHINES:
        machine = load_arch(ROOT / "arch_configs" / f"{machine_name}.yaml")
        for trace_name in DEMO_TRACES:
            trace_path = ROOT / "traces" / "examples" / f"{trace_name}.csv"
            result = simulate(machine, read_trace(trace_path))
            folder = write_run(result, out / machine_name / trace_name)
            print("\n".join(summary_lines(result.summary, trace_name)))
            print(f"  results  -> {folder}/\n")
    print(f"demo results are in {out}/")
    return 0
