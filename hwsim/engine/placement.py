"""Capacity-aware placement: spaces that do not fit an on-chip tier spill to the next tier.

Before a run, the trace's ``alloc``/``free`` rows give each logical space's peak footprint
(in trace order). For every tier that names a ``spill_to`` tier (banked SRAM), the spaces
placed on it are kept, in order of first allocation, while their peaks fit its capacity;
the rest are moved to ``spill_to``. The run then replays with that placement and reports
every spill, so a machine whose SRAM is too small for a GDN-2 state shows the state's
per-token reads and writes landing in HBM instead of silently fitting.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwsim.engine.machine import Machine
from hwsim.trace.trace import Trace


@dataclass(frozen=True)
class Spill:
    """A space moved off a tier that could not hold it."""

    space: str
    from_tier: str
    to_tier: str
    peak_bytes: float
    free_bytes: float

    def to_dict(self) -> dict:
        return {"from": self.from_tier, "to": self.to_tier, "peak_bytes": self.peak_bytes,
                "free_bytes": self.free_bytes}


def space_peaks(trace: Trace) -> dict[str, float]:
    """Peak bytes allocated per logical space, replaying alloc/free rows in trace order."""
    running: dict[str, float] = {}
    peaks: dict[str, float] = {}
    for batch in trace.iter_batches():
        kinds = batch["kind"].to_numpy(dtype=object)
        rows = np.flatnonzero((kinds == "alloc") | (kinds == "free"))
        if rows.size == 0:
            continue
        sub = batch.iloc[rows]
        is_alloc = sub["kind"].to_numpy(dtype=object) == "alloc"
        spaces = np.where(is_alloc, sub["dst"].to_numpy(dtype=object), sub["src"].to_numpy(dtype=object))
        deltas = np.where(is_alloc, sub["bytes_written"].to_numpy(), -sub["bytes_read"].to_numpy())
        for space, delta in zip(spaces.tolist(), deltas.tolist(), strict=True):
            value = running.get(space, 0.0) + delta
            running[space] = value
            if value > peaks.get(space, 0.0):
                peaks[space] = value
            peaks.setdefault(space, 0.0)
    return peaks


def plan_spills(machine: Machine, trace: Trace) -> list[Spill]:
    """Decide which spaces leave each tier that has a ``spill_to`` tier."""
    spilling = {name: tier for name, tier in machine.tiers.items() if getattr(tier.config, "spill_to", "")}
    if not spilling:
        return []
    peaks = space_peaks(trace)
    spills = []
    for tier_name, tier in spilling.items():
        used = 0.0
        capacity = float(tier.config.capacity)
        for space, peak in peaks.items():  # first-allocation order
            if machine.tier_of(space, "placement") != tier_name:
                continue
            if used + peak <= capacity:
                used += peak
            else:
                spills.append(Spill(space, tier_name, tier.config.spill_to, peak, capacity - used))
    return spills
