"""`RunTotals`: what a run's summary is made of, accumulated batch by batch.

The engine adds every batch of records here as it finishes, so a summary never needs the
whole records table in memory. Most quantities come per *group* of ops that share a cost
signature (a count, a component, a kind, FLOPs, energies, bytes and busy cycles per memory
channel); the time-dependent ones (busy spans, when allocations happen) come per op.
Integer totals are exact; energy totals are exact sums rounded once
(:mod:`hwsim.metrics.exact`), so they do not depend on batch sizes or order.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hwsim.memo import remember
from hwsim.metrics.exact import ExactSums, scaled_to_float


class RunTotals:
    """Totals over the ops of one run.

    ``components`` are the record ``component`` names (compute units, then memory
    resources that name a unit-less transfer), ``channels`` the memory channel names, and
    ``tiers`` the tier names occupancy is tracked for.
    """

    def __init__(self, components: Sequence[str], channels: Sequence[str], tiers: Sequence[str]) -> None:
        self.components = list(components)
        self.channels = list(channels)
        self.tiers = list(tiers)
        self.ops = 0
        self.total_cycles = 0
        self.component_ops = np.zeros(len(self.components), dtype=np.int64)
        self.component_flops = np.zeros(len(self.components), dtype=np.int64)
        self.component_span = np.zeros(len(self.components), dtype=np.int64)
        self.channel_busy = np.zeros(len(self.channels), dtype=np.int64)
        self.channel_bytes = np.zeros(len(self.channels), dtype=np.int64)
        # Energy is summed exactly per (part, op kind): a part is a component's compute or
        # one memory channel; per-component, per-kind and dynamic totals add those up.
        self.energy = ExactSums()
        self._parts = [("compute", c) for c in self.components] + [("channel", c) for c in self.channels]
        self._labels = np.zeros((len(self._parts), 0), dtype=np.int64)   # [part, kind code] -> label
        self._kind_names: list[str] = []
        # (parts, kinds) of the one label table the energy sums were labelled by, else None.
        self._labels_key: tuple | None = None
        self._moves: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        # Disjoint busy intervals (start, end cycles) of compute ops (a unit ran them) and of
        # communication ops (collectives, sends): how much communication compute hides.
        self.compute_busy = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))
        self.comm_busy = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))

    def add_groups(self, counts: np.ndarray, component: np.ndarray, kind: np.ndarray, kind_names: Sequence[str],
                   flops: np.ndarray, energy_compute_pj: np.ndarray, energy_pj: np.ndarray,
                   cells: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]) -> None:
        """Add groups of ops with equal costs: ``counts[g]`` ops of each group ``g``.

        ``component`` indexes :attr:`components`; ``kind`` is each group's op kind as a code
        into ``kind_names``; ``cells`` are the ``(group, channel, bytes, busy cycles, pJ)``
        arrays of the (group, channel) pairs with any traffic, per op of the group (a channel
        a group does not cross adds nothing).
        """
        counts = np.asarray(counts, dtype=np.int64)
        self.ops += int(counts.sum())
        n = len(self.components)
        self.component_ops += _group_sum(component, counts, n)
        self.component_flops += _group_sum(component, counts * flops, n)
        g, c, nbytes, busy, pj = cells
        weight = counts[g]
        np.add.at(self.channel_bytes, c, weight * nbytes)
        np.add.at(self.channel_busy, c, weight * busy)
        if len(kind_names) > self._labels.shape[1]:
            self._kind_names = list(kind_names)
            self._labels = self._label_table()
        labels = self._labels[component, kind]
        self.energy.add(labels, energy_compute_pj, counts)
        used = pj != 0
        self.energy.add(self._labels[n + c[used], kind[g[used]]], pj[used], counts[g[used]])

    def _label_table(self) -> np.ndarray:
        """``[part, kind code] -> label code`` of the energy sums. The first table of a run
        labels a fresh set of sums in a fixed order, so runs of the same machine and trace
        share it (a sweep's runs would each build the same few hundred labels)."""
        if self.energy.labels():
            self._labels_key = None
            return self._new_label_table()
        key = self._labels_key = (tuple(self._parts), tuple(self._kind_names))
        found = _FIRST_TABLES.get(key)
        if found is None:
            table = self._new_label_table()
            table.flags.writeable = False
            found = remember(_FIRST_TABLES, key, (self.energy.labels(), table), FIRST_TABLES_SIZE)
        else:
            self.energy.adopt_labels(found[0])
        return found[1]

    def _new_label_table(self) -> np.ndarray:
        return np.array([[self.energy.label_code((part, k)) for k in self._kind_names] for part in self._parts],
                        dtype=np.int64).reshape(len(self._parts), -1)

    def add_spans(self, component: np.ndarray, spans: np.ndarray, counts: np.ndarray | None = None) -> None:
        """Add busy spans (end - start cycles) per op, or per group with ``counts``."""
        weights = spans if counts is None else spans * counts
        self.component_span += _group_sum(component, weights, len(self.components))

    def add_busy(self, compute: np.ndarray, comm: np.ndarray, start: np.ndarray, end: np.ndarray) -> None:
        """Ops of a batch that compute (mask) and that communicate (mask), with their cycles."""
        if comm.any():
            self.comm_busy = union(*self.comm_busy, start[comm], end[comm])
        if comm.any() or self.comm_busy[0].size:
            self.compute_busy = union(*self.compute_busy, start[compute], end[compute])

    def communication(self) -> dict[str, int] | None:
        """Cycles some compute runs, some communication runs, and communication runs while no
        compute does (exposed); None for a run without communication."""
        if not self.comm_busy[0].size:
            return None
        comm = int((self.comm_busy[1] - self.comm_busy[0]).sum())
        compute = int((self.compute_busy[1] - self.compute_busy[0]).sum())
        hidden = overlap(*self.comm_busy, *self.compute_busy)
        return {"compute_cycles": compute, "communication_cycles": comm, "exposed_communication_cycles": comm - hidden}

    def add_end(self, last_end: int) -> None:
        """A batch's largest end cycle."""
        self.total_cycles = max(self.total_cycles, int(last_end))

    def add_moves(self, start: np.ndarray, op_id: np.ndarray, tier: np.ndarray, delta: np.ndarray) -> None:
        """Alloc (+) and free (-) ops: when (start cycle), which op, which tier index, bytes."""
        if len(start):
            self._moves.append((np.asarray(start, dtype=np.int64), np.asarray(op_id, dtype=np.int64),
                                np.asarray(tier, dtype=np.int64), np.asarray(delta, dtype=np.int64)))

    def peak_occupancy(self) -> dict[str, float]:
        """Peak bytes allocated per tier, replaying allocs and frees in simulated-time order
        (ties by op id)."""
        if not self._moves:
            return {}
        start, op_id, tier, delta = (np.concatenate(part) for part in zip(*self._moves, strict=True))
        # Each tier's moves in (start, op_id) order (stable: ties keep the order added), the
        # tiers one after another; a tier's running total is the overall one minus what the
        # tiers before it added.
        order = np.lexsort((op_id, start, tier))
        tier, running = tier[order], np.cumsum(delta[order])
        first = np.flatnonzero(np.concatenate(([True], tier[1:] != tier[:-1])))
        before = np.concatenate(([0], running[first[1:] - 1]))
        peaks = np.maximum.reduceat(running, first) - before
        return {self.tiers[t]: float(max(int(p), 0)) for t, p in zip(tier[first].tolist(), peaks.tolist(), strict=True)}

    def energy_totals(self) -> tuple[dict[str, float], dict[str, float], float]:
        """Exact energy totals (pJ): per component (its compute and every channel of a
        resource of that name), per op kind, and all dynamic energy.

        A run whose energy sums came from the same batches, under the same labels, as an
        earlier run's has that run's totals (most points of a sweep change no energy)."""
        history = self.energy.history()
        key = None if history is None or self._labels_key is None else (history, self._labels_key)
        found = None if key is None else _ENERGY_TOTALS.get(key)
        if found is None:
            found = self._energy_totals()
            if key is not None:
                remember(_ENERGY_TOTALS, key, found, ENERGY_TOTALS_SIZE)
        return dict(found[0]), dict(found[1]), found[2]

    def _energy_totals(self) -> tuple[dict[str, float], dict[str, float], float]:
        energy = self.energy
        exact, special = energy.exact_sums(), energy.special_sums()

        def owner(part: tuple[str, str]) -> str:
            return part[1] if part[0] == "compute" else part[1].split(":", 1)[0]

        # One pass over the labels holding a value (a machine has many parts and a trace
        # many kinds, most pairs of which never occur): exact integer sums per component,
        # per kind and in all; a sum that met a value that is not finite is its float sum.
        sums = {("component", owner(part)): 0 for part in self._parts}
        sums.update({("kind", k): 0 for k in self._kind_names})
        sums["all"] = 0
        odd: dict[object, list[float]] = {}
        labels, parts, kinds = energy.labels(), set(self._parts), set(self._kind_names)
        for code in energy.used_codes():
            part, k = labels[code]
            if part not in parts or k not in kinds:
                continue
            for key in (("component", owner(part)), ("kind", k), "all"):
                if code in special:
                    odd.setdefault(key, []).append(special[code])
                else:
                    sums[key] += exact.get(code, 0)
        total = {key: float(sum(odd[key])) if key in odd else scaled_to_float(value) for key, value in sums.items()}
        return ({name: v for (what, name), v in ((k, v) for k, v in total.items() if k != "all") if what == "component"},
                {name: v for (what, name), v in ((k, v) for k, v in total.items() if k != "all") if what == "kind"},
                total["all"])


#: The first label table of runs, by (parts, kinds): the labels in code order, and the table.
_FIRST_TABLES: dict[tuple, tuple[list, np.ndarray]] = {}
FIRST_TABLES_SIZE = 64
#: Energy totals of recent runs, by (the batches their sums came from, their labels).
_ENERGY_TOTALS: dict[tuple, tuple[dict[str, float], dict[str, float], float]] = {}
ENERGY_TOTALS_SIZE = 64


def _group_sum(groups: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """Exact int64 sums of ``values`` per group index (``np.add.at`` adds integers; it is
    also faster than a float ``bincount`` at every batch size)."""
    out = np.zeros(n, dtype=np.int64)
    np.add.at(out, groups, np.asarray(values, dtype=np.int64))
    return out


def union(starts: np.ndarray, ends: np.ndarray, more_starts: np.ndarray, more_ends: np.ndarray):
    """The disjoint, sorted union of two sets of [start, end) intervals (empty ones dropped)."""
    s = np.concatenate([starts, np.asarray(more_starts, dtype=np.int64)])
    e = np.concatenate([ends, np.asarray(more_ends, dtype=np.int64)])
    keep = e > s
    s, e = s[keep], e[keep]
    if not s.size:
        return s, e
    order = np.argsort(s, kind="stable")
    s, e = s[order], np.maximum.accumulate(e[order])
    new = np.concatenate(([True], s[1:] > e[:-1]))
    group = np.cumsum(new) - 1
    out_e = np.zeros(int(group[-1]) + 1, dtype=np.int64)
    np.maximum.at(out_e, group, e)
    return s[new], out_e


def overlap(a_start: np.ndarray, a_end: np.ndarray, b_start: np.ndarray, b_end: np.ndarray) -> int:
    """Cycles two disjoint sorted interval sets have in common."""
    if not a_start.size or not b_start.size:
        return 0
    # Intersection length = |A| + |B| - |A u B| (each set disjoint).
    total = int((a_end - a_start).sum() + (b_end - b_start).sum())
    s, e = union(a_start, a_end, b_start, b_end)
    return total - int((e - s).sum())
