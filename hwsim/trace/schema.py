"""The trace schema: the contract between workload generators and the engine.

One row is one operation at the granularity a hardware scheduler sees (a GEMM tile group, an
attention block, a state-update chunk, a DMA transfer, a CAM search), never a single
multiply and never a cycle. ``traces/README.md`` documents every column for people; this
module is the executable statement of the same rules, checked on whole columnar batches
(:class:`hwsim.trace.columns.OpColumns`) with array operations: a rule costs a few passes
over a batch, and a text rule looks at the batch's distinct values, never at every row.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwsim.errors import TraceError, did_you_mean
from hwsim.trace.columns import OpColumns, Vocabulary

SCHEMA_VERSION = 1

#: Operation kinds and what each means. A machine maps every kind to a component.
KINDS: dict[str, str] = {
    "gemm": "matrix multiply of batch x (m x k) @ (k x n); flops default 2*m*n*k*batch",
    "attention": "softmax attention block: m query tokens over n keys, head dim k, batch heads",
    "attention_bwd": "backward of a softmax attention block (shape as attention; flops of its five matmuls)",
    "vector": "reductions, norms, softmax, activations on a vector unit; flops given",
    "elementwise": "element-wise arithmetic over `elements` values; flops given",
    "state_update": "linear-attention recurrent state update (decay, erase, write, read)",
    "transfer": "move bytes_read bytes from space `src` to space `dst` (DMA / copy)",
    "gather": "indexed read of `elements` scattered items from `src` into `dst`",
    "similarity": "dot products / cosine similarities over `elements` vectors of width k",
    "topk": "select the k best of `elements` scores",
    "cam_search": "content-addressable search of `elements` entries with a k-bit key",
    "cam_write": "write `elements` entries of k bits into a CAM",
    "quantize": "quantize `elements` values to a low-bit format; bytes_written holds the packed "
                "codes and their per-group scales; flops given",
    "dequantize": "expand `elements` packed low-bit values for compute; bytes_read holds the "
                  "packed codes and scales; flops given",
    "rotate": "Hadamard rotation (fast Walsh-Hadamard) of `elements` values in vectors of k; "
              "flops given",
    "alloc": "reserve bytes_written bytes in space `dst` (occupancy bookkeeping, no time)",
    "free": "release bytes_read bytes in space `src` (occupancy bookkeeping, no time)",
    "sync": "barrier: waits for its deps, takes no time",
    "all_reduce": "collective over the `device` group: every device's bytes_read-byte buffer summed into all",
    "all_gather": "collective: every device's bytes_read bytes gathered into all (output: group size x bytes_read)",
    "reduce_scatter": "collective: the bytes_read-byte buffers summed, each device keeping 1/N of the sum",
    "all_to_all": "collective: each device sends bytes_read / N bytes to every member",
    "broadcast": "collective: the group's first device sends bytes_read bytes to every member",
    "send": "point to point: `device` sends bytes_read bytes to device `peer`",
    "recv": "point to point: `device` receives from `peer` (waits for the send through deps; no time)",
}
#: Kinds that run on the device fabric (no compute unit); ``kernel`` names the algorithm.
COLLECTIVE_KINDS = ("all_reduce", "all_gather", "reduce_scatter", "all_to_all", "broadcast", "send", "recv")

#: Bytes per element for the `dtype` column. The dtype names an op's arithmetic; storage
#: below a byte per value (INT4 and INT2 KV caches with their per-group scales) is counted
#: exactly in the bytes columns of the ops that read or write it, not derived from here.
DTYPE_BYTES: dict[str, int] = {
    "fp64": 8, "fp32": 4, "tf32": 4, "bf16": 2, "fp16": 2, "fp8": 1, "fp8_block": 1, "int8": 1, "int4": 1,
    "int32": 4, "bool": 1,
}

#: Memory access patterns (used by banked SRAM models).
ACCESS_PATTERNS = ("seq", "strided", "random")



@dataclass(frozen=True)
class Column:
    """One trace column: its type (``int64``, ``string`` or ``list``), default when absent,
    and meaning."""

    name: str
    dtype: str
    default: object
    help: str
    required: bool = False


COLUMNS: tuple[Column, ...] = (
    Column("op_id", "int64", None, "unique operation id (int >= 0)", required=True),
    Column("stream", "string", "main", "in-order queue this op belongs to"),
    Column("deps", "list", (), "op_ids this op waits for (earlier rows only): a list in Parquet, "
           "separated by ';' in CSV"),
    Column("kind", "string", None, "operation kind (see KINDS)", required=True),
    Column("unit", "string", "", "component that must execute the op (default: the machine's dispatch)"),
    Column("m", "int64", 0, "rows of the output / query tokens"),
    Column("n", "int64", 0, "columns of the output / key tokens"),
    Column("k", "int64", 0, "reduction dim / head dim / top-k / key bits"),
    Column("batch", "int64", 1, "independent instances (heads, layers) of the shape"),
    Column("elements", "int64", 0, "item count for vector, gather, similarity, topk, cam ops"),
    Column("flops", "int64", 0, "floating-point operations (multiply-add = 2)"),
    Column("bytes_read", "int64", 0, "bytes read from space `src`"),
    Column("bytes_read2", "int64", 0, "bytes of a second operand read from space `src2`"),
    Column("bytes_written", "int64", 0, "bytes written to space `dst`"),
    Column("src", "string", "", "logical memory space read (weights, act, kv_window, kv_bank, state, ...)"),
    Column("src2", "string", "", "logical memory space of the second operand"),
    Column("dst", "string", "", "logical memory space written"),
    Column("dtype", "string", "bf16", "element type (selects the matrix engine's precision)"),
    Column("kernel", "string", "", "kernel implementation, e.g. flash2 or flash3 (empty = the machine's default)"),
    Column("access", "string", "seq", "access pattern of the reads: seq, strided or random"),
    Column("layer", "int64", -1, "model layer (report tag; -1 = none)"),
    Column("step", "int64", -1, "frame, chunk or token index (report tag; -1 = none)"),
    Column("phase", "string", "", "phase tag (prefill, decode, store, retrieve, ...)"),
    Column("tag", "string", "", "free text"),
    Column("device", "string", "", "device(s) that run the op: empty = every device (the same op on "
           "each, SPMD), 3, 0-3 or 0,2,4; a collective's group"),
    Column("peer", "int64", -1, "the other device of a send or recv (-1 = none)"),
)
COLUMN_NAMES = tuple(c.name for c in COLUMNS)
BY_NAME = {c.name: c for c in COLUMNS}
INT_COLUMNS = tuple(c.name for c in COLUMNS if c.dtype == "int64")
STR_COLUMNS = tuple(c.name for c in COLUMNS if c.dtype == "string")
_NON_NEGATIVE = ("op_id", "m", "n", "k", "batch", "elements", "flops", "bytes_read", "bytes_read2",
                 "bytes_written")
# Kind classes the shape rules need, as bits of a per-code lookup (one gather per batch).
_GEMM, _MOVE, _ALLOC, _FREE, _COMM = 1, 2, 4, 8, 16
_KIND_CLASS = {"gemm": _GEMM, "transfer": _MOVE, "gather": _MOVE, "alloc": _ALLOC, "free": _FREE,
               **{kind: _COMM for kind in COLLECTIVE_KINDS}}


def new_vocabulary() -> dict[str, Vocabulary]:
    """One empty vocabulary per text column (a trace shares them across its batches)."""
    return {name: Vocabulary() for name in STR_COLUMNS}


class ValidationState:
    """What validation remembers across row groups: the op ids seen and their rows.

    Generated traces number their ops in increasing order; while that holds, ids are kept
    as sorted int64 blocks (8 bytes per op) and looked up with vectorised searches. The
    first batch that breaks the order switches to a dict from op id to row.
    """

    def __init__(self, vocab: dict[str, Vocabulary] | None = None) -> None:
        self.vocab = vocab if vocab is not None else new_vocabulary()
        self.rows = 0                           # rows validated so far
        self.max_id = -1
        self._blocks: list[np.ndarray] = []     # increasing ids, batch by batch
        self._starts: list[int] = []            # row of each block's first id
        self._firsts: list[int] = []            # each block's first id
        self._rows_by_id: dict[int, int] | None = None  # only once ids stop increasing

    def rows_of(self, ids: np.ndarray) -> np.ndarray:
        """The row each of ``ids`` was seen on (int64; -1 for ids not seen)."""
        out = np.full(len(ids), -1, dtype=np.int64)
        if len(ids) == 0:
            return out
        if self._rows_by_id is not None:
            get = self._rows_by_id.get
            return np.fromiter((get(i, -1) for i in ids.tolist()), dtype=np.int64, count=len(ids))
        block = np.searchsorted(np.asarray(self._firsts, dtype=np.int64), ids, side="right") - 1
        for b in np.unique(block[block >= 0]).tolist():
            sel = np.flatnonzero(block == b)
            ids_b = self._blocks[b]
            at = np.searchsorted(ids_b, ids[sel]).clip(max=len(ids_b) - 1)
            hit = ids_b[at] == ids[sel]
            out[sel[hit]] = self._starts[b] + at[hit]
        return out

    def add(self, ids: np.ndarray, increasing: bool) -> None:
        """Remember ``ids`` (a validated batch, rows from :attr:`rows` on)."""
        increasing = increasing and (len(ids) == 0 or ids[0] > self.max_id)
        if self._rows_by_id is None and not increasing:
            self._rows_by_id = {}
            for start, block in zip(self._starts, self._blocks, strict=True):
                self._rows_by_id.update(zip(block.tolist(), range(start, start + len(block)), strict=True))
            self._blocks, self._starts, self._firsts = [], [], []
        if self._rows_by_id is not None:
            self._rows_by_id.update(zip(ids.tolist(), range(self.rows, self.rows + len(ids)), strict=True))
        elif len(ids):
            self._blocks.append(ids)
            self._starts.append(self.rows)
            self._firsts.append(int(ids[0]))
        if len(ids):
            self.max_id = max(self.max_id, int(ids.max()))


#: Integer cells and the values derived from them must stay below this (int64 must not wrap).
INT64_LIMIT = 2.0**63


def shown(value: object) -> str:
    """A cell for a message: plain Python values, not NumPy reprs, and at most 60 characters."""
    value = value.tolist() if hasattr(value, "tolist") else value
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def fail(source: str, row: int, column: str, message: str, op_id: object = None) -> TraceError:
    """The error for a bad cell: ``source: row N (op_id X), column 'c': message``."""
    at = f"row {row}" + (f" (op_id {op_id})" if op_id is not None else "")
    return TraceError(f"{source}: {at}, column {column!r}: {message}")


def validate(ops: OpColumns, source: str, state: ValidationState,
             deps_error: tuple[int, str] | None = None) -> OpColumns:
    """Check one batch against every rule, fill derived values, resolve ``dep_rows``.

    Rows are numbered from 1 across batches (``state`` carries the count). ``deps_error``
    is a ``(row, text)`` of the batch's first ``deps`` entry that is not an op id (found
    while reading), reported where the dependency rules are checked. Returns ``ops``
    (derived columns replaced, never modified in place). Raises TraceError naming
    ``source``, the row, the op id and the column.
    """
    ops.first_row = state.rows
    _check_rows(ops, source, state, deps_error)
    _fill_derived(ops, source, state.rows + 1)
    state.rows += len(ops)
    return ops


def _check_rows(ops: OpColumns, source: str, state: ValidationState, deps_error) -> None:
    ints, codes, vocab = ops.ints, ops.codes, ops.vocab
    ids = ints["op_id"]
    first_row = state.rows + 1

    def fail_at(mask: np.ndarray, column: str, message) -> None:
        i = int(np.argmax(mask))
        text = message(i) if callable(message) else message
        raise fail(source, first_row + i, column, text, int(ids[i]))

    if len(ids) == 0:
        return
    for name in _NON_NEGATIVE:
        values = ints[name]
        if values.min() < 0:
            fail_at(values < 0, name, lambda i, values=values: f"must be >= 0, got {values[i]}")
    for name in ("layer", "step", "peer"):
        if ints[name].min() < -1:
            fail_at(ints[name] < -1, name, "must be >= -1")
    for name, allowed, message in (
            ("kind", KINDS, lambda v: f"unknown kind {v!r}{did_you_mean(v, tuple(KINDS))}"),
            ("dtype", DTYPE_BYTES, lambda v: f"unknown dtype {v!r}{did_you_mean(v, tuple(DTYPE_BYTES))}"),
            ("access", ACCESS_PATTERNS, lambda v: f"must be one of {ACCESS_PATTERNS}, got {v!r}")):
        values = vocab[name].values
        bad = [code for code, value in enumerate(values) if value not in allowed]
        if bad:
            rows = np.isin(codes[name], bad)
            if rows.any():
                fail_at(rows, name, lambda i, name=name, message=message, values=values: message(values[codes[name][i]]))
    empty_stream = _equals(ops, "stream", "")
    if empty_stream is not None and empty_stream.any():
        fail_at(empty_stream, "stream", "must not be empty")
    _check_shapes(ops, fail_at)
    _check_ids_and_deps(ops, source, first_row, state, deps_error)


def _is(ops: OpColumns, kind: str) -> np.ndarray:
    """Mask of rows of ``kind``."""
    code = ops.vocab["kind"].find(kind)
    return np.zeros(len(ops), dtype=bool) if code < 0 else ops.codes["kind"] == code


def _equals(ops: OpColumns, name: str, value: str) -> np.ndarray | None:
    """Mask of rows whose text column ``name`` is ``value`` (None: no row can be)."""
    code = ops.vocab[name].find(value)
    return None if code < 0 else ops.codes[name] == code


def _check_shapes(ops: OpColumns, fail_at) -> None:
    ints = ops.ints
    kind = ops.vocab["kind"].lookup(_KIND_CLASS, 0, np.int8)[ops.codes["kind"]]
    no_src, no_src2, no_dst = (_equals(ops, name, "") for name in ("src", "src2", "dst"))
    false = np.zeros(len(ops), dtype=bool)
    no_src = false if no_src is None else no_src
    no_dst = false if no_dst is None else no_dst
    if (kind & _GEMM).any():
        gemm = (kind == _GEMM) & ((ints["m"] == 0) | (ints["n"] == 0) | (ints["k"] == 0))
        if gemm.any():
            fail_at(gemm, "m", "a gemm needs m, n and k > 0")
    moves = kind == _MOVE
    if moves.any():
        if (moves & no_src).any():
            fail_at(moves & no_src, "src", "a transfer or gather needs a source space")
        if (moves & no_dst).any():
            fail_at(moves & no_dst, "dst", "a transfer or gather needs a destination space")
        empty_move = moves & (ints["bytes_read"] == 0)
        if empty_move.any():
            fail_at(empty_move, "bytes_read", "a transfer or gather must move bytes_read > 0 bytes")
    bookkeeping = (kind & (_ALLOC | _FREE)) != 0
    if bookkeeping.any():
        alloc = (kind == _ALLOC) & (no_dst | (ints["bytes_written"] == 0))
        if alloc.any():
            fail_at(alloc, "bytes_written", "an alloc needs a dst space and bytes_written > 0")
        free = (kind == _FREE) & (no_src | (ints["bytes_read"] == 0))
        if free.any():
            fail_at(free, "bytes_read", "a free needs a src space and bytes_read > 0")
    comm = kind == _COMM
    if comm.any():
        empty = comm & (ints["bytes_read"] == 0) & ~_is(ops, "recv")
        if empty.any():
            fail_at(empty, "bytes_read", "a collective or send needs bytes_read > 0 (each device's buffer)")
    bookkeeping = bookkeeping | comm   # a collective's buffers need no space
    reads_nowhere = ~bookkeeping & (ints["bytes_read"] > 0) & no_src
    if reads_nowhere.any():
        fail_at(reads_nowhere, "src", "bytes_read > 0 needs a source space")
    if no_src2 is not None:
        reads2_nowhere = (ints["bytes_read2"] > 0) & no_src2
        if reads2_nowhere.any():
            fail_at(reads2_nowhere, "src2", "bytes_read2 > 0 needs a source space")
    writes_nowhere = ~bookkeeping & (ints["bytes_written"] > 0) & no_dst
    if writes_nowhere.any():
        fail_at(writes_nowhere, "dst", "bytes_written > 0 needs a destination space")


def _check_ids_and_deps(ops: OpColumns, source: str, first_row: int, state: ValidationState,
                        deps_error: tuple[int, str] | None) -> None:
    """Check ids are unique and deps point to earlier rows; set ``ops.dep_rows``."""
    ids = ops.ints["op_id"]
    n = len(ids)
    increasing = n < 2 or bool((ids[1:] > ids[:-1]).all())
    if not increasing or (n and ids[0] <= state.max_id):
        # Ids not strictly increasing: find the first repeat the slow, exact way.
        seen_here: set[int] = set()
        earlier = state.rows_of(ids) >= 0
        for i, op_id in enumerate(ids.tolist()):
            if earlier[i] or op_id in seen_here:
                raise fail(source, first_row + i, "op_id", f"duplicate op_id {op_id}", op_id)
            seen_here.add(op_id)
    if deps_error is not None:
        row, part = deps_error
        raise fail(source, first_row + row, "deps",
                   f"{shown(part)} is not an op_id (deps are integers separated by ';')", int(ids[row]))
    wanted = ops.dep_ids
    rows = state.rows_of(wanted)   # in an earlier batch
    if wanted.size:
        own = np.repeat(np.arange(n, dtype=np.int64), ops.dep_counts())
        if increasing:
            at = np.searchsorted(ids, wanted).clip(max=n - 1)
            here = (ids[at] == wanted) & (at < own)
        else:
            position = {op_id: i for i, op_id in enumerate(ids.tolist())}
            at = np.fromiter((position.get(d, n) for d in wanted.tolist()), dtype=np.int64, count=len(wanted))
            here = at < own
        rows = np.where(here, state.rows + at, rows)
        bad = rows < 0
        if bad.any():
            j = int(np.argmax(bad))
            raise fail(source, first_row + int(own[j]), "deps",
                       f"op {int(wanted[j])} is not defined on an earlier row (deps must point backwards)",
                       int(ids[own[j]]))
    ops.dep_rows = rows
    state.add(ids, increasing)


def _fill_derived(ops: OpColumns, source: str, first_row: int) -> None:
    """Fill values that follow from others: gemm FLOPs, transfer write bytes.

    Raises TraceError naming the row when a derived count would not fit int64.
    """
    ints = ops.ints
    kind = ops.vocab["kind"].lookup(_KIND_CLASS, 0, np.int8)[ops.codes["kind"]]
    gemm = (kind == _GEMM) & (ints["flops"] == 0)
    if gemm.any():
        exact = 2.0 * ints["m"].astype(np.float64) * ints["n"] * ints["k"] * ints["batch"]
        huge = gemm & (exact >= INT64_LIMIT / 2)   # margin for the float product's rounding
        if huge.any():
            i = int(np.argmax(huge))
            raise fail(source, first_row + i, "flops", f"2*m*n*k*batch = {exact[i]:.4g} is more FLOPs than int64 "
                       "counts hold safely (2**62); split the op or give smaller shapes", int(ints["op_id"][i]))
        ints["flops"] = np.where(gemm, 2 * ints["m"] * ints["n"] * ints["k"] * ints["batch"], ints["flops"])
    moves = (kind == _MOVE) & (ints["bytes_written"] == 0)
    if moves.any():
        ints["bytes_written"] = np.where(moves, ints["bytes_read"], ints["bytes_written"])
