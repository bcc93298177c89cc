"""The run summary: totals, throughput in the workload's units, bandwidth, utilisation, energy.

A separate step after the engine: computed from a run's :class:`~hwsim.metrics.totals.RunTotals`
(accumulated while the records were made) plus the machine's resolved config (a plain dict
whose ``facts`` give each component's role, instances, capacity and leakage) and the trace
metadata; it never touches simulator objects or the records table.

A compute unit's utilisation is its busy cycles (summed over the ops it ran) over
``instances x total cycles``: 1.0 when every instance was busy for the whole run.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from hwsim.components.facts import ComponentFacts, read_facts
from hwsim.metrics.totals import RunTotals

PJ_PER_J = 1e12


def occupancy_timeline(records: pd.DataFrame, tier: str) -> pd.DataFrame:
    """Bytes allocated in ``tier`` after every alloc/free: columns cycle, bytes."""
    moves = records[(records["alloc_bytes"] != 0) & (records["alloc_tier"] == tier)]
    ordered = moves.sort_values(["start_cycle", "op_id"], kind="stable")
    return pd.DataFrame({"cycle": ordered["start_cycle"].to_numpy(),
                         "bytes": np.cumsum(ordered["alloc_bytes"].to_numpy())})


def summarize(totals: RunTotals, machine: dict[str, Any], trace_meta: dict[str, Any]) -> dict[str, Any]:
    """Build the summary dict (JSON-ready; dump with sorted keys for byte-stable files)."""
    clock = float(machine["clock_hz"])
    total_cycles = int(totals.total_cycles)
    seconds = total_cycles / clock
    work_units = float(trace_meta.get("work_units") or 0.0)
    unit_name = trace_meta.get("work_unit") or "op"
    if work_units <= 0:
        work_units, unit_name = float(totals.ops), "op"
    facts = read_facts(machine)
    busy = dict(zip(totals.channels, totals.channel_busy.tolist(), strict=True))
    moved = dict(zip(totals.channels, totals.channel_bytes.tolist(), strict=True))
    index = {name: i for i, name in enumerate(totals.components)}

    def share(cycles: float) -> float:
        return cycles / total_cycles if total_cycles else 0.0

    def rate(amount: float) -> float:
        return amount / seconds if seconds else 0.0

    units = {}
    for name, record in facts.items():
        if record.role != "compute":
            continue
        i = index.get(name)
        ops, flops, span = ((0, 0, 0) if i is None else (int(totals.component_ops[i]), int(totals.component_flops[i]),
                                                        int(totals.component_span[i])))
        units[name] = {"kind": record.kind, "ops": ops, "busy_cycles": span,
                       "utilization": share(span / record.instances), "flops": flops,
                       "achieved_flops_per_s": rate(flops)}
        if name in moved:
            units[name]["bytes"] = int(moved[name])
            units[name]["queue_utilization"] = share(busy[name])

    tiers, links = {}, {}
    peaks = totals.peak_occupancy()
    for name, record in facts.items():
        if record.role == "link":
            directions = {}
            for channel, nbytes in moved.items():
                if channel.startswith(f"{name}:"):
                    directions[channel.split(":", 1)[1]] = {
                        "bytes": int(nbytes), "bandwidth_bytes_per_s": rate(nbytes),
                        "utilization": share(busy[channel])}
            links[name] = {"bytes": int(sum(d["bytes"] for d in directions.values())),
                           "directions": directions}
        elif record.role == "tier":
            peak = peaks.get(name, 0.0)
            tiers[name] = {"kind": record.kind, "bytes": int(moved.get(name, 0)),
                           "bandwidth_bytes_per_s": rate(moved.get(name, 0)),
                           "utilization": share(busy.get(name, 0)),
                           "capacity_bytes": record.capacity_bytes, "peak_occupancy_bytes": peak,
                           "fits": peak <= record.capacity_bytes}

    energy = _energy(totals, facts, seconds)
    utilisations = {n: u["utilization"] for n, u in units.items()}
    utilisations.update({n: t["utilization"] for n, t in tiers.items()})
    for n, link in links.items():
        utilisations[n] = max((d["utilization"] for d in link["directions"].values()), default=0.0)
    busiest = max(sorted(utilisations), key=lambda n: utilisations[n]) if utilisations else ""
    extra = {}
    comm = totals.communication()
    if comm is not None:
        # Compute vs communication on the machine (a group's op is its first device's): the
        # exposed part is communication no compute overlaps, what a faster fabric would save.
        extra["communication"] = {
            "compute_seconds": comm["compute_cycles"] / clock,
            "communication_seconds": comm["communication_cycles"] / clock,
            "exposed_communication_seconds": comm["exposed_communication_cycles"] / clock,
            "exposed_share": comm["exposed_communication_cycles"] / total_cycles if total_cycles else 0.0}
    return {
        "machine": machine["name"],
        "trace": {k: trace_meta.get(k) for k in ("generator", "preset", "seed", "work_unit", "work_units")},
        "ops": int(totals.ops),
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
        **extra,
    }


def _energy(totals: RunTotals, facts: dict[str, ComponentFacts], seconds: float) -> dict[str, Any]:
    """Dynamic energy by component (compute + every channel it owns) and by op kind, plus
    leakage power x run time for every component."""
    dynamic_by_component, kinds, dynamic = totals.energy_totals()
    by_component = {name: value for name, value in dynamic_by_component.items() if value}
    leakage = {}
    for name, record in facts.items():
        watts = record.leakage_w
        if watts:
            leakage[name] = watts * seconds * PJ_PER_J
            by_component[name] = by_component.get(name, 0.0) + leakage[name]
    total = dynamic + sum(leakage.values())
    return {
        "total_pj": total,
        "total_j": total / PJ_PER_J,
        "dynamic_pj": dynamic,
        "leakage_pj": float(sum(leakage.values())),
        "by_component_pj": dict(sorted(by_component.items())),
        "by_kind_pj": {k: v for k, v in sorted(kinds.items()) if v},
    }


