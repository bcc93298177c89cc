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
import pandas as pd

from hwsim.engine.feed import trace_index
from hwsim.engine.machine import Machine
from hwsim.trace.trace import Trace

DEFAULT_BATCH = 65536


@dataclass(frozen=True)
class Spill:
    """A space moved off a tier that could not hold it."""

    space: str
    from_tier: str
    to_tier: str
    peak_bytes: float
    free_bytes: float
    device: int = 0        # the first device of the kind it spills on (the others do alike)

    def to_dict(self) -> dict:
        return {"from": self.from_tier, "to": self.to_tier, "peak_bytes": self.peak_bytes,
                "free_bytes": self.free_bytes}


def space_peaks(trace: Trace) -> dict[str, float]:
    """Peak bytes allocated per logical space, replaying alloc/free rows in trace order
    (in order of each space's first alloc or free). Computed once per in-memory trace."""
    index = trace_index(trace, DEFAULT_BATCH) if trace.in_memory else None
    if index is not None and index.space_peaks is not None:
        return index.space_peaks
    running: dict[str, int] = {}
    peaks: dict[str, float] = {}
    batches = index.batches if index is not None else trace.iter_batches()
    for batch in batches:
        kinds = batch.vocab["kind"]
        kind = batch.codes["kind"]
        is_alloc, is_free = kind == kinds.find("alloc"), kind == kinds.find("free")
        rows = np.flatnonzero(is_alloc | is_free)
        if rows.size == 0:
            continue
        alloc = is_alloc[rows]
        names = np.where(alloc, batch.vocab["dst"].array()[batch.codes["dst"][rows]],
                         batch.vocab["src"].array()[batch.codes["src"][rows]])
        deltas = np.where(alloc, batch.ints["bytes_written"][rows], -batch.ints["bytes_read"][rows])
        codes, spaces = pd.factorize(names)
        for code, space in enumerate(spaces.tolist()):
            path = running.get(space, 0) + np.cumsum(deltas[codes == code])
            running[space] = int(path[-1])
            peaks[space] = max(peaks.get(space, 0.0), float(max(path.max(), 0)))
    if index is not None:
        index.space_peaks = peaks
    return peaks


def plan_spills(machine: Machine, trace: Trace) -> list[Spill]:
    """Decide which spaces leave each tier that has a ``spill_to`` tier. The devices of one
    kind hold the same spaces, so the tiers of each kind's first device decide for all of
    its devices."""
    firsts = {k: machine.kind_of.index(k) for k in set(machine.kind_of)}
    spilling = {name: tier for name, tier in machine.tiers.items() if getattr(tier.config, "spill_to", "")
                and machine.device_of(name) in firsts.values()}
    if not spilling:
        return []
    peaks = space_peaks(trace)
    spills = []
    for tier_name, tier in spilling.items():
        used = 0.0
        capacity = float(tier.config.capacity)
        device = machine.device_of(tier_name)
        for space, peak in peaks.items():  # first-allocation order
            if machine.tier_of(space, "placement", device) != tier_name:
                continue
            if used + peak <= capacity:
                used += peak
            else:
                spills.append(Spill(space, tier_name, tier.config.spill_to, peak, capacity - used, device))
    return spills
