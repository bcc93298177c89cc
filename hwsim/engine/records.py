"""One record per op: the time-independent columns at load, the times after the replay.

Records are built as compact numpy columns per batch and joined into one pandas DataFrame
at the end of the run (text tags become categoricals), never row by row.
"""

from __future__ import annotations

from array import array

import numpy as np
import pandas as pd

from hwsim.engine.costs import BatchCosts
from hwsim.engine.machine import Machine

TEXT_COLUMNS = ("stream", "kind", "component", "phase", "tag", "dtype", "alloc_tier", "deps")

#: Record columns in order; the three cycle columns come from the replay, and the two
#: seconds columns from them and the reference clock.
COLUMN_ORDER = (
    "op_id", "stream", "deps", "kind", "component", "ready_cycle", "start_cycle", "end_cycle",
    "start_seconds", "seconds",
    "compute_cycles", "queue_cycles", "stall_cycles", "layer", "step", "phase", "tag", "dtype",
    "flops", "bytes_read", "bytes_written",
)


def resource_names(machine: Machine) -> list[str]:
    """Tiers, links, then DMA groups, in YAML order: one ``bytes_<name>`` record column each."""
    return list(dict.fromkeys(ch.resource.name for ch in machine.channels))


def static_records(costs: BatchCosts, machine: Machine) -> dict[str, np.ndarray]:
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
    # Copies, not views: a record must not keep its trace batch alive (streamed traces).
    out = {
        "op_id": frame["op_id"].to_numpy(copy=True),
        "stream": frame["stream"].to_numpy(dtype=object),
        "deps": frame["deps"].to_numpy(dtype=object),   # as in the trace: timelines draw them as arrows
        "kind": frame["kind"].to_numpy(dtype=object),
        "component": component,
        "compute_cycles": costs.compute,
        "layer": frame["layer"].to_numpy(copy=True),
        "step": frame["step"].to_numpy(copy=True),
        "phase": frame["phase"].to_numpy(dtype=object),
        "tag": frame["tag"].to_numpy(dtype=object),
        "dtype": frame["dtype"].to_numpy(dtype=object),
        "flops": frame["flops"].to_numpy(copy=True),
        "bytes_read": frame["bytes_read"].to_numpy() + frame["bytes_read2"].to_numpy(),
        "bytes_written": frame["bytes_written"].to_numpy(copy=True),
    }
    by_resource: dict[str, np.ndarray] = {}
    for c, channel in enumerate(machine.channels):
        name = channel.resource.name
        by_resource[name] = by_resource.get(name, 0) + costs.bytes[:, c]
    for name in resource_names(machine):
        out[f"bytes_{name}"] = np.asarray(by_resource.get(name, np.zeros(len(frame), dtype=np.int64)))
    out["energy_pj"] = costs.energy_compute_pj + costs.energy_memory_pj
    out["energy_compute_pj"] = costs.energy_compute_pj
    tier_names = np.array(list(machine.tiers) + [""], dtype=object)
    out["alloc_tier"] = tier_names[costs.alloc_tier]
    out["alloc_bytes"] = costs.alloc_delta
    return out


def finish_records(static: list[dict[str, np.ndarray]], times: list[array], clock_hz: float) -> pd.DataFrame:
    """Join the static columns with the replay's ready/start/end cycles, in trace order, and
    add ``start_seconds`` (s from the run's start) and ``seconds`` (the op's duration, s) at
    the reference clock ``clock_hz``."""
    columns: dict[str, object] = {}
    cycles = np.concatenate([np.frombuffer(batch, dtype=np.int64).reshape(-1, 3) for batch in times])
    for t, name in enumerate(("ready_cycle", "start_cycle", "end_cycle")):
        columns[name] = np.ascontiguousarray(cycles[:, t])
    del cycles
    for name in list(static[0]):
        # Pop each column from every batch as it is joined, so only one copy is alive.
        parts = [batch.pop(name) for batch in static]
        values = np.concatenate(parts)
        columns[name] = _categorical(values) if name in TEXT_COLUMNS else values
        del parts
    columns["queue_cycles"] = columns["start_cycle"] - columns["ready_cycle"]
    columns["start_seconds"] = columns["start_cycle"] / clock_hz
    columns["seconds"] = (columns["end_cycle"] - columns["start_cycle"]) / clock_hz
    columns["stall_cycles"] = np.maximum(
        columns["end_cycle"] - columns["start_cycle"] - columns["compute_cycles"], 0)
    order = [*COLUMN_ORDER, *(c for c in columns if c not in COLUMN_ORDER)]
    return pd.DataFrame({name: columns[name] for name in order}, copy=False)


def _categorical(values: np.ndarray) -> pd.Categorical:
    # factorize + from_codes is several times faster than pd.Categorical(values) on object
    # arrays; sorted categories keep the output independent of row order.
    codes, categories = pd.factorize(values, sort=True)
    return pd.Categorical.from_codes(codes, categories=categories)
