"""The batches a timing strategy consumes, in trace order: validated ops, the cost signature
of each op, the signatures' costs and the host's launch times.

An in-memory trace is indexed once (:class:`TraceIndex`: its batches, their signature
codes, one signature table for the whole trace) and the index is kept with the trace, so
every later run of it (the points of a sweep) starts from there and only computes what
depends on the machine: the signatures' costs (once per run, for all of them) and the
host's launches. A trace streamed from Parquet is validated and deduplicated batch by
batch, keeping nothing of a batch once it is replayed.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from hwsim.components.host import HostClock
from hwsim.engine.costs import SignatureCosts, signature_costs
from hwsim.engine.machine import Machine
from hwsim.engine.signatures import SignatureTable
from hwsim.errors import HwsimError
from hwsim.trace.columns import OpColumns
from hwsim.trace.trace import Trace


@dataclass
class Batch:
    """One batch of ops ready for timing: row ``i``'s costs are ``costs[sig[i]]``."""

    index: int
    ops: OpColumns
    sig: np.ndarray              # int64 signature code per row
    counts: np.ndarray           # int64 ops per signature of ``costs`` in this batch
    moves: np.ndarray            # rows that allocate or free (int64)
    costs: SignatureCosts
    issue: np.ndarray            # int64 cycle the host has launched each op (earliest start)
    identity: bool = False       # every row is its own signature (``sig`` = 0..n-1, counts all 1)


def _moves(ops: OpColumns) -> np.ndarray:
    """Rows of ``alloc`` and ``free`` ops."""
    kinds = ops.vocab["kind"]
    codes = [c for c in (kinds.find("alloc"), kinds.find("free")) if c >= 0]
    return np.flatnonzero(np.isin(ops.codes["kind"], codes)) if codes else np.zeros(0, dtype=np.int64)


#: A trace with more distinct signatures than this share of its ops is costed op by op.
IDENTITY_SHARE = 0.25


class TraceIndex:
    """What runs derive from an in-memory trace alone: batches, signatures, peaks.

    When the trace repeats few of its ops (more distinct signatures than
    :data:`IDENTITY_SHARE` of its rows), keeping a signature table would hold a second copy
    of the trace for little gain: the index then keeps no table (``identity``), and each run
    costs every batch op by op.
    """

    def __init__(self, trace: Trace, batch_rows: int) -> None:
        self.table: SignatureTable | None = SignatureTable()
        self.batches: list[OpColumns] = []
        self.sigs: list[np.ndarray] = []
        self.sig_ends: list[int] = []      # table size after each batch
        self.moves: list[np.ndarray] = []
        rows = 0
        for ops in trace.iter_batches(batch_rows):
            self.batches.append(ops)
            self.moves.append(_moves(ops))
            rows += len(ops)
            if self.table is not None:
                self.sigs.append(self.table.add(ops))
                self.sig_ends.append(self.table.size)
                if self.table.size > max(IDENTITY_SHARE * rows, 4096):
                    self.table, self.sigs, self.sig_ends = None, [], []
        self.identity = self.table is None
        self.counts = [] if self.identity else [np.bincount(sig, minlength=self.table.size) for sig in self.sigs]
        self.space_peaks: dict[str, float] | None = None
        self.unit_costs: dict = {}         # see signature_costs(unit_cache=...)
        # Whole costs per machine object: runs of one built machine on this trace (a loop
        # of small simulate() calls, a sweep worker's repeated points) cost it once.
        self.machine_costs: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        # Host launch times of the last host and kernel set seen (equal for sweep points that
        # change no host parameter and no dispatch).
        self.issue: tuple[tuple, list[np.ndarray]] | None = None


_INDEXES: weakref.WeakKeyDictionary[Trace, dict[int, TraceIndex]] = weakref.WeakKeyDictionary()


def trace_index(trace: Trace, batch_rows: int) -> TraceIndex:
    """The index of in-memory ``trace`` cut in ``batch_rows`` batches (built once)."""
    by_size = _INDEXES.setdefault(trace, {})
    if batch_rows not in by_size:
        by_size[batch_rows] = TraceIndex(trace, batch_rows)
    return by_size[batch_rows]


