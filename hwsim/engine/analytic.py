"""The analytical fidelity level: a roofline pass over a trace with no events and no contention.

Each op costs what it would cost on an idle machine, from the same per-op cost model the
event engine uses (:func:`hwsim.engine.costs.batch_costs`)::

    duration = fixed + max(compute cycles, max over channels crossed of busy cycles + latency)

and ops are placed in time by stream order, dependencies and the host's launches only::

    start = max(end of the previous op of the stream, end of every dependency, host issue)
    end   = start + duration

No unit or channel is ever waited for, so every op ends no later than in the event replay:
the roofline total is a lower bound of the event total, equal to it when nothing contends
(one stream, or streams that never share a unit or channel at the same time). The gap
between the two levels, per op kind, is what contention costs (:func:`gap_by_kind`).

The pass is vectorised: within a stream, ops without dependencies end at a running sum of
durations; Python only visits ops that have dependencies (and each stream's first op).
"""

from __future__ import annotations

from array import array
from itertools import chain

import numpy as np
import pandas as pd

from hwsim.components.host import HostClock
from hwsim.config.machine import MachineConfig
from hwsim.engine.costs import BatchCosts, batch_costs
from hwsim.engine.machine import Machine
from hwsim.engine.records import finish_records, static_records
from hwsim.engine.simulate import RunResult
from hwsim.errors import CapacityError
from hwsim.metrics.summary import summarize
from hwsim.trace.trace import Trace
from hwsim.units import format_quantity


def op_durations(costs: BatchCosts) -> np.ndarray:
    """Contention-free duration of each op of a batch, in reference-clock cycles (int64)."""
    busy = costs.busy
    if busy.shape[1] == 0:
        return costs.fixed + costs.compute
    memory = np.where(busy.any(axis=1), busy.max(axis=1) + costs.latency, 0)
    return costs.fixed + np.maximum(costs.compute, memory)


def roofline(machine: MachineConfig | Machine, trace: Trace, *, allow_overflow: bool = False,
             batch_rows: int = 65536) -> RunResult:
    """Time ``trace`` on ``machine`` without contention; same result shape as ``simulate``.

    ``records`` has the event engine's columns (``ready_cycle == start_cycle``: nothing
    queues); ``summary`` has the same keys plus ``fidelity = "roofline"`` and a
    ``roofline`` block: ``critical_path_cycles`` (= ``total_cycles``), the contention-free
    sum of op durations per compute unit (``unit_sum_cycles``) and per unit instance
    (``unit_bound_cycles``), busy cycles per channel, and ``bound_cycles``, the largest of
    these — a tighter lower bound of the event total when streams overlap.

    Raises CapacityError when a tier's peak allocation exceeds its capacity, unless
    ``allow_overflow``.
    """
    built = machine if isinstance(machine, Machine) else Machine(machine)
    timing = _RooflinePass()
    host = HostClock(built.host)
    static, times = [], []
    channel_busy = np.zeros(len(built.channels), dtype=np.int64)
    channel_bytes = np.zeros(len(built.channels), dtype=np.int64)
    channel_energy = np.zeros(len(built.channels), dtype=np.float64)
    unit_sum = np.zeros(len(built.units), dtype=np.int64)
    rows_loaded = 0
    for frame in trace.iter_batches(batch_rows):
        costs = batch_costs(built, frame, trace.source, rows_loaded + 1, host)
        rows_loaded += len(frame)
        duration = op_durations(costs)
        start = timing.place(costs, duration)
        cycles = np.empty((len(frame), 3), dtype=np.int64)
        cycles[:, 0] = start
        cycles[:, 1] = start
        cycles[:, 2] = start + duration
        times.append(array("q", cycles.tobytes()))
        static.append(static_records(costs, built))
        channel_busy += costs.busy.sum(axis=0)
        channel_bytes += costs.bytes.sum(axis=0)
        channel_energy += costs.channel_energy_pj
        for u in range(len(built.units)):
            unit_sum[u] += int(duration[costs.unit == u].sum())
    records = finish_records(static, times, built.clock_hz)
    config = built.config.to_dict()
    names = [ch.name for ch in built.channels]
    summary = summarize(records, config, trace.meta.to_dict(), {
        "busy": dict(zip(names, channel_busy.tolist(), strict=True)),
        "bytes": dict(zip(names, channel_bytes.tolist(), strict=True)),
        "energy_pj": dict(zip(names, channel_energy.tolist(), strict=True)),
    })
    summary["fidelity"] = "roofline"
    summary["roofline"] = _bounds(built, summary["total_cycles"], unit_sum, channel_busy)
    if summary["overflow"] and not allow_overflow:
        raise CapacityError(_overflow_message(summary, trace.source, built.config.source))
    return RunResult(records=records, summary=summary, machine=config, trace_meta=trace.meta.to_dict())


