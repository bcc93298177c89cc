"""One record per op, built as arrays batch by batch, and the run's totals.

As each batch is timed, :class:`RecordBuilder` adds it to the run's
:class:`~hwsim.metrics.totals.RunTotals` and, when the run keeps records, turns it into
record columns (NumPy arrays; text as codes). The columns go to a sink: in memory, joined
into one pandas DataFrame at the end (text as categoricals), or to a Parquet file, one row
group per batch, as the run goes.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from hwsim.atomic import atomic_path
from hwsim.engine.feed import Batch
from hwsim.engine.machine import Machine
from hwsim.errors import ResultError
from hwsim.metrics.totals import RunTotals
from hwsim.trace.columns import CODE_DTYPE, Vocabulary
from hwsim.trace.schema import COLLECTIVE_KINDS

#: Record columns in order; ``bytes_<resource>``, energy and allocation columns follow. The
#: cycle columns come from the timing, the two seconds columns from them and the reference
#: clock; ``deps`` is the trace's, as text (timelines draw them as arrows).
COLUMN_ORDER = (
    "op_id", "stream", "deps", "kind", "component", "ready_cycle", "start_cycle", "end_cycle",
    "start_seconds", "seconds",
    "compute_cycles", "queue_cycles", "stall_cycles", "layer", "step", "phase", "tag", "dtype",
    "flops", "bytes_read", "bytes_written",
)
TEXT_COLUMNS = ("stream", "kind", "component", "phase", "tag", "dtype", "alloc_tier", "deps")

Columns = dict[str, np.ndarray]


def resource_names(machine: Machine) -> list[str]:
    """Tiers, links, then DMA groups, in YAML order: one ``bytes_<name>`` record column each."""
    return list(machine.resource_names)


class RecordBuilder:
    """Totals (always) and records (when ``sink`` is not None) of one run's batches."""

    def __init__(self, machine: Machine, sink: MemoryRecords | ParquetRecords | None) -> None:
        self.machine = machine
        self.sink = sink
        self.totals = RunTotals(machine.record_components, [ch.name for ch in machine.channels],
                                list(machine.tiers))
        self._resources = resource_names(machine)
        # Channel -> resource column: bytes_<resource> sums the resource's channels.
        column = {name: r for r, name in enumerate(self._resources)}
        self._resource_of_channel = np.array([column[channel.resource.name] for channel in machine.channels],
                                             dtype=np.int64)
        self._per_costs: tuple[object, np.ndarray] | None = None
        self._pending: dict[int, tuple] = {}
        self._next = 0
        self._deps = Vocabulary()   # the ``deps`` texts of the run, codes stable across batches
        #: True when every op's span (end - start) is its contention-free duration (the
        #: roofline): spans are then summed per signature instead of per op.
        self.spans_are_durations = False

    def add(self, batch: Batch, ready: np.ndarray, start: np.ndarray, end: np.ndarray) -> None:
        """Batch ``batch`` is timed: row i was ready at ``ready[i]``, started at ``start[i]``
        and ended at ``end[i]`` (int64 cycles). Batches may arrive in any order; they are
        recorded in trace order."""
        self._pending[batch.index] = (batch, ready, start, end)
        while self._next in self._pending:
            self._record(*self._pending.pop(self._next))
            self._next += 1

    def _comm_sigs(self, batch: Batch) -> np.ndarray | None:
        """Per signature, whether it communicates (a collective kind); None on one device."""
        if self.machine.devices == 1:
            return None
        costs = batch.costs
        cached = getattr(self, "_comm_cache", None)
        if cached is None or cached[0] is not costs:
            names = np.asarray(batch.ops.vocab["kind"].values, dtype=object)
            cached = (costs, np.isin(names, COLLECTIVE_KINDS)[costs.kind])   # per kind code, then per signature
            self._comm_cache = cached
        return cached[1]

    def _resource_bytes(self, batch: Batch) -> tuple[np.ndarray, np.ndarray]:
        """Per resource and signature of ``batch.costs``: bytes through the resource (int64
        ``[resources, signatures]``), and whether any signature moves bytes through each
        resource (cached)."""
        costs = batch.costs
        if self._per_costs is None or self._per_costs[0] is not costs:
            # Only the few channels each signature crosses add up (a machine of several
            # devices has hundreds of channels, most of them idle for any one op).
            cells = costs.cells
            moved = cells.bytes != 0
            out = np.zeros((len(self._resources), cells.signatures), dtype=np.int64)
            key = self._resource_of_channel[cells.channel[moved]] * cells.signatures + cells.sig[moved]
            np.add.at(out.reshape(-1), key, cells.bytes[moved])
            self._per_costs = (costs, (out, out.any(axis=1)))
        return self._per_costs[1]

    def _record(self, batch: Batch, ready: np.ndarray, start: np.ndarray, end: np.ndarray) -> None:
        costs, sig, ops = batch.costs, batch.sig, batch.ops
        counts = batch.counts
        totals = self.totals
        cells = costs.cells
        if batch.identity:
            # Every row is its own signature: the costs are per row already, every group is
            # present once, and nothing needs gathering.
            def per_row(values: np.ndarray) -> np.ndarray:
                return values
            grouped = per_row
            group_cells = (cells.sig, cells.channel, cells.bytes, cells.busy, cells.energy)
        else:
            present = np.flatnonzero(counts)

            def per_row(values: np.ndarray) -> np.ndarray:
                return values[sig]

            def grouped(values: np.ndarray) -> np.ndarray:
                return values[present]
            # The channels' totals add up the nonzero cells of the signatures present.
            keep = counts[cells.sig] > 0
            where = np.full(len(counts), -1, dtype=np.int64)
            where[present] = np.arange(len(present))
            group_cells = (where[cells.sig[keep]], cells.channel[keep], cells.bytes[keep], cells.busy[keep],
                           cells.energy[keep])
        totals.add_groups(grouped(counts), grouped(costs.component), grouped(costs.kind), ops.vocab["kind"].values,
                          grouped(costs.flops), grouped(costs.energy_compute_pj), grouped(costs.energy_pj), group_cells)
        if self.spans_are_durations:
            totals.add_spans(grouped(costs.component), grouped(costs.duration), grouped(counts))
        else:
            totals.add_spans(per_row(costs.component), end - start)
        if len(end):
            totals.add_end(end.max())
            comm = self._comm_sigs(batch)
            if comm is not None:
                totals.add_busy((costs.unit >= 0)[sig], comm[sig], start, end)
        moves = batch.moves
        if moves.size:
            delta = costs.alloc_delta[sig[moves]]
            totals.add_moves(start[moves], ops.ints["op_id"][moves], costs.alloc_tier[sig[moves]], delta)
            for tiers in (() if costs.alloc_more is None else costs.alloc_more.T):
                tier = tiers[sig[moves]]
                also = tier >= 0
                totals.add_moves(start[moves][also], ops.ints["op_id"][moves][also], tier[also], delta[also])
        if self.sink is None:
            return
        by_resource = self._resource_bytes(batch)
        ints = ops.ints
        compute = per_row(costs.compute)
        columns: Columns = {
            # Columns taken from the trace are views here; the sinks copy them (joining batches,
            # or into Arrow), so records never share memory with the trace.
            "op_id": ints["op_id"], "stream": ops.codes["stream"], "deps": self._dep_codes(ops),
            "kind": ops.codes["kind"], "component": per_row(costs.component),
            "ready_cycle": np.ascontiguousarray(ready), "start_cycle": np.ascontiguousarray(start),
            "end_cycle": np.ascontiguousarray(end),
            "start_seconds": start / self.machine.clock_hz, "seconds": (end - start) / self.machine.clock_hz,
            "compute_cycles": compute,
            "queue_cycles": start - ready,
            "stall_cycles": np.maximum(end - start - compute, 0),
            "layer": ints["layer"], "step": ints["step"],
            "phase": ops.codes["phase"], "tag": ops.codes["tag"], "dtype": ops.codes["dtype"],
            "flops": ints["flops"], "bytes_read": ints["bytes_read"] + ints["bytes_read2"],
            "bytes_written": ints["bytes_written"],
        }
        per_resource, used = by_resource
        for r, name in enumerate(self._resources):
            # A resource no op of the trace crosses (another device's, say) is a column of zeros.
            columns[f"bytes_{name}"] = per_row(per_resource[r]) if used[r] else np.zeros(len(sig), dtype=np.int64)
        columns["energy_pj"] = per_row(costs.energy_pj)
        columns["energy_compute_pj"] = per_row(costs.energy_compute_pj)
        columns["alloc_tier"] = per_row(costs.alloc_tier)
        columns["alloc_bytes"] = per_row(costs.alloc_delta)
        self.sink.add(columns, self._categories(ops))

    def _dep_codes(self, ops) -> np.ndarray:
        """Codes of each row's ``deps`` text ("3;7", "" for none) over the run's vocabulary."""
        if not len(ops.dep_ids):   # no op of the batch waits for another (no text to build)
            return np.full(len(ops), self._deps.code(""), dtype=CODE_DTYPE)
        local, uniques = ops.deps_factorized()
        return self._deps.encode(uniques)[local]

    def _categories(self, ops) -> dict[str, list[str]]:
        """The values each text column's codes index (``alloc_tier``: -1 is no tier)."""
        return {"stream": ops.vocab["stream"].values, "kind": ops.vocab["kind"].values,
                "deps": self._deps.values,
                "phase": ops.vocab["phase"].values, "tag": ops.vocab["tag"].values,
                "dtype": ops.vocab["dtype"].values, "component": self.machine.record_components,
                "alloc_tier": [*self.machine.tiers, ""]}


