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

from hwsim.components.base import OpError
from hwsim.components.host import HostClock
from hwsim.engine.machine import Machine
from hwsim.errors import TraceError
from hwsim.trace.schema import parse_deps

NO_TIER = -1
#: Trace columns no component cost model reads (identity, placement and report tags).
NOT_FOR_COST_MODELS = ("stream", "deps", "unit", "src", "src2", "dst", "layer", "step", "phase", "tag")


@dataclass
class BatchCosts:
    """Costs of one batch of ops; arrays are aligned with the batch's rows."""

    frame: pd.DataFrame          # the validated rows (kept for record tags)
    op_ids: list[int]
    streams: list[str]
    deps: list[tuple[int, ...]]
    unit: np.ndarray             # int index into machine.unit_names, -1 = no unit
    issue: np.ndarray            # int64 cycle the host has launched the op (earliest start)
    fixed: np.ndarray            # int64 cycles every op pays before its work (kernel overhead)
    compute: np.ndarray          # int64 cycles on the unit
    latency: np.ndarray          # int64 cycles of first-byte latency
    bytes: np.ndarray            # int64 [n, channels] bytes crossing each channel
    busy: np.ndarray             # int64 [n, channels] cycles each channel is occupied
    energy_compute_pj: np.ndarray
    energy_memory_pj: np.ndarray
    channel_energy_pj: np.ndarray  # float64 [channels] energy of this batch per channel
    alloc_tier: np.ndarray       # tier index for alloc/free ops, -1 otherwise
    alloc_delta: np.ndarray      # signed bytes allocated (+) or freed (-)


def batch_costs(machine: Machine, frame: pd.DataFrame, source: str, first_row: int,
                host: HostClock | None = None) -> BatchCosts:
    """Compute :class:`BatchCosts` for ``frame`` (validated rows numbered from ``first_row``).

    ``host`` carries the host's issue clock from batch to batch (None: no host costs).
    """
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
    fixed = np.zeros(n, dtype=np.int64)
    energy_compute = np.zeros(n, dtype=np.float64)
    # Cost models read op shapes, sizes and kinds, never these: leaving them out makes the
    # row selections below copy half the columns.
    shapes = frame.drop(columns=[c for c in NOT_FOR_COST_MODELS if c in frame.columns])
    for u, name in enumerate(unit_names):
        rows = unit_idx == u
        if rows.any():
            unit = machine.units[name]
            sub = shapes[rows]
            over = getattr(unit, "over_capacity", None)
            if over is not None and over(sub).any():
                first = int(np.flatnonzero(rows)[np.argmax(over(sub))])
                raise TraceError(f"{where(first)}, column 'elements': more entries than {name!r} holds "
                                 f"({unit.config.entries * unit.config.count})")
            try:
                compute[rows] = unit.ref_cycles(sub)
            except OpError as err:
                raise TraceError(f"{where(int(np.flatnonzero(rows)[err.row]))}, column {err.column!r}: "
                                 f"{err.message}") from None
            fixed[rows] = unit.fixed_cycles
            energy_compute[rows] = unit.energy_pj(sub)

    nbytes, busy, energy, latency = _route(machine, shapes, kinds, unit_idx, tiers, unit_names, tier_names)
    energy_memory = energy.sum(axis=1)

    alloc_tier = np.full(n, NO_TIER, dtype=np.int64)
    alloc_delta = np.zeros(n, dtype=np.int64)
    is_alloc, is_free = kinds == "alloc", kinds == "free"
    alloc_tier[is_alloc] = tiers["dst"][is_alloc]
    alloc_delta[is_alloc] = frame["bytes_written"].to_numpy()[is_alloc]
    alloc_tier[is_free] = tiers["src"][is_free]
    alloc_delta[is_free] = -frame["bytes_read"].to_numpy()[is_free]

    kernels = (unit_idx >= 0) | (kinds == "transfer")
    issue = (host.issue_times(kernels, frame["step"].to_numpy()) if host is not None
             else np.zeros(n, dtype=np.int64))

    deps_text = frame["deps"].to_numpy(dtype=object)
    deps: list[tuple[int, ...]] = [()] * n
    for i in np.flatnonzero(deps_text != "").tolist():
        deps[i] = parse_deps(deps_text[i])
    return BatchCosts(
        frame=frame, op_ids=frame["op_id"].tolist(), streams=frame["stream"].tolist(), deps=deps,
        unit=unit_idx, issue=issue, fixed=fixed, compute=compute, latency=latency, bytes=nbytes, busy=busy,
        energy_compute_pj=energy_compute, energy_memory_pj=energy_memory,
        channel_energy_pj=energy.sum(axis=0),
        alloc_tier=alloc_tier, alloc_delta=alloc_delta)