class BatchFeed:
    """Costed batches of ``trace`` on ``machine``, one :meth:`next` call at a time.

    ``on_batch(rows)`` is called as each batch is loaded (progress display).
    """

    def __init__(self, machine: Machine, trace: Trace, batch_rows: int = 65536,
                 on_batch: Callable[[int], None] | None = None) -> None:
        self.machine = machine
        self.trace = trace
        self.source = trace.source
        self._on_batch = on_batch
        self._host = HostClock(machine.host)
        # Each device's host (its own process) launches its kernels on a clock of its own.
        self._hosts = [HostClock(host) for host in machine.device_hosts] if machine.devices > 1 else []
        self.loaded_rows = 0
        self.loaded_batches = 0
        self.index: TraceIndex | None = None
        self._fresh_issue: list[np.ndarray] = []
        self._reuse_issue = False
        self._costs: SignatureCosts | None = None
        self._stream: Iterator[OpColumns] | None = None
        if trace.in_memory:
            self.index = trace_index(trace, batch_rows)
            if not self.index.identity:
                self._costs = self._all_costs(self.index)
        else:
            self._stream = trace.iter_batches(batch_rows)

    def _where(self, table: SignatureTable) -> Callable[[int], str]:
        def where(sig: int) -> str:
            row, op_id = table.first_row(sig)
            return f"{self.source}: row {row + 1} (op_id {op_id})"
        return where

    def _where_row(self, ops: OpColumns) -> Callable[[int], str]:
        def where(i: int) -> str:
            return f"{self.source}: row {ops.first_row + i + 1} (op_id {int(ops.ints['op_id'][i])})"
        return where

    def _all_costs(self, index: TraceIndex) -> SignatureCosts:
        """Costs of every signature of the trace at once; after an error, batch by batch,
        so that the error raised is the one a batch-by-batch run meets first."""
        cached = index.machine_costs.get(self.machine)
        if cached is not None:
            return cached
        where = self._where(index.table)
        try:
            costs = signature_costs(self.machine, index.table.rows(), where, index.unit_costs)
            for value in (*vars(costs).values(), *vars(costs.cells).values()):   # shared between runs:
                if isinstance(value, np.ndarray):                                 # nobody may edit them
                    value.flags.writeable = False
            index.machine_costs[self.machine] = costs
            return costs
        except HwsimError:
            start = 0
            for end in index.sig_ends:
                signature_costs(self.machine, index.table.rows(start, end), where)
                start = end
            raise

    def _issue(self, costs: SignatureCosts, sig: np.ndarray, ops: OpColumns) -> np.ndarray:
        if all(host is None for host in self.machine.device_hosts):
            return np.zeros(len(ops), dtype=np.int64)
        if not self._hosts:
            return self._host.issue_times(costs.kernel[sig], ops.ints["step"])
        # An op on a group is launched by every member's host; it can start once all have.
        vocab = ops.vocab["device"]
        member = np.zeros((max(len(vocab), 1), len(self._hosts)), dtype=bool)
        for code in np.unique(ops.codes["device"]).tolist():
            member[code, list(self.machine.device_set(vocab.values[code], "trace"))] = True
        kernels = costs.kernel[sig]
        codes, steps = ops.codes["device"], ops.ints["step"]
        issue = np.zeros(len(ops), dtype=np.int64)
        for d, clock in enumerate(self._hosts):
            if clock.host is None:
                continue
            rows = np.flatnonzero(member[codes, d] & kernels)   # the kernels device d launches
            if rows.size:
                issue[rows] = np.maximum(issue[rows], clock.launch(steps[rows]))
        return issue

    def _issue_cached(self, b: int, costs: SignatureCosts, sig: np.ndarray, ops: OpColumns) -> np.ndarray:
        """Launch times of batch ``b`` of an indexed trace, reused from an earlier complete
        run while the host's costs and the set of ops it launches are the same."""
        key = (tuple(None if host is None else (host.launch_cycles, host.step_cycles, host.latency_cycles)
                     for host in self.machine.device_hosts), costs.kernel.tobytes())
        index = self.index
        if b == 0:
            self._reuse_issue = index.issue is not None and index.issue[0] == key
        if self._reuse_issue:
            return index.issue[1][b]
        issue = self._issue(costs, sig, ops)   # the host's clock runs from batch 0, in order
        self._fresh_issue.append(issue)
        if len(self._fresh_issue) == len(index.batches):
            index.issue = (key, self._fresh_issue)
        return issue

    def next(self) -> Batch | None:
        """The next batch, or None after the last."""
        b = self.loaded_batches
        if self.index is not None and self.index.identity:
            if b >= len(self.index.batches):
                return None
            ops, moves = self.index.batches[b], self.index.moves[b]
            sig, counts = np.arange(len(ops), dtype=np.int64), np.ones(len(ops), dtype=np.int64)
            costs = signature_costs(self.machine, ops, self._where_row(ops))
            issue = self._issue(costs, sig, ops)
        elif self.index is not None:
            if b >= len(self.index.batches):
                return None
            index = self.index
            ops, sig, counts, moves, costs = index.batches[b], index.sigs[b], index.counts[b], index.moves[b], self._costs
            issue = self._issue_cached(b, costs, sig, ops)
        else:
            ops = next(self._stream, None)
            if ops is None:
                return None
            table = SignatureTable()
            sig = table.add(ops)
            counts, moves = np.bincount(sig, minlength=table.size), _moves(ops)
            costs = signature_costs(self.machine, table.rows(), self._where(table))
            issue = self._issue(costs, sig, ops)
        batch = Batch(b, ops, sig, counts, moves, costs, issue, self.index is not None and self.index.identity)
        self.loaded_batches += 1
        self.loaded_rows += len(ops)
        if self._on_batch is not None:
            self._on_batch(len(ops))
        return batch
