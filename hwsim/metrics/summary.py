"""The run summary: totals, throughput in the workload's units, bandwidth, utilisation, energy.

Computed from the records DataFrame plus the machine's resolved config (a plain dict) and
the per-channel totals the replay accumulated; it never touches simulator objects.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

PJ_PER_J = 1e12


def peak_occupancy(records: pd.DataFrame) -> dict[str, float]:
    """Peak bytes allocated per tier, from the alloc/free records in simulated-time order."""
    moves = records[records["alloc_bytes"] != 0]
    peaks: dict[str, float] = {}
    if moves.empty:
        return peaks
    ordered = moves.sort_values(["start_cycle", "op_id"], kind="stable")
    for tier, group in ordered.groupby("alloc_tier", observed=True, sort=True):
        if tier == "":
            continue
        running = np.cumsum(group["alloc_bytes"].to_numpy())
        peaks[str(tier)] = float(max(running.max(), 0))
    return peaks


def occupancy_timeline(records: pd.DataFrame, tier: str) -> pd.DataFrame:
    """Bytes allocated in ``tier`` after every alloc/free: columns cycle, bytes."""
    moves = records[(records["alloc_bytes"] != 0) & (records["alloc_tier"] == tier)]
    ordered = moves.sort_values(["start_cycle", "op_id"], kind="stable")
    return pd.DataFrame({"cycle": ordered["start_cycle"].to_numpy(),
                         "bytes": np.cumsum(ordered["alloc_bytes"].to_numpy())})


def summarize(records: pd.DataFrame, machine: dict[str, Any], trace_meta: dict[str, Any],
              channel_busy: dict[str, int], channel_bytes: dict[str, int]) -> dict[str, Any]:
    """Build the summary dict (JSON-ready, deterministic key order when dumped sorted)."""
    clock = float(machine["clock_hz"])
    total_cycles = int(records["end_cycle"].max()) if len(records) else 0
    seconds = total_cycles / clock
    work_units = float(trace_meta.get("work_units") or 0.0)
    unit_name = trace_meta.get("work_unit") or "op"
    if work_units <= 0:
        work_units, unit_name = float(len(records)), "op"
    throughput = work_units / seconds if seconds > 0 else 0.0
    components = machine["components"]

    units = {}
    for name, cfg in components.items():
        if "memory" not in cfg:
            continue
        mine = records[records["component"] == name]
        instances = int(cfg.get("count", 1))
        busy = int((mine["end_cycle"] - mine["start_cycle"]).sum())
        flops = int(mine["flops"].sum())
        units[name] = {
            "kind": cfg["kind"],
            "ops": int(len(mine)),
            "busy_cycles": busy,
            "utilization": busy / (total_cycles * instances) if total_cycles else 0.0,
            "flops": flops,
            "achieved_flops_per_s": flops / seconds if seconds else 0.0,
        }

    tiers, links = {}, {}
    peaks = peak_occupancy(records)
    for name, cfg in components.items():
        if cfg["kind"] == "link":
            directions = {}
            for channel, nbytes in channel_bytes.items():
                if channel.startswith(f"{name}:"):
                    busy = channel_busy[channel]
                    directions[channel.split(":", 1)[1]] = {
                        "bytes": int(nbytes),
                        "bandwidth_bytes_per_s": nbytes / seconds if seconds else 0.0,
                        "utilization": busy / total_cycles if total_cycles else 0.0,
                    }
            links[name] = {"bytes": int(sum(d["bytes"] for d in directions.values())),
                           "directions": directions}
        elif "capacity" in cfg and "bandwidth" in cfg:
            nbytes = int(channel_bytes.get(name, 0))
            peak = peaks.get(name, 0.0)
            tiers[name] = {
                "bytes": nbytes,
                "bandwidth_bytes_per_s": nbytes / seconds if seconds else 0.0,
                "utilization": channel_busy.get(name, 0) / total_cycles if total_cycles else 0.0,
                "capacity_bytes": float(cfg["capacity"]),
                "peak_occupancy_bytes": peak,
                "fits": peak <= float(cfg["capacity"]),
            }

    energy = _energy(records, components, seconds, channel_bytes)
    utilisations = {n: u["utilization"] for n, u in units.items()}
    utilisations.update({n: t["utilization"] for n, t in tiers.items()})
    for n, link in links.items():
        utilisations[n] = max((d["utilization"] for d in link["directions"].values()), default=0.0)
    busiest = max(sorted(utilisations), key=lambda n: utilisations[n]) if utilisations else ""
    return {
        "machine": machine["name"],
        "trace": {k: trace_meta.get(k) for k in ("generator", "preset", "seed", "work_unit", "work_units")},
        "ops": int(len(records)),
        "total_cycles": total_cycles,
        "clock_hz": clock,
        "seconds": seconds,
        "work_unit": unit_name,
        "work_units": work_units,
        "throughput": throughput,
        "throughput_unit": f"{unit_name}/s",
        "busiest_component": busiest,
        "busiest_utilization": utilisations.get(busiest, 0.0),
        "units": units,
        "tiers": tiers,
        "links": links,
        "energy": energy,
        "energy_per_work_unit_j": energy["total_j"] / work_units if work_units else 0.0,
        "overflow": sorted(n for n, t in tiers.items() if not t["fits"]),
    }


def _energy(records: pd.DataFrame, components: dict[str, Any], seconds: float,
            channel_bytes: dict[str, int]) -> dict[str, Any]:
    by_component: dict[str, float] = {}
    compute = records.groupby("component", observed=True, sort=True)["energy_compute_pj"].sum()
    for name, value in compute.items():
        if value:
            by_component[str(name)] = float(value)
    for channel, nbytes in sorted(channel_bytes.items()):
        name = channel.split(":", 1)[0]
        per_bit = float(components[name].get("energy_per_bit", 0.0))
        by_component[name] = by_component.get(name, 0.0) + nbytes * 8.0 * per_bit
    leakage = {}
    for name, cfg in components.items():
        watts = float(cfg.get("leakage_power", 0.0))
        if watts:
            leakage[name] = watts * seconds * PJ_PER_J
            by_component[name] = by_component.get(name, 0.0) + leakage[name]
    by_kind = records.groupby("kind", observed=True, sort=True)["energy_pj"].sum()
    dynamic = float(records["energy_pj"].sum())
    total = dynamic + sum(leakage.values())
    return {
        "total_pj": total,
        "total_j": total / PJ_PER_J,
        "dynamic_pj": dynamic,
        "leakage_pj": float(sum(leakage.values())),
        "by_component_pj": dict(sorted(by_component.items())),
        "by_kind_pj": {str(k): float(v) for k, v in by_kind.items() if v},
    }