_DTYPES: dict[tuple[str, ...], pd.CategoricalDtype] = {}


def _dtype(names: tuple[str, ...]) -> pd.CategoricalDtype:
    """A categorical dtype over ``names``, built once (building its index is most of the
    cost of a small categorical column)."""
    dtype = _DTYPES.get(names)
    if dtype is None:
        if len(_DTYPES) > 4096:
            _DTYPES.clear()
        dtype = _DTYPES[names] = pd.CategoricalDtype(list(names))
    return dtype


def _text(codes: np.ndarray, values: list[str]) -> pd.Categorical:
    """Codes over ``values`` as a categorical whose categories are the values present,
    sorted (so the records do not depend on vocabulary order). ``alloc_tier`` codes of -1
    index the last value."""
    values = np.asarray(values, dtype=object)
    used = np.flatnonzero(np.bincount(codes + 1, minlength=len(values) + 1)) - 1   # sorted codes present
    names = values[used]
    order = np.argsort(names, kind="stable")
    lut = np.zeros(len(values) + 1, dtype=np.int64)
    lut[used[order]] = np.arange(len(used))
    return pd.Categorical.from_codes(lut[codes], dtype=_dtype(tuple(names[order].tolist())), validate=False)


def frame_of(columns: Columns, categories: dict[str, list[str]]) -> pd.DataFrame:
    """Record columns (one batch or joined) as the records DataFrame."""
    order = [*COLUMN_ORDER, *(c for c in columns if c not in COLUMN_ORDER)]
    return pd.DataFrame({name: _text(columns[name], categories[name]) if name in TEXT_COLUMNS
                         else columns[name] for name in order}, copy=False)


