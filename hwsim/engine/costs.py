"""Per-op costs, computed vectorised once per cost signature before the timing.

Everything about an op that does not depend on *when* it runs is computed here, with numpy,
over the distinct signatures of the trace (:mod:`hwsim.engine.signatures`): which unit runs
it, its fixed and compute cycles, the bytes it moves across each memory channel (tier or
link direction), the cycles each channel is busy with those bytes, its latency, and its
dynamic energy. The timing strategies then only do the time-dependent part.

The pass has two parts. The *layout* (:func:`_layout`) is what the machine's structure alone
decides: the unit of each signature, the tiers of its spaces, the channels its bytes cross.
An in-memory trace keeps it per :attr:`~hwsim.engine.machine.Machine.layout_key`, so a sweep
point that changes only numbers (a bandwidth, an energy) skips it. The *numbers* are then
the cost models' (cycles, busy cycles, pJ), cached per unit and channel config.

Data paths: a compute op reads ``src`` (and ``src2``) into its unit through the unit's home
tier and writes ``dst`` from it; a unit-less ``transfer`` reads its source tier, crosses the
links between, and writes the destination tier (a copy within one tier reads and writes it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd

from hwsim.components.base import OpError
from hwsim.engine.channel_cells import CellsBuilder, CellsLayout, ChannelCells
from hwsim.engine.collectives import choose
from hwsim.engine.collectives import options as collective_options
from hwsim.engine.machine import Machine
from hwsim.errors import HwsimError, TraceError
from hwsim.memo import remember
from hwsim.trace.columns import OpColumns
from hwsim.trace.schema import COLLECTIVE_KINDS

NO_TIER = -1
# Kind classes the cost pass needs, as bits of a per-code lookup.
_ALLOC, _FREE, _SYNC, _TRANSFER, _COMM = 1, 2, 4, 8, 16
_BOOKKEEPING = _ALLOC | _FREE | _SYNC | _COMM   # no tier traffic (a collective's is on the fabric)
_KIND_CLASS = {"alloc": _ALLOC, "free": _FREE, "sync": _SYNC, "transfer": _TRANSFER,
               **dict.fromkeys(COLLECTIVE_KINDS, _COMM)}
#: Cost arrays an in-memory trace keeps: per unit config, or per channel (resource config,
#: direction, role) and bytes column, for one set of signatures.
UNIT_CACHE_SIZE = 256
#: Layouts an in-memory trace keeps (one per machine structure it ran on).
LAYOUT_CACHE_SIZE = 16


@dataclass
class SignatureCosts:
    """Costs of every signature (arrays aligned with the signature table's rows)."""

    kind: np.ndarray             # int32 code of the op kind (the trace's vocabulary)
    flops: np.ndarray            # int64 FLOPs of one op
    unit: np.ndarray             # int64 index into machine.units, -1 = no unit
    component: np.ndarray        # int64 index into Machine.record_components (unit or bottleneck)
    kernel: np.ndarray           # bool: the host launches it (a unit runs it, or a transfer)
    fixed: np.ndarray            # int64 cycles every op pays before its work (kernel overhead)
    compute: np.ndarray          # int64 cycles on the unit
    latency: np.ndarray          # int64 cycles of first-byte latency
    cells: ChannelCells          # bytes, busy cycles and pJ of each channel a signature crosses
    energy_compute_pj: np.ndarray
    energy_pj: np.ndarray        # compute + memory, pJ
    alloc_tier: np.ndarray       # tier index for alloc/free ops, -1 otherwise
    alloc_delta: np.ndarray      # signed bytes allocated (+) or freed (-)
    duration: np.ndarray         # int64 contention-free cycles (see contention_free)
    #: int64 [g, k] more tiers an alloc/free moves the same bytes on (-1: none), or None: on a
    #: machine of several device kinds, the other kinds' tiers of an op on a mixed group.
    alloc_more: np.ndarray | None = None

    # Dense [g, channels] tables of the cells, for callers that want one.
    @cached_property
    def bytes(self) -> np.ndarray:
        """int64 [g, channels] bytes crossing each channel."""
        return self.cells.dense("bytes")

    @cached_property
    def busy(self) -> np.ndarray:
        """int64 [g, channels] cycles each channel is occupied."""
        return self.cells.dense("busy")

    @cached_property
    def energy(self) -> np.ndarray:
        """float64 [g, channels] energy of the bytes in each channel, pJ."""
        return self.cells.dense("energy")


def _keep(cache: dict, key: tuple, value: tuple) -> None:
    remember(cache, key, value, UNIT_CACHE_SIZE)


def contention_free(fixed: np.ndarray, compute: np.ndarray, cells: ChannelCells, latency: np.ndarray) -> np.ndarray:
    """Cycles of an op on an idle machine (int64): ``fixed + max(compute, memory)``, memory
    being its busiest channel plus the latency when it keeps any channel busy."""
    busiest = cells.max_busy()
    memory = np.where(busiest > 0, busiest + latency, 0)
    return fixed + np.maximum(compute, memory)


def signature_costs(machine: Machine, sigs: OpColumns, where: Callable[[int], str],
                    unit_cache: dict | None = None) -> SignatureCosts:
    """Costs of the signatures ``sigs``; ``where(i)`` names signature ``i``'s first op
    (``"file: row N (op_id X)"``) for errors.

    ``unit_cache`` (kept with an in-memory trace) holds each unit's compute cycles and
    energy for the signatures it ran, keyed by the unit's config, and each channel's busy
    cycles and energy, keyed by its resource's config: a later run on a machine where they
    did not change (most parameters of a sweep point) reuses them.

    Raises TraceError (an op no unit runs, a space not placed, a cost model's OpError) and
    ConfigError (tiers no link joins).

    On a machine of several device kinds, an op on a group of devices of more than one kind
    is costed on each of its kinds (:mod:`hwsim.engine.device_kinds`).
    """
    if len(machine.kinds) > 1:
        from hwsim.engine.device_kinds import mixed_costs

        return mixed_costs(machine, sigs, where, unit_cache)
    # The groups follow from the signatures' device cells and the device count alone.
    key = ("device groups", machine.devices)
    found = None if unit_cache is None else unit_cache.get(key)
    if found is None:
        found = _device_groups(machine, sigs, where)
        for array in found:
            array.flags.writeable = False   # shared by the runs of every machine of this device count
        if unit_cache is not None:
            _keep(unit_cache, key, found)
    return costs_on(machine, sigs, where, unit_cache, *found)


def costs_on(machine: Machine, sigs: OpColumns, where: Callable[[int], str], unit_cache: dict | None,
             rep: np.ndarray, members: np.ndarray) -> SignatureCosts:
    """:func:`signature_costs` with each signature run by device ``rep[i]`` and standing for
    ``members[i]`` devices (its energy counts each of them)."""
    n = len(sigs)
    layout = _layout(machine, sigs, where, unit_cache, rep)
    unit_idx, kind_class = layout.unit_idx, layout.kind_class
    compute, fixed, energy_compute = _unit_costs(machine, sigs, where, layout, unit_cache)
    cells, latency = _route_costs(machine, sigs, layout, unit_cache)
    comm = kind_class == _COMM
    if machine.devices > 1:
        # An op on a group is the same op on each member: its energy counts every member.
        scale = np.where(comm, 1, members).astype(np.float64)
        energy_compute *= scale
        cells = cells.scaled_energy(scale)
    if comm.any():
        # Collectives cross only fabric channels, and no other op of theirs has cells.
        builder = CellsBuilder(n, len(machine.channels))
        _collective_costs(machine, sigs, np.flatnonzero(comm), where, builder, latency)
        cells = cells.merged(builder.build())

    component = unit_idx.copy()
    unitless = unit_idx < 0
    if unitless.any():
        # A transfer has no unit; name the channel it keeps busiest (its bottleneck).
        busiest = cells.busiest_channel()
        has_traffic = unitless & (busiest >= 0)
        resource = np.asarray(machine.channel_resource, dtype=np.int64)
        component[has_traffic] = resource[busiest[has_traffic]]
        component[unitless & ~has_traffic] = machine.no_component
    return SignatureCosts(
        kind=sigs.codes["kind"], flops=sigs.ints["flops"], unit=unit_idx, component=component,
        kernel=(unit_idx >= 0) | (kind_class == _TRANSFER) | comm,
        fixed=fixed, compute=compute, latency=latency, cells=cells,
        energy_compute_pj=energy_compute, energy_pj=energy_compute + cells.energy_sum(),
        alloc_tier=layout.alloc_tier, alloc_delta=layout.alloc_delta,
        duration=contention_free(fixed, compute, cells, latency))


@dataclass(frozen=True)
class _Leg:
    """One way bytes go for a group of signatures: the channels crossed, each one's role
    (``read``, ``transit``, ``write``), and the bytes of each signature (its ``column``)."""

    path: tuple[int, ...]
    roles: tuple[str, ...]
    amount: np.ndarray
    column: str


@dataclass(frozen=True)
class _PathGroup:
    """Signatures that move bytes alike (one unit, the same source and destination tiers)."""

    rows: np.ndarray
    legs: tuple[_Leg, ...]
    dma: str | None          # the DMA unit that runs a copy (its own latency is added), or None


@dataclass(frozen=True)
class _ChannelBatch:
    """Every part of a layout that crosses one channel in one role (``read``, ``transit``,
    ``write``), of every group and leg: costed by one call of each of the channel's cost
    models, which work row by row (a row's cycles and pJ depend on its own bytes and op)."""

    channel: int
    role: str
    rows: np.ndarray         # signature rows, part after part
    amount: np.ndarray       # int64 bytes of each row (its leg's column)
    dest: np.ndarray         # where each row's values land among the layout's cells (cell order)
    key: tuple               # (rows, bytes columns): part of the cost cache's keys
    #: The rows' op columns, by the columns a channel's cost model reads (filled as needed).
    columns: dict = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class _Layout:
    """What the cost pass decides from the machine's structure alone (its
    :attr:`~hwsim.engine.machine.Machine.layout_key`): the unit of each signature, the tiers
    of its spaces, the channels its bytes cross and where those land among the cells. Kept
    with an in-memory trace, so a sweep point that changes only numbers reuses it."""

    unit_idx: np.ndarray                             # int64 index into machine.units, -1 = none
    kind_class: np.ndarray                           # int8 bits of _KIND_CLASS per signature
    unit_rows: tuple[tuple[int, np.ndarray, bytes], ...]   # (unit, its signatures, their bytes)
    groups: tuple[_PathGroup, ...]
    cells: CellsLayout                               # one part per (group, leg, channel), in order
    batches: tuple[_ChannelBatch, ...]               # the parts by (channel, role)
    alloc_tier: np.ndarray
    alloc_delta: np.ndarray


def _layout(machine: Machine, sigs: OpColumns, where: Callable[[int], str], cache: dict | None,
            rep: np.ndarray) -> _Layout:
    """The layout of ``sigs`` on ``machine`` (from ``cache`` when a machine of the same
    layout key had it; errors of a layout are raised the first time it is made)."""
    # Layouts have a store of their own: the unit and channel entries of many sweep points
    # would push them out of the shared one.
    layouts = None if cache is None else cache.setdefault("layouts", {})
    key = None if cache is None else (machine.layout_key, rep.tobytes())
    found = None if layouts is None else layouts.get(key)
    if found is not None:
        return found
    n = len(sigs)
    kinds = sigs.vocab["kind"]
    kind_codes, unit_codes = sigs.codes["kind"], sigs.codes["unit"]
    unit_names = list(machine.units)
    tier_names = list(machine.tiers)

    # ``rep`` is the device whose unit and tiers an op uses: an op on a group is the same op
    # on every member, and one member (the first, of its kind) stands for them all.
    # Each distinct (kind, unit column, device) and (space, device) is looked up once and
    # the answers are spread over the rows with one gather.
    unit_pos = {name: i for i, name in enumerate(unit_names)}
    width = len(sigs.vocab["unit"]) + 1
    devices = machine.devices + 1

    def unit_of(key: int, first: Callable[[], int]) -> int:
        pair, device = divmod(key, devices)
        kind, explicit = divmod(pair, width)
        name = machine.unit_for(kinds.values[kind], sigs.vocab["unit"].values[explicit], lambda: where(first()), device)
        return -1 if name is None else unit_pos[name]

    unit_idx = _per_distinct((kind_codes.astype(np.int64) * width + unit_codes) * devices + rep,
                             len(kinds) * width * devices, unit_of)

    tiers = {}
    tier_pos = {name: i for i, name in enumerate(tier_names)}
    for col in ("src", "src2", "dst"):
        vocab = sigs.vocab[col]

        def tier_of(key: int, first: Callable[[], int], vocab=vocab, col=col) -> int:
            code, device = divmod(key, devices)
            space = vocab.values[code]
            if space == "":
                return NO_TIER
            return tier_pos[machine.tier_of(space, lambda: f"{where(first())}, column {col!r}", device)]

        tiers[col] = _per_distinct(sigs.codes[col].astype(np.int64) * devices + rep, len(vocab) * devices, tier_of)

    unit_rows = [(u, rows, rows.tobytes()) for u, rows in _rows_by_value(unit_idx, len(unit_names))]

    kind_class = kinds.lookup(_KIND_CLASS, 0, np.int8)[kind_codes]
    groups = _path_plan(machine, sigs, kind_class, unit_idx, tiers, unit_names, tier_names)
    parts = [(group.rows, channel, leg.amount) for group in groups for leg in group.legs for channel in leg.path]
    cells = CellsLayout(n, len(machine.channels), *map(list, zip(*parts, strict=True))) if parts else \
        CellsLayout(n, len(machine.channels), [], [])

    alloc_tier = np.full(n, NO_TIER, dtype=np.int64)
    alloc_delta = np.zeros(n, dtype=np.int64)
    is_alloc, is_free = kind_class == _ALLOC, kind_class == _FREE
    alloc_tier[is_alloc] = tiers["dst"][is_alloc]
    alloc_delta[is_alloc] = sigs.ints["bytes_written"][is_alloc]
    alloc_tier[is_free] = tiers["src"][is_free]
    alloc_delta[is_free] = -sigs.ints["bytes_read"][is_free]
    for array in (unit_idx, kind_class, alloc_tier, alloc_delta):
        array.flags.writeable = False   # shared by the runs of every machine of this layout
    layout = _Layout(unit_idx, kind_class, tuple(unit_rows), groups, cells, _channel_batches(groups, cells),
                     alloc_tier, alloc_delta)
    if layouts is not None:
        remember(layouts, key, layout, LAYOUT_CACHE_SIZE)
    return layout


def _rows_by_value(values: np.ndarray, count: int) -> list[tuple[int, np.ndarray]]:
    """(v, the rows where ``values == v``, ascending) for each ``v`` in ``range(count)``
    that occurs (``values`` in -1..count-1; -1 = none): one stable sort instead of a pass
    over the rows per value."""
    keys = values + 1
    # A stable sort of 16-bit keys is a radix sort (values here are unit or group indexes).
    order = np.argsort(keys.astype(np.uint16) if count < 2**16 else keys, kind="stable")
    bounds = np.searchsorted(keys[order], np.arange(1, count + 2))
    return [(v, order[bounds[v]:bounds[v + 1]]) for v in range(count) if bounds[v + 1] > bounds[v]]


def _unit_costs(machine: Machine, sigs: OpColumns, where: Callable[[int], str], layout: _Layout,
                unit_cache: dict | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Compute cycles, fixed cycles and compute energy (pJ) of every signature on its unit."""
    n = len(sigs)
    compute = np.zeros(n, dtype=np.int64)
    fixed = np.zeros(n, dtype=np.int64)
    energy_compute = np.zeros(n, dtype=np.float64)
    unit_names = list(machine.units)
    for u, rows, rows_key in layout.unit_rows:
        name = unit_names[u]
        unit = machine.units[name]
        key = None if unit_cache is None else (machine.unit_key(name), rows_key)
        if key is not None and key in unit_cache:
            compute[rows], energy_compute[rows] = unit_cache[key]
            fixed[rows] = unit.fixed_cycles
            continue
        sub = sigs.take_lazily(rows)
        over = getattr(unit, "over_capacity", None)
        if over is not None and over(sub).any():
            first = int(rows[np.argmax(over(sub))])
            raise TraceError(f"{where(first)}, column 'elements': more entries than {name!r} holds "
                             f"({unit.config.entries * unit.config.count})")
        try:
            compute[rows] = unit.ref_cycles(sub)
        except OpError as err:
            raise TraceError(f"{where(int(rows[err.row]))}, column {err.column!r}: {err.message}") from None
        fixed[rows] = unit.fixed_cycles
        energy_compute[rows] = unit.energy_pj(sub)
        if key is not None:
            _keep(unit_cache, key, (compute[rows], energy_compute[rows]))
    return compute, fixed, energy_compute


def _device_groups(machine: Machine, sigs: OpColumns, where: Callable[[int], str]) -> tuple[np.ndarray, np.ndarray]:
    """Per signature, the first device of its ``device`` set (0 on one device) and the
    number of devices in the set (int64 arrays)."""
    vocab = sigs.vocab["device"]

    def members(code: int, first: Callable[[], int]) -> tuple[int, ...]:
        return machine.device_set(vocab.values[code], lambda: where(first()))

    # (first member, member count) of each set, as one integer: one lookup per distinct set.
    width = machine.devices + 1

    def packed(code: int, first: Callable[[], int]) -> int:
        found = members(code, first)
        return found[0] * width + len(found)

    rep, sizes = np.divmod(_per_distinct(sigs.codes["device"].astype(np.int64), len(vocab), packed), width)
    return rep, sizes


def _per_distinct(keys: np.ndarray, size: int, look: Callable[[int, Callable[[], int]], int]) -> np.ndarray:
    """``look(k, first)`` of each distinct value ``k`` of ``keys`` (int64 in ``0..size-1``),
    spread over the rows (int64): one lookup per distinct value. ``first()`` is the first
    row holding ``k``, for errors; when several lookups fail, the error of the one whose
    first row comes first is raised (the one a row-by-row pass would meet)."""
    if size <= max(4 * len(keys), 1 << 16):
        distinct, index = np.flatnonzero(np.bincount(keys, minlength=size)), None
    else:   # a sparse key space: hash the keys instead of counting every possible one
        index, distinct = pd.factorize(keys)
    values = np.empty(len(distinct), dtype=np.int64)
    failures = []
    for i, k in enumerate(distinct.tolist()):
        first = lambda k=k: int(np.argmax(keys == k))  # noqa: E731
        try:
            values[i] = look(k, first)
        except HwsimError as err:
            failures.append((first(), err))
    if failures:
        raise min(failures, key=lambda failure: failure[0])[1]
    if index is not None:
        return values[index]
    table = np.zeros(size, dtype=np.int64)
    table[distinct] = values
    return table[keys]


def _collective_costs(machine: Machine, sigs: OpColumns, rows: np.ndarray, where, cells: CellsBuilder,
                      latency: np.ndarray) -> None:
    """Fill the fabric channels' bytes, busy cycles and energy and the steps' latency of the
    collective signatures ``rows`` (see :mod:`hwsim.engine.collectives`): the options of each
    distinct (kind, group, algorithm, peer) once, then every size of it at once."""
    kinds, devices, kernels = sigs.vocab["kind"], sigs.vocab["device"], sigs.vocab["kernel"]
    # One integer per (kind, device set, algorithm, peer), each field below its own size.
    peer = sigs.ints["peer"][rows].astype(np.int64)
    peer = peer - peer.min()
    key = np.zeros(len(rows), dtype=np.int64)
    for codes, size in ((sigs.codes["kind"][rows], len(kinds)), (sigs.codes["device"][rows], len(devices)),
                        (sigs.codes["kernel"][rows], len(kernels)), (peer, int(peer.max()) + 1)):
        key = key * max(size, 1) + codes
    _, group_of = np.unique(key, return_inverse=True)
    energy_per_bit = np.array([ch.resource.config.energy_per_bit if hasattr(ch.resource.config, "energy_per_bit")
                               else 0.0 for ch in machine.channels])
    for g in range(int(group_of.max()) + 1):
        mine = rows[group_of.ravel() == g]
        r0 = int(mine[0])
        at = lambda r=r0: where(r)  # noqa: E731
        members = machine.device_set(devices.values[sigs.codes["device"][r0]], at)
        found = collective_options(machine, kinds.values[sigs.codes["kind"][r0]], members,
                                   kernels.values[sigs.codes["kernel"][r0]], int(sigs.ints["peer"][r0]), at)
        sizes = sigs.ints["bytes_read"][mine].astype(np.float64)
        best = choose(found, sizes)
        for o, option in enumerate(found):
            chosen = mine[best == o]
            if not chosen.size or not option.channels.size:
                latency[chosen] = option.latency
                continue
            amount = sizes[best == o][:, None] * option.coef[None, :]
            channels = option.channels
            cells.add_block(chosen, channels, np.ceil(amount).astype(np.int64), option.busy(sizes[best == o]),
                            amount * 8.0 * energy_per_bit[channels][None, :])
            latency[chosen] = option.latency


def _path_groups(rows: np.ndarray, moves: np.ndarray, unit_idx: np.ndarray, tiers: dict[str, np.ndarray],
                 most: int) -> dict[tuple[bool, int, int, int, int], np.ndarray]:
    """Rows grouped by (moves data?, unit, src, src2, dst tier), in order of first appearance.

    Few rows are grouped in Python; many by a hash factorisation of one integer per row
    (each field + 1 is >= 0 and < ``most + 2``).
    """
    columns = (unit_idx, tiers["src"], tiers["src2"], tiers["dst"])
    if len(rows) <= 64:
        found: dict[tuple, list[int]] = {}
        keys = zip(moves[rows].tolist(), *(c[rows].tolist() for c in columns), strict=True)
        for row, key in zip(rows.tolist(), keys, strict=True):
            found.setdefault(key, []).append(row)
        return {key: np.asarray(members, dtype=np.int64) for key, members in found.items()}
    width = most + 2
    key = moves.astype(np.int64)
    for column in columns:
        key = key * width + (column + 1)
    inverse, keys = pd.factorize(key[rows])
    members = dict(_rows_by_value(inverse, len(keys)))
    groups = {}
    for g, code in enumerate(keys.tolist()):
        fields = []
        for _ in range(4):
            code, rest = divmod(code, width)
            fields.append(rest - 1)
        dst, src2, src, u = fields
        groups[(bool(code), u, src, src2, dst)] = rows[members[g]]
    return groups


def _path_plan(machine: Machine, sigs: OpColumns, kind_class: np.ndarray, unit_idx: np.ndarray,
               tiers: dict[str, np.ndarray], unit_names: list[str], tier_names: list[str]) -> tuple[_PathGroup, ...]:
    """The legs of every signature that moves bytes, per group of signatures that move them
    alike: grouped by (moves data?, unit, src, src2, dst tiers), a handful of groups, each
    then costed with whole-array numpy operations."""
    traffic = (kind_class & _BOOKKEEPING) == 0
    movers = np.array([False, *(machine.units[name].moves_data for name in unit_names)])   # by unit + 1
    moves = traffic & movers[unit_idx + 1] | (traffic & (unit_idx < 0))
    read, read2, write = (sigs.ints[c] for c in ("bytes_read", "bytes_read2", "bytes_written"))
    groups = _path_groups(np.flatnonzero(traffic), moves, unit_idx, tiers, max(len(unit_names), len(tier_names)))
    plan = []
    for (is_move, u, src, src2, dst), rows in groups.items():
        if is_move:
            # A copy: read the source tier, cross the links, write the destination tier
            # (and queue on the DMA group's own bandwidth when a DMA engine runs it).
            path = machine.route(tier_names[src], tier_names[dst])
            # A copy within one tier reads and then writes it: both cross the same channel.
            roles = ("read",) + ("transit",) * (len(path) - 2) + ("write",) if len(path) > 1 else ("read", "write")
            path = path if len(path) > 1 else path * 2
            if u >= 0:
                path, roles = (*path, machine.channel_index[unit_names[u]]), (*roles, "transit")
            legs = (_Leg(path, roles, read[rows], "bytes_read"),)
            plan.append(_PathGroup(rows, legs, unit_names[u] if u >= 0 else None))
            continue
        home = machine.units[unit_names[u]].home
        legs = []
        for tier, amount, column in ((src, read, "bytes_read"), (src2, read2, "bytes_read2")):
            if tier != NO_TIER:
                # Bytes read from a remote tier stream into the unit; they are not written
                # into its home tier on the way, so the home tier is not on the path.
                path = machine.route(tier_names[tier], home)
                path = path if tier_names[tier] == home else path[:-1]
                legs.append(_Leg(path, ("read",) + ("transit",) * (len(path) - 1), amount[rows], column))
        if dst != NO_TIER:
            path = machine.route(home, tier_names[dst])
            path = path if tier_names[dst] == home else path[1:]
            legs.append(_Leg(path, ("transit",) * (len(path) - 1) + ("write",), write[rows], "bytes_written"))
        plan.append(_PathGroup(rows, tuple(legs), None))
    return tuple(plan)


def _channel_batches(groups: tuple[_PathGroup, ...], cells: CellsLayout) -> tuple[_ChannelBatch, ...]:
    """The parts of ``cells`` (one per group, leg and channel, in that order) by (channel,
    role), in order of first appearance: a sweep point that changes a tier's bandwidth then
    costs that tier in one call per role, not once per group and leg."""
    parts: dict[tuple[int, str], list[tuple[np.ndarray, np.ndarray, str, np.ndarray]]] = {}
    k = 0
    for group in groups:
        for leg in group.legs:
            for channel, role in zip(leg.path, leg.roles, strict=True):
                parts.setdefault((channel, role), []).append((group.rows, leg.amount, leg.column, cells.positions(k)))
                k += 1
    batches = []
    for (channel, role), found in parts.items():
        rows, amount, columns, dest = zip(*found, strict=True)
        rows = np.concatenate(rows)
        batches.append(_ChannelBatch(channel, role, rows, np.concatenate(amount), np.concatenate(dest),
                                     (rows.tobytes(), columns)))
    return tuple(batches)


def _route_costs(machine: Machine, sigs: OpColumns, layout: _Layout, cache: dict | None):
    """Bytes, busy cycles and energy of each channel crossed (cells), and path latency, per
    signature: each channel's parts costed in one call per role (or taken from ``cache``, by
    the channel's resource config, role and the parts' signatures and bytes columns), the
    latency the slowest leg's."""
    busy = np.empty(layout.cells.size, dtype=np.int64)
    energy = np.empty(layout.cells.size, dtype=np.float64)
    for batch in layout.batches:
        key = None if cache is None else (machine.channel_key(batch.channel), batch.role, batch.key)
        found = None if key is None else cache.get(key)
        if found is None:
            channel = machine.channels[batch.channel]
            columns = getattr(channel.resource, "op_columns", None)
            if columns not in batch.columns:
                batch.columns[columns] = sigs.take(batch.rows, columns)
            found = (channel.busy_cycles(batch.amount, batch.columns[columns], batch.role),
                     channel.resource.channel_energy_pj(batch.amount.astype(np.float64), batch.role))
            if key is not None:
                _keep(cache, key, found)
        busy[batch.dest] = found[0]
        energy[batch.dest] = found[1]
    latency = np.zeros(len(sigs), dtype=np.int64)
    channel_latency = {}
    for group in layout.groups:
        lat = 0
        for leg in group.legs:
            for c in leg.path:
                if c not in channel_latency:
                    channel_latency[c] = machine.channels[c].resource.latency_cycles
            lat = max(lat, int(sum(channel_latency[c] for c in dict.fromkeys(leg.path))))
        if group.dma is not None:
            lat += int(machine.units[group.dma].cycles(sigs.take(group.rows[:1]))[0])
        latency[group.rows] = lat
    return layout.cells.build_gathered(None, busy, energy), latency


def batch_costs(machine: Machine, ops, source: str = "ops", first_row: int = 1) -> SignatureCosts:
    """Costs of each row of ``ops`` (validated trace rows: OpColumns, or a DataFrame of them
    as ``Trace.to_frame`` gives, possibly rows of several traces), one entry per row, for
    callers that time ops themselves (the calibration fit). Rows are numbered from
    ``first_row`` in errors."""
    if not isinstance(ops, OpColumns):
        ops = _columns_of(ops)
    ids = ops.ints["op_id"]
    return signature_costs(machine, ops, lambda i: f"{source}: row {first_row + i} (op_id {int(ids[i])})")


def _columns_of(frame) -> OpColumns:
    """Validated rows as a DataFrame -> op columns (no validation again: op ids may repeat)."""
    from hwsim.trace.schema import COLUMNS, new_vocabulary

    vocab = new_vocabulary()
    ints, codes = {}, {}
    for col in COLUMNS:
        if col.dtype == "int64":
            ints[col.name] = frame[col.name].to_numpy(dtype=np.int64)
        elif col.dtype == "string":
            local, uniques = pd.factorize(frame[col.name].astype(str).to_numpy(dtype=object))
            codes[col.name] = vocab[col.name].encode(list(uniques))[local]
    n = len(frame)
    return OpColumns(ints, codes, vocab, np.zeros(n + 1, dtype=np.int64), np.zeros(0, dtype=np.int64))
