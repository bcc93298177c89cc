"""Costs on a machine of several device kinds (``device_kinds`` in the machine file).

An op on a group of devices is the same op on every member. On one kind of device the first
member stands for all of them (:func:`hwsim.engine.costs.costs_on`); when the group holds
devices of several kinds, the op is costed on the first member of each kind, and:

* its timing (unit, channels held, fixed, compute and latency cycles) is the slowest
  kind's — the group's op ends when its slowest member does (the first kind on ties);
* its energy adds up every member's: each kind's energy per op times its members (in the
  totals by component, the compute part is booked on the slowest kind's unit, as a group's
  is on its first member's; the memory part on each kind's own channels);
* the other kinds' bytes still count on their devices' channels (in the records and the
  totals) without holding them in the timing, and an ``alloc`` or ``free`` on the group
  moves the bytes on each kind's tier, so each kind's capacity is checked on its own.

A collective is costed once, on the fabric, whatever kinds its members are.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from hwsim.engine.channel_cells import CellsBuilder
from hwsim.engine.costs import SignatureCosts, costs_on
from hwsim.trace.columns import OpColumns
from hwsim.trace.schema import COLLECTIVE_KINDS

#: Per-signature fields taken from the slowest kind.
TIMING_FIELDS = ("kind", "flops", "unit", "component", "kernel", "fixed", "compute", "latency", "alloc_tier",
                 "alloc_delta", "duration")


def kind_groups(machine, sigs: OpColumns, where: Callable[[int], str]) -> tuple[np.ndarray, np.ndarray]:
    """Per signature and device kind: the first member of that kind in its device set (-1:
    none) and how many members are of that kind (int64 ``[signatures, kinds]``). A
    collective keeps only its first member's kind."""
    n, kinds = len(sigs), len(machine.kinds)
    rep = np.full((n, kinds), -1, dtype=np.int64)
    count = np.zeros((n, kinds), dtype=np.int64)
    codes, vocab = sigs.codes["device"], sigs.vocab["device"]
    names = vocab.values
    kind_names = np.asarray(sigs.vocab["kind"].values, dtype=object)
    collective = np.isin(kind_names, COLLECTIVE_KINDS)[sigs.codes["kind"]]   # per kind code, then per signature
    for code in np.unique(codes).tolist():
        rows = codes == code
        first = int(np.argmax(rows))
        members = machine.device_set(names[code], lambda first=first: where(first))
        for d in members:
            k = machine.kind_of[d]
            if count[first, k] == 0:
                rep[rows, k] = d
            count[rows, k] += 1
        lead = machine.kind_of[members[0]]
        others = [k for k in range(kinds) if k != lead]
        together = rows & collective
        if others and together.any():
            count[np.ix_(together, [lead])] = len(members)
            rep[np.ix_(together, others)] = -1
            count[np.ix_(together, others)] = 0
    return rep, count


def mixed_costs(machine, sigs: OpColumns, where: Callable[[int], str], unit_cache: dict | None) -> SignatureCosts:
    """:func:`hwsim.engine.costs.signature_costs` on a machine of several device kinds (see
    the module docstring)."""
    n = len(sigs)
    if n == 0:   # no signature (a batch that adds none): nothing of a kind to cost
        return costs_on(machine, sigs, where, unit_cache, np.zeros(0, dtype=np.int64), np.ones(0, dtype=np.int64))
    rep, count = kind_groups(machine, sigs, where)
    parts: list[tuple[int, np.ndarray, SignatureCosts]] = []
    for k in range(len(machine.kinds)):
        rows = np.flatnonzero(rep[:, k] >= 0)
        if rows.size == 0:
            continue
        # Each kind's subset of signatures has cached unit and channel costs of its own.
        cache = None if unit_cache is None else unit_cache.setdefault(("device kind", k, rows.tobytes()), {})
        costs = costs_on(machine, sigs.take(rows), lambda i, rows=rows: where(int(rows[i])), cache,
                         rep[rows, k], count[rows, k])
        parts.append((k, rows, costs))
    duration = np.full((n, len(machine.kinds)), -1, dtype=np.int64)
    for k, rows, costs in parts:
        duration[rows, k] = costs.duration
    slowest = np.argmax(duration, axis=1)   # the first kind on ties

    fields = {}
    for name in TIMING_FIELDS:
        sample = getattr(parts[0][2], name)
        fields[name] = np.zeros(n, dtype=sample.dtype)
    energy_compute = np.zeros(n)
    energy = np.zeros(n)
    alloc_more = np.full((n, len(machine.kinds)), -1, dtype=np.int64)
    cells = CellsBuilder(n, len(machine.channels))
    for k, rows, costs in parts:
        mine = slowest[rows] == k
        for name in TIMING_FIELDS:
            fields[name][rows[mine]] = getattr(costs, name)[mine]
        energy_compute[rows] += costs.energy_compute_pj
        energy[rows] += costs.energy_pj
        alloc_more[rows[~mine], k] = costs.alloc_tier[~mine]
        c = costs.cells
        held = mine[c.sig]
        cells.add(rows[c.sig], c.channel, c.bytes, np.where(held, c.busy, 0), c.energy)
    alloc_more[alloc_more == fields["alloc_tier"][:, None]] = -1
    keep = (alloc_more >= 0).any(axis=0)
    return SignatureCosts(**fields, cells=cells.build(), energy_compute_pj=energy_compute, energy_pj=energy,
                          alloc_more=alloc_more[:, keep] if keep.any() else None)