class _RooflinePass:
    """Start cycles of ops, batch after batch, from stream order and dependencies alone."""

    def __init__(self) -> None:
        self.stream_end: dict[str, int] = {}   # end cycle of the last op placed per stream
        self.earlier: list[list] = []          # per placed batch: [op_ids, ends, index or None]

    def place(self, costs: BatchCosts, duration: np.ndarray) -> np.ndarray:
        """Start cycle of every op in ``costs`` (int64), given its ``duration``.

        Within a stream an op without dependencies starts when its predecessor ends, so its
        end is the stream's running sum of durations plus the offset of the last *anchor*
        at or before it (an op with dependencies, or the stream's first op in the batch).
        Only anchors are visited in Python, in row order (a topological order).

        The host's launch times (``costs.issue``) are a floor on every start. Between
        anchors ``end_i = max(end_(i-1), issue_i) + d_i`` unrolls to
        ``end_i = S_i + max(offset, max over j <= i of (issue_j - S_(j-1)))`` with ``S`` the
        running sum, so the floor is a segmented running maximum, still without Python.
        """
        n = len(duration)
        codes, names = pd.factorize(costs.frame["stream"])
        order = np.argsort(codes, kind="stable")           # rows grouped by stream, in order
        first = np.ones(n, dtype=bool)
        first[1:] = codes[order][1:] != codes[order][:-1]  # first op of each stream (sorted)
        run = np.cumsum(duration[order])
        segment_base = np.maximum.accumulate(np.where(first, run - duration[order], 0))
        inclusive = np.empty(n, dtype=np.int64)            # running sum within the stream
        inclusive[order] = run - segment_base
        has_deps = (costs.frame["deps"] != "").to_numpy(dtype=bool)
        anchor_sorted = first | has_deps[order]
        is_anchor = np.empty(n, dtype=bool)
        is_anchor[order] = anchor_sorted
        anchors = np.flatnonzero(is_anchor)                # row order
        ordinal = np.full(n, -1, dtype=np.int64)
        ordinal[anchors] = np.arange(len(anchors))
        last_anchor = np.maximum.accumulate(np.where(anchor_sorted, np.arange(n), 0))
        governing = np.empty(n, dtype=np.int64)            # per row: ordinal of its anchor
        governing[order] = ordinal[order[last_anchor]]
        previous = np.full(n, -1, dtype=np.int64)          # previous op of the same stream
        previous[order[1:]] = np.where(first[1:], -1, order[:-1])
        floor = self._issue_floor(costs.issue, inclusive, duration, is_anchor, governing, order)
        inclusive_list, governing_list = inclusive.tolist(), governing.tolist()
        floor_list = None if floor is None else (floor + inclusive).tolist()  # floors on ends
        offset = [0] * len(anchors)

        def end_of(row: int) -> int:
            """End cycle of an already placed row of this batch."""
            e = inclusive_list[row] + offset[governing_list[row]]
            return e if floor_list is None or floor_list[row] <= e else floor_list[row]

        own = (duration[anchors] - inclusive[anchors]).tolist()
        issue = costs.issue[anchors].tolist()
        previous_list = previous[anchors].tolist()
        stream_names = [str(x) for x in names]
        start_of_stream = [self.stream_end.get(stream_names[c], 0) for c in codes[anchors].tolist()]
        inside, outside = self._resolve_deps(costs, np.flatnonzero(has_deps))
        deps = costs.deps
        for j, a in enumerate(anchors.tolist()):
            p = previous_list[j]
            t = start_of_stream[j] if p < 0 else end_of(p)
            for dep in deps[a]:
                row = inside.get(dep)
                f = outside[dep] if row is None else end_of(row)
                if f > t:
                    t = f
            if issue[j] > t:
                t = issue[j]
            offset[j] = t + own[j]
        end = inclusive + np.asarray(offset, dtype=np.int64)[governing]
        if floor is not None:
            end = np.maximum(end, floor + inclusive)
        for row in order[np.flatnonzero(np.append(first[1:], True))].tolist():  # each stream's last op
            self.stream_end[stream_names[codes[row]]] = int(end[row])
        self.earlier.append([costs.frame["op_id"].to_numpy(), end, None])
        return end - duration

    @staticmethod
    def _issue_floor(issue: np.ndarray, inclusive: np.ndarray, duration: np.ndarray,
                     is_anchor: np.ndarray, governing: np.ndarray, order: np.ndarray) -> np.ndarray | None:
        """Per row, ``max over non-anchor j <= i of its segment (issue_j - S_(j-1))`` (the
        host's floor on ``end_i - S_i``); None when no op waits for the host."""
        if not issue.any():
            return None
        h = issue - (inclusive - duration)
        h[is_anchor] = np.iinfo(np.int64).min // 4  # an anchor's own issue is applied in place()
        sorted_h = pd.Series(h[order])
        running = sorted_h.groupby(governing[order]).cummax().to_numpy()
        out = np.empty(len(h), dtype=np.int64)
        out[order] = running
        return out

    def _resolve_deps(self, costs: BatchCosts, rows: np.ndarray) -> tuple[dict[int, int], dict[int, int]]:
        """For every op_id that ``rows`` depend on: its row when it is in this batch, else its
        end cycle from an earlier batch."""
        if rows.size == 0:
            return {}, {}
        wanted = np.unique(np.fromiter(chain.from_iterable(costs.deps[i] for i in rows.tolist()),
                                       dtype=np.int64))
        pos = pd.Index(costs.frame["op_id"].to_numpy()).get_indexer(wanted)
        here = pos >= 0
        inside = dict(zip(wanted[here].tolist(), pos[here].tolist(), strict=True))
        outside: dict[int, int] = {}
        missing = wanted[~here]
        for batch in reversed(self.earlier):
            if missing.size == 0:
                break
            if batch[2] is None:
                batch[2] = pd.Index(batch[0])
            found = batch[2].get_indexer(missing)
            hit = found >= 0
            outside.update(zip(missing[hit].tolist(), batch[1][found[hit]].tolist(), strict=True))
            missing = missing[~hit]
        return inside, outside


