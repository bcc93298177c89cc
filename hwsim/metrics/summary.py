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
              channels: dict[str, dict[str, float]]) -> dict[str, Any]:
    """Build the summary dict (JSON-ready; dump with sorted keys for byte-stable files).

    ``channels`` holds the replay's totals per memory channel (a tier, one direction of a
    link, or a DMA group): ``{"busy": {...}, "bytes": {...}, "energy_pj": {...}}``.
    """
    clock = float(machine["clock_hz"])
    total_cycles = int(records["end_cycle"].max()) if len(records) else 0
    seconds = total_cycles / clock
    work_units = float(trace_meta.get("work_units") or 0.0)
    unit_name = trace_meta.get("work_unit") or "op"
    if work_units <= 0:
        work_units, unit_name = float(len(records)), "op"
    components = machine["components"]
    busy, moved = channels["busy"], channels["bytes"]

    def share(cycles: float) -> float:
        return cycles / total_cycles if total_cycles else 0.0

    def rate(amount: float) -> float:
        return amount / seconds if seconds else 0.0

    units = {}
    per_component = records.groupby("component", observed=True, sort=True).agg(
        ops=("op_id", "size"), flops=("flops", "sum"))
    spans = (records["end_cycle"] - records["start_cycle"]).groupby(records["component"], observed=True).sum()
    for name, cfg in components.items():
        if cfg["role"] != "compute":
            continue
        instances = int(cfg.get("count", 1)) * int(cfg.get("queue_depth", 1))
        ops = int(per_component["ops"].get(name, 0))
        flops = int(per_component["flops"].get(name, 0))
        span = int(spans.get(name, 0))
        units[name] = {"kind": cfg["kind"], "ops": ops, "busy_cycles": span,
                       "utilization": share(span / instances), "flops": flops,
                       "achieved_flops_per_s": rate(flops)}
        if name in moved:
            units[name]["bytes"] = int(moved[name])
            units[name]["queue_utilization"] = share(busy[name])

    tiers, links = {}, {}
    peaks = peak_occupancy(records)
    for name, cfg in components.items():
        if cfg["role"] == "link":
            directions = {}
            for channel, nbytes in moved.items():
                if channel.startswith(f"{name}:"):
                    directions[channel.split(":", 1)[1]] = {
                        "bytes": int(nbytes), "bandwidth_bytes_per_s": rate(nbytes),
                        "utilization": share(busy[channel])}
            links[name] = {"bytes": int(sum(d["bytes"] for d in directions.values())),
                           "directions": directions}
        elif cfg["role"] == "tier":
            peak = peaks.get(name, 0.0)
            tiers[name] = {"kind": cfg["kind"], "bytes": int(moved.get(name, 0)),
                           "bandwidth_bytes_per_s": rate(moved.get(name, 0)),
                           "utilization": share(busy.get(name, 0)),
                           "capacity_bytes": float(cfg["capacity"]), "peak_occupancy_bytes": peak,
                           "fits": peak <= float(cfg["capacity"])}

    energy = _energy(records, components, seconds, channels["energy_pj"])
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
        "throughput": rate(work_units),
        "throughput_unit": f"{unit_name}/s",
        "busiest_component": busiest,
        "busiest_utilization": utilisations.get(busiest, 0.0),
        "units": units,
        "tiers": tiers,
        "links": links,
        "energy": energy,
        "energy_per_work_unit_j": energy["total_j"] / work_units if work_units else 0.0,
        "overflow": sorted(n for n, t in tiers.items() if not t["fits"]),
        "placement": machine.get("placement", {}),
        "spills": machine.get("spills", {}),
    }


def _energy(records: pd.DataFrame, components: dict[str, Any], seconds: float,
            channel_energy: dict[str, float]) -> dict[str, Any]:
    """Dynamic energy by component (compute + every channel it owns) and by op kind, plus
    leakage power x run time for every component."""
    by_component: dict[str, float] = {}
    compute = records.groupby("component", observed=True, sort=True)["energy_compute_pj"].sum()
    for name, value in compute.items():
        if value:
            by_component[str(name)] = float(value)
    for channel, value in sorted(channel_energy.items()):
        name = channel.split(":", 1)[0]
        if value:
            by_component[name] = by_component.get(name, 0.0) + float(value)
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
