"""Run the demo's experiments and collect one tidy row per run."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pandas as pd

from hwsim.atomic import atomic_path
from hwsim.components.facts import read_facts
from hwsim.demo.experiments import Run, all_runs
from hwsim.results import RunResult
from hwsim.runs import CompletedRun, RunSpec, Workload
from hwsim.runs import run_all as run_all_specs

KV_SPACES = ("kv_window", "kv_bank", "kv_cache")


def kv_timeline(records: pd.DataFrame, clock_hz: float) -> pd.DataFrame:
    """KV bytes allocated over time: columns seconds, working (the attention window, retrieved
    chunks and context caches the accelerator attends over) and bank (WorldKV's chunk bank)."""
    tags = records["tag"].astype(str)
    moves = records[(records["alloc_bytes"] != 0) & tags.str.contains("kv")]
    ordered = moves.sort_values(["start_cycle", "op_id"], kind="stable")
    bank = ordered["tag"].astype(str).str.startswith("kv_bank").to_numpy()
    delta = ordered["alloc_bytes"].to_numpy()
    return pd.DataFrame({"seconds": ordered["start_cycle"].to_numpy() / clock_hz,
                         "working": (delta * ~bank).cumsum(), "bank": (delta * bank).cumsum()})


def row_of(run: Run, result: RunResult) -> dict[str, Any]:
    """The tidy row of one run: its identity and the metrics the report compares."""
    s, records = result.summary, result.records
    retrieval = records[records["tag"].astype(str) == "retrieve_gather"]
    kv = kv_timeline(records, s["clock_hz"])
    # Bytes over the links that reach the tier holding the KV bank (the host link; on a
    # machine of several devices, every device's: "d2.cpu_dram" is device 2's cpu_dram).
    bank_tier = result.machine["placement"].get("kv_bank", "")
    host_links = [name for name, record in read_facts(result.machine).items()
                  if record.role == "link" and bank_tier in {
                      re.sub(r"^d\d+\.", "", tier) for tier in result.machine["components"][name].get("between", ())}]
    return {
        "experiment": run.experiment, "label": run.label, "machine": run.machine, "x": run.x,
        "total_cycles": s["total_cycles"], "seconds": s["seconds"], "work_unit": s["work_unit"],
        "work_units": s["work_units"], "throughput": s["throughput"], "throughput_unit": s["throughput_unit"],
        "energy_j": s["energy"]["total_j"], "energy_per_unit_j": s["energy_per_work_unit_j"],
        "busiest": s["busiest_component"], "busiest_utilization": s["busiest_utilization"],
        "peak_kv_bytes": float(kv["working"].max()) if len(kv) else 0.0,
        "peak_bank_bytes": float(kv["bank"].max()) if len(kv) else 0.0,
        "retrieval_bytes": int(retrieval["bytes_read"].sum()),
        "host_link_bytes": int(sum(s["links"][name]["bytes"] for name in host_links)),
        "overflow": ",".join(s["overflow"]),
        "spills": ",".join(f"{k}->{v['to']}" for k, v in s["spills"].items()),
        "folder": f"runs/{run.folder}",
    }


def run_all(out: Path, runs: list[Run] | None = None, quiet: bool = False) -> pd.DataFrame:
    """Generate, simulate and write every run; returns the tidy table (also written)."""
    runs = all_runs() if runs is None else runs
    specs = [RunSpec(run.folder, run.machine, Workload(run.family, run.preset, run.params, 0),
                     run.overrides) for run in runs]

    def keep_kv_timeline(done: CompletedRun) -> None:
        timeline = kv_timeline(done.result.records, done.result.summary["clock_hz"])
        timeline.to_parquet(done.folder / "kv_timeline.parquet")

    done = run_all_specs(specs, out / "runs", allow_overflow=True, quiet=quiet, what="demo runs",
                         on_result=keep_kv_timeline)
    table = pd.DataFrame([row_of(run, completed.result) for run, completed in zip(runs, done, strict=True)])
    with atomic_path(out / "results.parquet") as tmp:
        table.to_parquet(tmp, index=False)
    with atomic_path(out / "results.csv") as tmp:
        table.to_csv(tmp, index=False)
    return table