def _bounds(machine: Machine, total: int, unit_sum: np.ndarray, channel_busy: np.ndarray) -> dict:
    unit_names = list(machine.units)
    sums = {name: int(unit_sum[u]) for u, name in enumerate(unit_names)}
    per_instance = {name: -(-sums[name] // machine.units[name].instances) for name in unit_names}
    channels = {ch.name: int(b) for ch, b in zip(machine.channels, channel_busy.tolist(), strict=True)}
    bound = max([total, *per_instance.values(), *channels.values()])
    return {"critical_path_cycles": int(total), "unit_sum_cycles": sums,
            "unit_bound_cycles": per_instance, "channel_busy_cycles": channels,
            "bound_cycles": int(bound)}


def _overflow_message(summary: dict, trace_source: str, machine_source: str) -> str:
    details = "; ".join(
        f"{name}: peak {format_quantity(summary['tiers'][name]['peak_occupancy_bytes'], 'bytes')} "
        f"> capacity {format_quantity(summary['tiers'][name]['capacity_bytes'], 'bytes')}"
        for name in summary["overflow"])
    return (f"{trace_source} on {machine_source}: the working set does not fit ({details}); "
            "place the spaces elsewhere or pass --allow-overflow")


def gap_by_kind(event_records: pd.DataFrame, analytic_records: pd.DataFrame) -> pd.DataFrame:
    """Per op kind: what the event replay adds to the contention-free roofline, in cycles.

    Both frames are run records of the same trace (joined on ``op_id``). Columns: ``ops``,
    ``roofline_cycles`` (sum of contention-free durations), ``event_cycles`` (sum of
    ``end - ready`` in the event replay), ``queue_cycles`` (waiting for a busy unit),
    ``contention_cycles`` (slower channels while running), ``gap_cycles`` (event minus
    roofline), ``gap_ratio`` (event / roofline; 1.0 = no contention) and ``gap_share``
    (this kind's fraction of the whole gap). One row per kind, sorted by kind.
    """
    ev = event_records[["op_id", "kind", "ready_cycle", "start_cycle", "end_cycle"]]
    an = analytic_records[["op_id", "start_cycle", "end_cycle"]]
    joined = ev.merge(an, on="op_id", how="inner", suffixes=("", "_roofline"), validate="one_to_one")
    if len(joined) != len(ev) or len(joined) != len(an):
        raise ValueError("gap_by_kind: the two record sets are not of the same trace (op_ids differ)")
    roof = (joined["end_cycle_roofline"] - joined["start_cycle_roofline"]).to_numpy()
    frame = pd.DataFrame({
        "kind": joined["kind"].astype(str).to_numpy(),
        "ops": 1,
        "roofline_cycles": roof,
        "event_cycles": (joined["end_cycle"] - joined["ready_cycle"]).to_numpy(),
        "queue_cycles": (joined["start_cycle"] - joined["ready_cycle"]).to_numpy(),
        "contention_cycles": (joined["end_cycle"] - joined["start_cycle"]).to_numpy() - roof,
    })
    out = frame.groupby("kind", sort=True).sum()
    out["gap_cycles"] = out["event_cycles"] - out["roofline_cycles"]
    denominator = out["roofline_cycles"].where(out["roofline_cycles"] > 0)
    out["gap_ratio"] = (out["event_cycles"] / denominator).fillna(1.0)
    total_gap = float(out["gap_cycles"].sum())
    out["gap_share"] = out["gap_cycles"] / total_gap if total_gap else 0.0
    return out