def _route(machine: Machine, frame: pd.DataFrame, kinds: np.ndarray, unit_idx: np.ndarray,
           tiers: dict[str, np.ndarray], unit_names: list[str], tier_names: list[str]):
    """Bytes, busy cycles and energy per channel, and path latency, per op.

    Ops are grouped by (moves data?, unit, src, src2, dst tiers): a handful of groups per
    batch, each handled with whole-array numpy operations.
    """
    n = len(frame)
    shape = (n, len(machine.channels))
    nbytes = np.zeros(shape, dtype=np.int64)
    busy = np.zeros(shape, dtype=np.int64)
    energy = np.zeros(shape, dtype=np.float64)
    latency = np.zeros(n, dtype=np.int64)
    traffic = np.isin(kinds, ("alloc", "free", "sync"), invert=True)
    movers = {u for u, name in enumerate(unit_names) if machine.units[name].moves_data}
    moves = traffic & ((unit_idx < 0) | np.isin(unit_idx, list(movers)))
    width = max(len(unit_names), len(tier_names)) + 2
    signature = moves.astype(np.int64)
    for column in (unit_idx, tiers["src"], tiers["src2"], tiers["dst"]):
        signature = signature * width + (column + 1)
    rows_with_traffic = np.flatnonzero(traffic)
    if rows_with_traffic.size == 0:
        return nbytes, busy, energy, latency
    inverse, codes = pd.factorize(signature[rows_with_traffic])
    read = frame["bytes_read"].to_numpy()
    read2 = frame["bytes_read2"].to_numpy()
    write = frame["bytes_written"].to_numpy()

    def charge(rows: np.ndarray, path: tuple[int, ...], roles: tuple[str, ...], amount: np.ndarray) -> int:
        sub = frame.iloc[rows]
        for channel, role in zip(path, roles, strict=True):
            resource = machine.channels[channel].resource
            nbytes[rows, channel] += amount
            busy[rows, channel] += machine.channels[channel].busy_cycles(amount, sub, role)
            energy[rows, channel] += resource.channel_energy_pj(amount.astype(np.float64), role)
        return int(sum(machine.channels[c].resource.latency_cycles for c in dict.fromkeys(path)))

    for group, code in enumerate(codes.tolist()):
        fields = []
        for _ in range(4):
            code, rest = divmod(code, width)
            fields.append(rest - 1)
        is_move, (dst, src2, src, u) = code, fields
        rows = rows_with_traffic[inverse == group]
        if is_move:
            # A copy: read the source tier, cross the links, write the destination tier
            # (and queue on the DMA group's own bandwidth when a DMA engine runs it).
            path = machine.route(tier_names[src], tier_names[dst])
            # A copy within one tier reads and then writes it: both cross the same channel.
            roles = ("read",) + ("transit",) * (len(path) - 2) + ("write",) if len(path) > 1 else ("read", "write")
            path = path if len(path) > 1 else path * 2
            if u >= 0:
                path, roles = (*path, machine.channel_index[unit_names[u]]), (*roles, "transit")
            lat = charge(rows, path, roles, read[rows])
            if u >= 0:
                lat += int(machine.units[unit_names[u]].cycles(frame.iloc[rows[:1]])[0])
            latency[rows] = lat
            continue
        home = machine.units[unit_names[u]].home
        lat = 0
        for tier, amount in ((src, read), (src2, read2)):
            if tier != NO_TIER:
                # Bytes read from a remote tier stream into the unit; they are not written
                # into its home tier on the way, so the home tier is not on the path.
                path = machine.route(tier_names[tier], home)
                path = path if tier_names[tier] == home else path[:-1]
                lat = max(lat, charge(rows, path, ("read",) + ("transit",) * (len(path) - 1), amount[rows]))
        if dst != NO_TIER:
            path = machine.route(home, tier_names[dst])
            path = path if tier_names[dst] == home else path[1:]
            lat = max(lat, charge(rows, path, ("transit",) * (len(path) - 1) + ("write",), write[rows]))
        latency[rows] = lat
    return nbytes, busy, energy, latency
