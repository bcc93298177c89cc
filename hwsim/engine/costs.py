"""Per-op costs, computed vectorised for a batch of trace rows before the replay.

Everything about an op that does not depend on *when* it runs is computed here, once, with
numpy: which unit runs it, its compute cycles, the bytes it moves across each memory
channel (tier or link direction), the cycles each channel is busy with those bytes, its
latency, and its dynamic energy. The replay then only does the time-dependent part
(queueing), so the per-op Python work in the event loop stays small.

Data paths: a compute op reads ``src`` (and ``src2``) into its unit through the unit's home
tier and writes ``dst`` from it; a unit-less ``transfer`` reads its source tier, crosses the
links between, and writes the destination tier.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from hwsim.engine.machine import Machine
from hwsim.trace.schema import parse_deps

NO_TIER = -1


@dataclass
class BatchCosts:
    """Costs of one batch of ops; arrays are aligned with the batch's rows."""

    frame: pd.DataFrame          # the validated rows (kept for record tags)
    op_ids: list[int]
    streams: list[str]
    deps: list[tuple[int, ...]]
    unit: np.ndarray             # int index into machine.unit_names, -1 = no unit
    compute: np.ndarray          # int64 cycles on the unit
    latency: np.ndarray          # int64 cycles of first-byte latency
    bytes: np.ndarray            # int64 [n, channels] bytes crossing each channel
    busy: np.ndarray             # int64 [n, channels] cycles each channel is occupied
    energy_compute_pj: np.ndarray
    energy_memory_pj: np.ndarray
    alloc_tier: np.ndarray       # tier index for alloc/free ops, -1 otherwise
    alloc_delta: np.ndarray      # signed bytes allocated (+) or freed (-)


