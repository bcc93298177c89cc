"""The analytical timing strategy: a roofline pass over a trace with no events and no contention.

Each op costs what it would cost on an idle machine, from the same per-op cost model the
event replay uses (:mod:`hwsim.engine.costs`)::

    duration = fixed + max(compute cycles, max over channels crossed of busy cycles + latency)

and ops are placed in time by stream order, dependencies and the host's launches only::

    start = max(end of the previous op of the stream, end of every dependency, host issue)
    end   = start + duration

No unit or channel is ever waited for, so every op ends no later than in the event replay:
the roofline total is a lower bound of the event total, equal to it when nothing contends
(one stream, or streams that never share a unit or channel at the same time). The gap
between the two levels, per op kind, is what contention costs (:func:`gap_by_kind`).

Placement is one pass over the rows (:mod:`hwsim.engine.critical_path`, compiled for large
batches); everything else is per cost signature. Spills, records, totals, the summary and
overflow errors come from the same pipeline as the event level (:mod:`hwsim.engine.simulate`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from hwsim.engine.costs import SignatureCosts
from hwsim.engine.critical_path import place
from hwsim.engine.feed import Batch, BatchFeed
from hwsim.metrics.totals import RunTotals
from hwsim.trace.trace import Trace


def op_durations(costs: SignatureCosts) -> np.ndarray:
    """Contention-free duration of each op (signature) of ``costs``, reference-clock cycles."""
    return costs.duration


class RooflinePass:
    """Start and end cycles of every op, batch after batch, without contention."""

    fidelity = "roofline"

    def __init__(self, feed: BatchFeed, trace: Trace) -> None:
        self.feed = feed
        self._stream_vocab = trace.vocab["stream"]
        self.end = np.zeros(trace.num_ops, dtype=np.int64)   # end cycle by trace row
        self.stream_end = np.zeros(max(len(self._stream_vocab), 1), dtype=np.int64)
        self.unit_sum = np.zeros(len(feed.machine.units), dtype=np.int64)

    def run(self, finished: Callable[[Batch, np.ndarray, np.ndarray, np.ndarray], None]) -> None:
        """Place every batch; ``finished(batch, ready, start, end)`` gets each in trace order
        (``ready == start``: nothing queues)."""
        while (batch := self.feed.next()) is not None:
            ops = batch.ops
            sig_duration = batch.costs.duration
            if len(self._stream_vocab) > len(self.stream_end):
                self.stream_end = np.concatenate(
                    [self.stream_end, np.zeros(len(self._stream_vocab) - len(self.stream_end), dtype=np.int64)])
            start = place(ops.codes["stream"], batch.sig, sig_duration, batch.issue, ops.dep_offsets, ops.dep_rows,
                          ops.first_row, self.end, self.stream_end)
            end = self.end[ops.first_row:ops.first_row + len(ops)]
            counts = batch.counts
            units = np.flatnonzero((counts > 0) & (batch.costs.unit >= 0))
            if units.size:
                self.unit_sum += _unit_sums(batch.costs.unit[units], counts[units] * sig_duration[units],
                                            len(self.unit_sum))
            finished(batch, start, start, end)

    def summary_blocks(self, totals: RunTotals) -> dict:
        """``fidelity`` and the ``roofline`` block of the summary: ``critical_path_cycles``
        (= ``total_cycles``), the contention-free sum of op durations per compute unit
        (``unit_sum_cycles``) and per unit instance (``unit_bound_cycles``), busy cycles per
        channel, and ``bound_cycles``, the largest of these — a tighter lower bound of the
        event total when streams overlap."""
        machine = self.feed.machine
        unit_names = list(machine.units)
        sums = {name: int(self.unit_sum[u]) for u, name in enumerate(unit_names)}
        per_instance = {name: -(-sums[name] // machine.units[name].instances) for name in unit_names}
        channels = dict(zip(totals.channels, totals.channel_busy.tolist(), strict=True))
        total = int(totals.total_cycles)
        bound = max([total, *per_instance.values(), *channels.values()])
        return {"fidelity": "roofline",
                "roofline": {"critical_path_cycles": total, "unit_sum_cycles": sums,
                             "unit_bound_cycles": per_instance, "channel_busy_cycles": channels,
                             "bound_cycles": int(bound)}}


def _unit_sums(unit: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    out = np.zeros(n, dtype=np.int64)
    np.add.at(out, unit, values)
    return out


def roofline(machine, trace: Trace, *, allow_overflow: bool = False, batch_rows: int = 65536):
    """``hwsim.simulate(machine, trace, fidelity="roofline")`` (kept for existing callers)."""
    from hwsim.results import simulate

    return simulate(machine, trace, fidelity="roofline", allow_overflow=allow_overflow, batch_rows=batch_rows)


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