class MemoryRecords:
    """Keeps every batch's columns; :meth:`frame` joins them into one DataFrame."""

    def __init__(self) -> None:
        self._batches: list[Columns] = []
        self._categories: dict[str, list[str]] = {}

    def add(self, columns: Columns, categories: dict[str, list[str]]) -> None:
        self._batches.append(columns)
        self._categories = categories

    def frame(self) -> pd.DataFrame:
        if not self._batches:
            raise ValueError("no records")
        names = list(self._batches[0])
        joined: Columns = {}
        for name in names:
            # Pop each column from every batch as it is joined, so only one copy is alive.
            parts = [batch.pop(name) for batch in self._batches]
            joined[name] = parts[0].copy() if len(parts) == 1 else np.concatenate(parts)
            del parts
        self._batches.clear()
        return frame_of(joined, self._categories)


class ParquetRecords:
    """Writes records to a Parquet file as the run goes: one row group per batch.

    A run of one batch is written exactly as a whole records DataFrame would be; longer
    runs use ``int32`` dictionary codes for text columns in every row group. The file
    appears (renamed from a temporary file) when :meth:`close` is called; :meth:`abort`
    leaves nothing.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._first: tuple[Columns, dict[str, list[str]]] | None = None
        self._writer: pq.ParquetWriter | None = None
        self._tmp: Path | None = None

    def add(self, columns: Columns, categories: dict[str, list[str]]) -> None:
        check_columns(columns, self.path)
        if self._writer is None and self._first is None:
            self._first = (columns, {k: list(v) for k, v in categories.items()})
            return
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp")
            os.close(fd)
            self._tmp = Path(tmp)
            first, self._first = self._first, None
            self._write(*first)
        self._write(columns, categories)

    def _write(self, columns: Columns, categories: dict[str, list[str]]) -> None:
        frame = frame_of(columns, categories)
        table = pa.Table.from_pandas(frame, preserve_index=False).replace_schema_metadata(None)
        table = table.cast(_wide_codes(table.schema))
        if self._writer is None:
            self._writer = pq.ParquetWriter(self._tmp, table.schema)
        self._writer.write_table(table, row_group_size=len(frame))

    def close(self) -> Path:
        """Finish the file; returns its path."""
        if self._first is not None:
            table = pa.Table.from_pandas(frame_of(*self._first), preserve_index=False).replace_schema_metadata(None)
            with atomic_path(self.path) as tmp:
                pq.write_table(table, tmp)
            self._first = None
        elif self._writer is not None:
            self._writer.close()
            self._writer = None
            os.replace(self._tmp, self.path)
        return self.path

    def abort(self) -> None:
        """Drop a partial file (the run failed)."""
        self._first = None
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._tmp is not None and self._tmp.exists():
            self._tmp.unlink()


def check_columns(columns, source: object) -> None:
    """Raise ResultError for a measured record column (cycles, bytes, energy, FLOPs) that is
    not finite or is negative: a result no machine can produce. ``columns`` maps names to
    arrays (a batch of records as the run writes them, or a records DataFrame)."""
    for name, values in columns.items():
        measured = name.startswith(("bytes_", "energy")) or name.endswith(("_cycle", "_cycles", "flops"))
        if not measured or values.dtype.kind not in "fiu":
            continue
        array = np.asarray(values, dtype=np.float64)
        bad = ~(np.isfinite(array) & (array >= 0))
        if bad.any():
            i = int(np.argmax(bad))
            op = f" of op {int(np.asarray(columns['op_id'])[i])}" if "op_id" in columns else ""
            raise ResultError(f"{source}: records column {name!r}{op} is {array[i]:.4g}; a result must be "
                              "finite and >= 0 (a machine constant or trace size too large for the arithmetic)")


def _wide_codes(schema: pa.Schema) -> pa.Schema:
    return pa.schema([pa.field(f.name, pa.dictionary(pa.int32(), f.type.value_type), f.nullable)
                      if pa.types.is_dictionary(f.type) else f for f in schema])
