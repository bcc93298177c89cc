"""The trace schema: the contract between workload generators and the engine.

One row is one operation at the granularity a hardware scheduler sees (a GEMM tile group, an
attention block, a state-update chunk, a DMA transfer, a CAM search), never a single
multiply and never a cycle. ``traces/README.md`` documents every column for people; this
module is the executable statement of the same rules.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from hwsim.errors import TraceError, did_you_mean

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
}

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
    """One trace column: its pandas dtype, default when absent, and meaning."""

    name: str
    dtype: str
    default: object
    help: str
    required: bool = False


COLUMNS: tuple[Column, ...] = (
    Column("op_id", "int64", None, "unique operation id (int >= 0)", required=True),
    Column("stream", "string", "main", "in-order queue this op belongs to"),
    Column("deps", "string", "", "op_ids this op waits for, separated by ';' (earlier rows only)"),
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
)
COLUMN_NAMES = tuple(c.name for c in COLUMNS)
_BY_NAME = {c.name: c for c in COLUMNS}
INT_COLUMNS = tuple(c.name for c in COLUMNS if c.dtype == "int64")
STR_COLUMNS = tuple(c.name for c in COLUMNS if c.dtype == "string")
_NON_NEGATIVE = ("op_id", "m", "n", "k", "batch", "elements", "flops", "bytes_read", "bytes_read2",
                 "bytes_written")


class ValidationState:
    """What validation remembers across row groups: the op ids seen so far and rows consumed.

    Generated traces number their ops in increasing order; while that holds, ids are kept
    as sorted int64 arrays (8 bytes per op) and checked with vectorised searches. The first
    batch that breaks the order switches to a Python set.
    """

    def __init__(self) -> None:
        self.sorted_ids: list[np.ndarray] = []  # increasing ids, batch by batch
        self.max_id = -1
        self.seen_ids: set[int] | None = None  # only once ids stop increasing
        self.rows = 0

    def contains(self, ids: np.ndarray) -> np.ndarray:
        """Which of ``ids`` were seen before (bool array)."""
        if self.seen_ids is not None:
            return np.fromiter((int(i) in self.seen_ids for i in ids), dtype=bool, count=len(ids))
        found = np.zeros(len(ids), dtype=bool)
        for block in self.sorted_ids:
            pos = np.searchsorted(block, ids).clip(max=len(block) - 1)
            found |= block[pos] == ids
        return found

    def add(self, ids: np.ndarray) -> None:
        increasing = len(ids) == 0 or (ids[0] > self.max_id and bool(np.all(np.diff(ids) > 0)))
        if self.seen_ids is None and not increasing:
            self.seen_ids = {int(i) for block in self.sorted_ids for i in block}
            self.sorted_ids = []
        if self.seen_ids is not None:
            self.seen_ids.update(ids.tolist())
        else:
            self.sorted_ids.append(ids.copy())
        if len(ids):
            self.max_id = max(self.max_id, int(ids.max()))


def _fail(source: str, row: int, column: str, message: str, op_id: object = None) -> TraceError:
    at = f"row {row}" + (f" (op_id {op_id})" if op_id is not None else "")
    return TraceError(f"{source}: {at}, column {column!r}: {message}")


def normalize_frame(frame: pd.DataFrame, source: str, state: ValidationState) -> pd.DataFrame:
    """Validate ``frame`` (one batch of rows) and return it with every schema column typed.

    Rows are numbered from 1 across batches (``state`` carries the count). Missing optional
    columns take their defaults; unknown columns are errors (a typo would otherwise be lost).
    Raises TraceError naming ``source``, the row and the column.
    """
    first_row = state.rows + 1
    unknown = [c for c in frame.columns if c not in _BY_NAME]
    if unknown:
        raise TraceError(f"{source}: unknown column {unknown[0]!r}"
                         f"{did_you_mean(str(unknown[0]), COLUMN_NAMES)}")
    for col in COLUMNS:
        if col.required and col.name not in frame.columns:
            raise TraceError(f"{source}: missing required column {col.name!r}")
    out = {}
    n = len(frame)
    for col in COLUMNS:
        if col.name not in frame.columns:
            out[col.name] = (np.full(n, col.default, dtype=np.int64) if col.dtype == "int64"
                             else np.full(n, col.default, dtype=object))
            continue
        values = frame[col.name]
        if col.dtype == "int64":
            out[col.name] = _as_int(values, col, source, first_row, frame)
        else:
            out[col.name] = _as_text(values, col.default)
    # Text columns stay numpy object arrays: the engine reads them as such, and converting
    # to and from Arrow-backed strings on every batch costs more than the replay itself.
    typed = pd.DataFrame({name: pd.Series(values, dtype=object) if name in STR_COLUMNS else values
                          for name, values in out.items()})
    _check_rows(typed, source, first_row, state)
    _fill_derived(typed, source, first_row)
    state.rows += n
    return typed


def _as_text(values: pd.Series, default: object) -> np.ndarray:
    """An object array of str, missing cells set to ``default`` (str() only where needed)."""
    array = values.to_numpy(dtype=object)
    if pd.api.types.infer_dtype(array, skipna=False) == "string":
        return array  # all str, none missing: the common case, checked in C
    array = array.copy()
    array[pd.isna(array)] = default
    return np.array([str(v) for v in array], dtype=object)


def _not_in(values: np.ndarray, allowed) -> np.ndarray:
    """Mask of ``values`` outside ``allowed`` (hashes each distinct value once)."""
    codes, uniques = pd.factorize(values)
    bad = [i for i, u in enumerate(uniques) if u not in allowed]
    return np.isin(codes, bad) if bad else np.zeros(len(values), dtype=bool)


def _as_int(values: pd.Series, col: Column, source: str, first_row: int, frame: pd.DataFrame) -> np.ndarray:
    numeric = pd.to_numeric(values, errors="coerce")
    if col.default is not None:
        numeric = numeric.where(values.notna(), col.default)
    as_float = numeric.astype("float64")
    bad = numeric.isna() | ~np.isfinite(as_float) | (numeric != np.floor(numeric))
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise _fail(source, first_row + i, col.name, f"expected an integer, got {_shown(values.iloc[i])}",
                    _op_id_at(frame, i))
    huge = as_float.abs() >= INT64_LIMIT
    if huge.any():
        i = int(np.flatnonzero(huge.to_numpy())[0])
        raise _fail(source, first_row + i, col.name, f"{_shown(values.iloc[i])} does not fit int64 "
                    "(at most 2**63 - 1)", _op_id_at(frame, i))
    return numeric.to_numpy(dtype=np.int64)


#: Integer cells and the values derived from them must stay below this (int64 must not wrap).
INT64_LIMIT = 2.0**63


def _shown(value: object) -> str:
    """A cell for a message: plain Python values, not NumPy reprs, and at most 60 characters."""
    value = value.tolist() if hasattr(value, "tolist") else value
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _op_id_at(frame: pd.DataFrame, i: int) -> object:
    return _shown(frame["op_id"].iloc[i]).strip("'") if "op_id" in frame.columns else None


def _check_rows(t: pd.DataFrame, source: str, first_row: int, state: ValidationState) -> None:
    def fail_at(mask: np.ndarray, column: str, message) -> None:
        i = int(np.flatnonzero(mask)[0])
        text = message(i) if callable(message) else message
        raise _fail(source, first_row + i, column, text, int(t["op_id"].iat[i]))

    for name in _NON_NEGATIVE:
        neg = t[name].to_numpy() < 0
        if neg.any():
            fail_at(neg, name, lambda i, name=name: f"must be >= 0, got {t[name].iat[i]}")
    for name in ("layer", "step"):
        low = t[name].to_numpy() < -1
        if low.any():
            fail_at(low, name, "must be >= -1")
    kinds = t["kind"].to_numpy()
    unknown_kind = _not_in(kinds, KINDS)
    if unknown_kind.any():
        fail_at(unknown_kind, "kind",
                lambda i: f"unknown kind {kinds[i]!r}{did_you_mean(str(kinds[i]), tuple(KINDS))}")
    dtypes = t["dtype"].to_numpy()
    bad_dtype = _not_in(dtypes, DTYPE_BYTES)
    if bad_dtype.any():
        fail_at(bad_dtype, "dtype",
                lambda i: f"unknown dtype {dtypes[i]!r}{did_you_mean(str(dtypes[i]), tuple(DTYPE_BYTES))}")
    access = t["access"].to_numpy()
    bad_access = _not_in(access, ACCESS_PATTERNS)
    if bad_access.any():
        fail_at(bad_access, "access", lambda i: f"must be one of {ACCESS_PATTERNS}, got {access[i]!r}")
    if (t["stream"].to_numpy() == "").any():
        fail_at(t["stream"].to_numpy() == "", "stream", "must not be empty")
    _check_shapes(t, fail_at)
    _check_ids_and_deps(t, source, first_row, state)


def _check_shapes(t: pd.DataFrame, fail_at) -> None:
    kind = t["kind"].to_numpy()
    m, n, k = (t[c].to_numpy() for c in ("m", "n", "k"))
    gemm = (kind == "gemm") & ((m == 0) | (n == 0) | (k == 0))
    if gemm.any():
        fail_at(gemm, "m", "a gemm needs m, n and k > 0")
    src, dst = t["src"].to_numpy(), t["dst"].to_numpy()
    moves = np.isin(kind, ["transfer", "gather"])
    if (moves & (src == "")).any():
        fail_at(moves & (src == ""), "src", "a transfer or gather needs a source space")
    if (moves & (dst == "")).any():
        fail_at(moves & (dst == ""), "dst", "a transfer or gather needs a destination space")
    empty_move = moves & (t["bytes_read"].to_numpy() == 0)
    if empty_move.any():
        fail_at(empty_move, "bytes_read", "a transfer or gather must move bytes_read > 0 bytes")
    alloc = kind == "alloc"
    if (alloc & ((dst == "") | (t["bytes_written"].to_numpy() == 0))).any():
        fail_at(alloc & ((dst == "") | (t["bytes_written"].to_numpy() == 0)), "bytes_written",
                "an alloc needs a dst space and bytes_written > 0")
    free = kind == "free"
    if (free & ((src == "") | (t["bytes_read"].to_numpy() == 0))).any():
        fail_at(free & ((src == "") | (t["bytes_read"].to_numpy() == 0)), "bytes_read",
                "a free needs a src space and bytes_read > 0")
    reads_nowhere = ~np.isin(kind, ["alloc", "free"]) & (t["bytes_read"].to_numpy() > 0) & (src == "")
    if reads_nowhere.any():
        fail_at(reads_nowhere, "src", "bytes_read > 0 needs a source space")
    reads2_nowhere = (t["bytes_read2"].to_numpy() > 0) & (t["src2"].to_numpy() == "")
    if reads2_nowhere.any():
        fail_at(reads2_nowhere, "src2", "bytes_read2 > 0 needs a source space")
    writes_nowhere = ~np.isin(kind, ["alloc", "free"]) & (t["bytes_written"].to_numpy() > 0) & (dst == "")
    if writes_nowhere.any():
        fail_at(writes_nowhere, "dst", "bytes_written > 0 needs a destination space")


def _check_ids_and_deps(t: pd.DataFrame, source: str, first_row: int, state: ValidationState) -> None:
    """Check ids are unique and deps point backwards; rewrite deps canonically ("3;7")."""
    ids = t["op_id"].to_numpy()
    order_breaks = len(ids) > 1 and not bool(np.all(np.diff(ids) > 0))
    if order_breaks or (len(ids) and ids[0] <= state.max_id):
        # Ids not strictly increasing: find the first repeat the slow, exact way.
        seen_here: set[int] = set()
        earlier = state.contains(ids)
        for i, op_id in enumerate(ids.tolist()):
            if earlier[i] or op_id in seen_here:
                raise _fail(source, first_row + i, "op_id", f"duplicate op_id {op_id}", op_id)
            seen_here.add(op_id)
    deps = t["deps"].to_numpy()
    with_deps = np.flatnonzero(deps != "")
    if with_deps.size:
        canonical = deps.copy()
        rows, wanted = [], []
        for i in with_deps.tolist():
            parsed = []
            for part in deps[i].split(";"):
                part = part.strip()
                if not part:
                    continue
                try:
                    parsed.append(int(part))
                    if not -INT64_LIMIT < parsed[-1] < INT64_LIMIT:
                        raise ValueError
                except ValueError:
                    raise _fail(source, first_row + i, "deps",
                                f"{_shown(part)} is not an op_id (deps are integers separated by ';')",
                                int(ids[i])) from None
            canonical[i] = ";".join(map(str, parsed))
            rows.extend([i] * len(parsed))
            wanted.extend(parsed)
        _check_backwards(np.asarray(rows, dtype=np.int64), np.asarray(wanted, dtype=np.int64), ids,
                         source, first_row, state)
        t["deps"] = pd.Series(canonical, dtype=object, index=t.index)
    state.add(ids)


def _check_backwards(rows: np.ndarray, wanted: np.ndarray, ids: np.ndarray, source: str,
                     first_row: int, state: ValidationState) -> None:
    """Every dep must be an op defined on an earlier row (earlier batch, or earlier here)."""
    ok = state.contains(wanted)
    if len(ids) < 2 or bool(np.all(np.diff(ids) > 0)):
        at = np.searchsorted(ids, wanted).clip(max=max(len(ids) - 1, 0))
        ok |= (ids[at] == wanted) & (at < rows)
        position = None
    else:
        position = {int(op_id): i for i, op_id in enumerate(ids.tolist())}
    for row, dep, earlier in zip(rows.tolist(), wanted.tolist(), ok.tolist(), strict=True):
        if earlier:
            continue
        at_row = position.get(dep) if position is not None else None
        if at_row is None or at_row >= row:
            raise _fail(source, first_row + row, "deps",
                        f"op {dep} is not defined on an earlier row (deps must point backwards)",
                        int(ids[row]))


def _fill_derived(t: pd.DataFrame, source: str = "trace", first_row: int = 1) -> None:
    """Fill values that follow from others: gemm FLOPs, transfer write bytes.

    Raises TraceError naming the row when a derived count would not fit int64.
    """
    kind = t["kind"].to_numpy()
    flops = t["flops"].to_numpy()
    gemm = (kind == "gemm") & (flops == 0)
    if gemm.any():
        exact = 2.0 * t["m"].to_numpy(dtype=np.float64) * t["n"].to_numpy(dtype=np.float64) \
            * t["k"].to_numpy(dtype=np.float64) * t["batch"].to_numpy(dtype=np.float64)
        huge = gemm & (exact >= INT64_LIMIT / 2)   # margin for the float product's rounding
        if huge.any():
            i = int(np.flatnonzero(huge)[0])
            raise _fail(source, first_row + i, "flops", f"2*m*n*k*batch = {exact[i]:.4g} is more FLOPs than int64 "
                        "counts hold safely (2**62); split the op or give smaller shapes", int(t["op_id"].iat[i]))
        t.loc[gemm, "flops"] = 2 * t.loc[gemm, "m"] * t.loc[gemm, "n"] * t.loc[gemm, "k"] * t.loc[gemm, "batch"]
    moves = np.isin(kind, ["transfer", "gather"]) & (t["bytes_written"].to_numpy() == 0)
    if moves.any():
        t.loc[moves, "bytes_written"] = t.loc[moves, "bytes_read"]


def parse_deps(text: str) -> tuple[int, ...]:
    """Parse a validated (canonical) ``deps`` cell ("3;7") into op ids."""
    return tuple(map(int, text.split(";"))) if text else ()