def batch_costs(machine: Machine, frame: pd.DataFrame, source: str, first_row: int) -> BatchCosts:
    """Compute :class:`BatchCosts` for ``frame`` (validated rows numbered from ``first_row``)."""
    n = len(frame)
    kinds = frame["kind"].to_numpy(dtype=object)
    unit_col = frame["unit"].to_numpy(dtype=object)
    unit_names = list(machine.units)
    tier_names = list(machine.tiers)

    def where(i: int) -> str:
        return f"{source}: row {first_row + i} (op_id {int(frame['op_id'].iat[i])})"

    unit_idx = np.full(n, -1, dtype=np.int64)
    kind_codes, kind_values = pd.factorize(kinds)
    explicit_codes, explicit_values = pd.factorize(unit_col)
    pair_codes, pairs = pd.factorize(kind_codes * len(explicit_values) + explicit_codes)
    for code, pair in enumerate(pairs):
        rows = pair_codes == code
        kind = kind_values[pair // len(explicit_values)]
        explicit = explicit_values[pair % len(explicit_values)]
        name = machine.unit_for(kind, explicit, where(int(np.argmax(rows))))
        if name is not None:
            unit_idx[rows] = unit_names.index(name)

    tiers = {}
    for col in ("src", "src2", "dst"):
        values = frame[col].to_numpy(dtype=object)
        idx = np.full(n, NO_TIER, dtype=np.int64)
        codes, spaces = pd.factorize(values)
        for code, space in enumerate(spaces):
            if space == "":
                continue
            first = int(np.flatnonzero(codes == code)[0])
            idx[codes == code] = tier_names.index(machine.tier_of(space, f"{where(first)}, column {col!r}"))
        tiers[col] = idx

    compute = np.zeros(n, dtype=np.int64)
    energy_compute = np.zeros(n, dtype=np.float64)
    for u, name in enumerate(unit_names):
        rows = unit_idx == u
        if rows.any():
            unit = machine.units[name]
            sub = frame[rows]
            compute[rows] = unit.ref_cycles(sub)
            energy_compute[rows] = unit.energy_pj(sub)

    nbytes, latency = _route_bytes(machine, frame, kinds, unit_idx, tiers, unit_names, tier_names)
    busy = np.zeros_like(nbytes)
    energy_memory = np.zeros(n, dtype=np.float64)
    for c, channel in enumerate(machine.channels):
        column = nbytes[:, c]
        if column.any():
            busy[:, c] = channel.resource.busy_cycles(column)
            energy_memory += channel.resource.energy_pj(column.astype(np.float64))

    alloc_tier = np.full(n, NO_TIER, dtype=np.int64)
    alloc_delta = np.zeros(n, dtype=np.int64)
    is_alloc, is_free = kinds == "alloc", kinds == "free"
    alloc_tier[is_alloc] = tiers["dst"][is_alloc]
    alloc_delta[is_alloc] = frame["bytes_written"].to_numpy()[is_alloc]
    alloc_tier[is_free] = tiers["src"][is_free]
    alloc_delta[is_free] = -frame["bytes_read"].to_numpy()[is_free]

    deps_text = frame["deps"].to_numpy(dtype=object)
    deps: list[tuple[int, ...]] = [()] * n
    for i in np.flatnonzero(deps_text != "").tolist():
        deps[i] = parse_deps(deps_text[i])
    return BatchCosts(
        frame=frame, op_ids=frame["op_id"].tolist(), streams=frame["stream"].tolist(), deps=deps,
        unit=unit_idx, compute=compute, latency=latency, bytes=nbytes, busy=busy,
        energy_compute_pj=energy_compute, energy_memory_pj=energy_memory,
        alloc_tier=alloc_tier, alloc_delta=alloc_delta)


def _route_bytes(machine: Machine, frame: pd.DataFrame, kinds: np.ndarray, unit_idx: np.ndarray,
                 tiers: dict[str, np.ndarray], unit_names: list[str], tier_names: list[str]):
    """Bytes per channel and path latency per op, grouped by (kind class, unit, tiers)."""
    n = len(frame)
    nbytes = np.zeros((n, len(machine.channels)), dtype=np.int64)
    latency = np.zeros(n, dtype=np.int64)
    moves = np.isin(kinds, ("alloc", "free", "sync"), invert=True)
    unitless = moves & (unit_idx < 0)
    # One integer per (unit-less?, unit, src, src2, dst) combination; a handful per batch.
    width = max(len(unit_names), len(tier_names)) + 2
    signature = unitless.astype(np.int64)
    for column in (unit_idx, tiers["src"], tiers["src2"], tiers["dst"]):
        signature = signature * width + (column + 1)
    rows_with_traffic = np.flatnonzero(moves)
    if rows_with_traffic.size == 0:
        return nbytes, latency
    inverse, uniq_codes = pd.factorize(signature[rows_with_traffic])
    uniq = []
    for code in uniq_codes:
        fields = []
        for _ in range(4):
            code, rest = divmod(int(code), width)
            fields.append(rest - 1)
        uniq.append((code, *reversed(fields)))
    read = frame["bytes_read"].to_numpy()
    read2 = frame["bytes_read2"].to_numpy()
    write = frame["bytes_written"].to_numpy()
    for g, (is_unitless, u, src, src2, dst) in enumerate(uniq):
        rows = rows_with_traffic[inverse == g]
        if is_unitless:
            path = machine.route(tier_names[src], tier_names[dst])
            _add(nbytes, rows, path, read[rows])
            latency[rows] = _latency(machine, path)
            continue
        home = machine.units[unit_names[u]].home
        lat = 0
        for tier, amount in ((src, read), (src2, read2)):
            if tier != NO_TIER:
                path = _toward_unit(machine.route(tier_names[tier], home), tier_names[tier] == home)
                _add(nbytes, rows, path, amount[rows])
                lat = max(lat, _latency(machine, path))
        if dst != NO_TIER:
            path = machine.route(home, tier_names[dst])
            path = path if tier_names[dst] == home else path[1:]
            _add(nbytes, rows, path, write[rows])
            lat = max(lat, _latency(machine, path))
        latency[rows] = lat
    return nbytes, latency


def _toward_unit(path: tuple[int, ...], local: bool) -> tuple[int, ...]:
    # Bytes read from a remote tier stream into the unit; they are not written into its
    # home tier on the way, so the home tier's channel is dropped from the path.
    return path if local else path[:-1]


def _add(nbytes: np.ndarray, rows: np.ndarray, path: tuple[int, ...], amount: np.ndarray) -> None:
    for channel in path:
        nbytes[rows, channel] += amount


def _latency(machine: Machine, path: tuple[int, ...]) -> int:
    return int(sum(machine.channels[c].resource.latency_cycles for c in path))

