"""One record per op: the time-independent columns at load, the times after the replay.

Records are built as compact columns (categoricals for the text tags) and joined into one
pandas DataFrame at the end of the run, never row by row.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hwsim.engine.costs import BatchCosts
from hwsim.engine.machine import Machine

TAG_COLUMNS = ("stream", "kind", "dtype", "phase", "tag")


def resource_names(machine: Machine) -> list[str]:
    """Tiers then links, in YAML order: one ``bytes_<name>`` record column each."""
    return list(machine.tiers) + list(machine.links)


def static_records(costs: BatchCosts, machine: Machine) -> pd.DataFrame:
    """The record columns known before the replay (everything but the times)."""
    frame = costs.frame
    unit_names = np.array(list(machine.units) + [""], dtype=object)
    component = unit_names[costs.unit]
    unitless = costs.unit < 0
    if unitless.any():
        # A transfer has no unit; name the channel it keeps busiest (its bottleneck).
        has_traffic = unitless & (costs.busy.sum(axis=1) > 0)
        bottleneck = np.argmax(costs.busy, axis=1)
        names = np.array([ch.resource.name for ch in machine.channels], dtype=object)
        component[has_traffic] = names[bottleneck[has_traffic]]
    out = {
        "op_id": frame["op_id"].to_numpy(),
        "stream": frame["stream"].to_numpy(dtype=object),
        "kind": frame["kind"].to_numpy(dtype=object),
        "component": component,
        "layer": frame["layer"].to_numpy(),
        "step": frame["step"].to_numpy(),
        "phase": frame["phase"].to_numpy(dtype=object),
        "tag": frame["tag"].to_numpy(dtype=object),
        "dtype": frame["dtype"].to_numpy(dtype=object),
        "compute_cycles": costs.compute,
        "flops": frame["flops"].to_numpy(),
        "bytes_read": frame["bytes_read"].to_numpy() + frame["bytes_read2"].to_numpy(),
        "bytes_written": frame["bytes_written"].to_numpy(),
    }
    by_resource: dict[str, np.ndarray] = {}
    for c, channel in enumerate(machine.channels):
        name = channel.resource.name
        by_resource[name] = by_resource.get(name, 0) + costs.bytes[:, c]
    for name in resource_names(machine):
        out[f"bytes_{name}"] = np.asarray(by_resource.get(name, np.zeros(len(frame), dtype=np.int64)))
    out["energy_compute_pj"] = costs.energy_compute_pj
    out["energy_memory_pj"] = costs.energy_memory_pj
    out["energy_pj"] = costs.energy_compute_pj + costs.energy_memory_pj
    tier_names = np.array(list(machine.tiers) + [""], dtype=object)
    out["alloc_tier"] = tier_names[costs.alloc_tier]
    out["alloc_bytes"] = costs.alloc_delta
    table = pd.DataFrame(out)
    for name in (*TAG_COLUMNS, "component", "alloc_tier"):
        table[name] = table[name].astype("category")
    return table


def finish_records(static: list[pd.DataFrame], times: list[tuple[list[int], list[int], list[int]]]) -> pd.DataFrame:
    """Join the static columns with the replay's ready/start/end cycles, in trace order."""
    parts = []
    for table, (ready, start, end) in zip(static, times, strict=True):
        table = table.copy()
        ready_a, start_a, end_a = (np.asarray(x, dtype=np.int64) for x in (ready, start, end))
        table.insert(4, "ready_cycle", ready_a)
        table.insert(5, "start_cycle", start_a)
        table.insert(6, "end_cycle", end_a)
        position = table.columns.get_loc("compute_cycles") + 1
        table.insert(position, "queue_cycles", start_a - ready_a)
        table.insert(position + 1, "stall_cycles",
                     np.maximum(end_a - start_a - table["compute_cycles"].to_numpy(), 0))
        parts.append(table)
    records = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    for name in (*TAG_COLUMNS, "component", "alloc_tier"):
        if records[name].dtype != "category":
            records[name] = records[name].astype("category")
    return records
