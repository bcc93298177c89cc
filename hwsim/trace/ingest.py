"""Turning a batch of trace rows, as read, into validated :class:`OpColumns`.

Two inputs, one result:

* :func:`frame_columns`: a pandas DataFrame (a CSV file read as text, ``Trace.from_ops`` /
  ``from_frame``): integer cells are parsed, text is factorised once per column;
* :func:`arrow_columns`: an Arrow table (a Parquet row group): dictionary columns keep their
  codes (only the dictionary is mapped onto the trace's vocabulary), plain string columns
  are dictionary-encoded in Arrow, and a ``list<int64>`` ``deps`` column is used as is.

``deps`` may be text (``"3;7"``, CSV and older Parquet files), lists of ids, or one integer
per row. Missing optional columns take their defaults; unknown columns are errors.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from hwsim.errors import TraceError, did_you_mean
from hwsim.trace.columns import CODE_DTYPE, OpColumns, Vocabulary
from hwsim.trace.schema import (
    BY_NAME,
    COLUMN_NAMES,
    COLUMNS,
    INT64_LIMIT,
    ValidationState,
    fail,
    shown,
    validate,
)

#: Columns pandas adds to a Parquet file for a DataFrame index; not trace columns.
_PANDAS_INDEX = "__index_level_"


def _check_names(names: list[str], source: str) -> None:
    unknown = [c for c in names if c not in BY_NAME]
    if unknown:
        raise TraceError(f"{source}: unknown column {unknown[0]!r}{did_you_mean(str(unknown[0]), COLUMN_NAMES)}")
    for col in COLUMNS:
        if col.required and col.name not in names:
            raise TraceError(f"{source}: missing required column {col.name!r}")


def frame_columns(frame: pd.DataFrame, source: str, state: ValidationState) -> OpColumns:
    """Validate the rows of ``frame`` (numbered from ``state.rows + 1``) into columns.

    Raises TraceError naming ``source``, the row and the column.
    """
    _check_names(list(frame.columns), source)
    n = len(frame)
    first_row = state.rows + 1

    def op_id_at(i: int) -> object:
        return shown(frame["op_id"].iloc[i]).strip("'") if "op_id" in frame.columns else None

    ints, codes = {}, {}
    offsets, dep_ids, deps_error = np.zeros(n + 1, dtype=np.int64), np.zeros(0, dtype=np.int64), None
    for col in COLUMNS:
        present = col.name in frame.columns
        if col.dtype == "int64":
            ints[col.name] = (_as_int(frame[col.name], col, source, first_row, op_id_at) if present
                              else np.full(n, col.default, dtype=np.int64))
        elif col.dtype == "string":
            vocab = state.vocab[col.name]
            codes[col.name] = (_text_codes(frame[col.name], col.default, vocab) if present
                               else np.full(n, vocab.code(col.default), dtype=CODE_DTYPE))
        elif present:
            offsets, dep_ids, deps_error = _deps_from_values(frame[col.name])
    ops = OpColumns(ints, codes, state.vocab, offsets, dep_ids)
    return validate(ops, source, state, deps_error)


def arrow_columns(table: pa.Table, source: str, state: ValidationState) -> OpColumns:
    """Validate the rows of Arrow ``table`` (numbered from ``state.rows + 1``) into columns."""
    names = [c for c in table.column_names if not c.startswith(_PANDAS_INDEX)]
    _check_names(names, source)
    n = table.num_rows
    first_row = state.rows + 1
    ints, codes = {}, {}
    offsets, dep_ids, deps_error = np.zeros(n + 1, dtype=np.int64), np.zeros(0, dtype=np.int64), None
    for col in COLUMNS:
        present = col.name in names
        if col.dtype == "int64":
            ints[col.name] = (_arrow_int(table.column(col.name), col, source, first_row, table) if present
                              else np.full(n, col.default, dtype=np.int64))
        elif col.dtype == "string":
            vocab = state.vocab[col.name]
            codes[col.name] = (arrow_codes(table.column(col.name), col.default, vocab) if present
                               else np.full(n, vocab.code(col.default), dtype=CODE_DTYPE))
        elif present:
            offsets, dep_ids, deps_error = _arrow_deps(table.column(col.name), n)
    ops = OpColumns(ints, codes, state.vocab, offsets, dep_ids)
    return validate(ops, source, state, deps_error)


# -- integers ------------------------------------------------------------------------------

def _as_int(values: pd.Series, col, source: str, first_row: int, op_id_at) -> np.ndarray:
    if values.dtype.kind == "i":
        return values.to_numpy(dtype=np.int64)
    numeric = pd.to_numeric(values, errors="coerce")
    if col.default is not None:
        numeric = numeric.where(values.notna(), col.default)
    as_float = numeric.astype("float64")
    bad = numeric.isna() | ~np.isfinite(as_float) | (numeric != np.floor(numeric))
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise fail(source, first_row + i, col.name, f"expected an integer, got {shown(values.iloc[i])}", op_id_at(i))
    huge = as_float.abs() >= INT64_LIMIT
    if huge.any():
        i = int(np.flatnonzero(huge.to_numpy())[0])
        raise fail(source, first_row + i, col.name, f"{shown(values.iloc[i])} does not fit int64 "
                   "(at most 2**63 - 1)", op_id_at(i))
    return numeric.to_numpy(dtype=np.int64)


def _arrow_int(column: pa.ChunkedArray, col, source: str, first_row: int, table: pa.Table) -> np.ndarray:
    if pa.types.is_signed_integer(column.type):
        if column.null_count:
            if col.default is None:
                i = int(np.flatnonzero(column.is_null().to_numpy(zero_copy_only=False))[0])
                raise fail(source, first_row + i, col.name, "expected an integer, got None",
                           _arrow_op_id(table, i))
            column = pc.fill_null(column, col.default)
        return np.asarray(column.to_numpy(), dtype=np.int64)
    # Anything else (floats, text) goes through the same parsing as CSV cells.
    values = pd.Series(column.to_numpy(zero_copy_only=False))
    return _as_int(values, col, source, first_row, lambda i: _arrow_op_id(table, i))


def _arrow_op_id(table: pa.Table, i: int) -> object:
    return shown(table.column("op_id")[i].as_py()).strip("'") if "op_id" in table.column_names else None


# -- text ----------------------------------------------------------------------------------

def _text_codes(values: pd.Series, default: str | None, vocab: Vocabulary) -> np.ndarray:
    """Codes of a text column of a DataFrame; missing cells take ``default`` ("" for a
    required column, which its rules then reject)."""
    default = "" if default is None else default
    if isinstance(values.dtype, pd.CategoricalDtype):
        codes, uniques = pd.factorize(values)
        lut = vocab.encode([str(u) for u in uniques])
        if (codes < 0).any():   # missing: -1 picks the default's code, appended last
            lut = np.append(lut, vocab.code(default)).astype(CODE_DTYPE)
        return lut[codes]
    array = values.to_numpy(dtype=object)
    if pd.api.types.infer_dtype(array, skipna=False) != "string":
        array = array.copy()
        array[pd.isna(array)] = default
        array = np.array([str(v) for v in array], dtype=object)
    codes, uniques = pd.factorize(array)
    return vocab.encode(list(uniques))[codes]


def arrow_codes(column: pa.ChunkedArray, default: str | None, vocab: Vocabulary) -> np.ndarray:
    """Codes of a text column of an Arrow table (dictionary or plain strings); nulls take
    ``default`` ("" for a required column, which its rules then reject)."""
    default = "" if default is None else default
    parts = []
    for chunk in column.chunks:
        if pa.types.is_null(chunk.type):
            parts.append(np.full(len(chunk), vocab.code(default), dtype=CODE_DTYPE))
            continue
        if not pa.types.is_dictionary(chunk.type):
            if not (pa.types.is_string(chunk.type) or pa.types.is_large_string(chunk.type)):
                chunk = pc.cast(chunk, pa.string())
            chunk = pc.dictionary_encode(chunk)
        words = chunk.dictionary.to_pylist()
        lut = vocab.encode([default if w is None else str(w) for w in words])
        indices = chunk.indices
        nulls = indices.null_count > 0
        if nulls:   # -1 picks the default's code, appended last
            indices = pc.fill_null(indices, -1)
            lut = np.append(lut, vocab.code(default)).astype(CODE_DTYPE)
        local = indices.to_numpy(zero_copy_only=False)
        if not nulls and local.dtype == CODE_DTYPE and np.array_equal(lut, np.arange(len(lut))):
            parts.append(local)   # a file hwsim wrote: its dictionary is the vocabulary itself
        else:
            parts.append(lut[local])
    if not parts:
        return np.zeros(0, dtype=CODE_DTYPE)
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


# -- dependencies --------------------------------------------------------------------------

Deps = tuple[np.ndarray, np.ndarray, "tuple[int, str] | None"]


def _csr(rows: np.ndarray, ids: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Offsets and ids of a CSR from ``(row, id)`` pairs listed in row order."""
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n), out=offsets[1:])
    return offsets, np.asarray(ids, dtype=np.int64)


def _deps_from_values(values: pd.Series) -> Deps:
    """``deps`` cells of a DataFrame: text, lists of ids, or integers (missing = none)."""
    n = len(values)
    if values.dtype.kind in "iu":
        return _csr(np.arange(n), values.to_numpy(dtype=np.int64), n) + (None,)
    array = values.to_numpy(dtype=object)
    kind = pd.api.types.infer_dtype(array, skipna=True)
    if kind in ("string", "empty"):
        texts = pa.array(np.where(pd.isna(array), "", array).astype(object), type=pa.string())
        return _parse_text(texts)
    rows, ids = [], []
    for i, value in enumerate(array.tolist()):
        if isinstance(value, str):
            parts = [p.strip() for p in value.split(";") if p.strip()]
        elif isinstance(value, list | tuple | np.ndarray):
            parts = list(value)
        elif value is None or (isinstance(value, float) and np.isnan(value)):
            parts = []
        else:
            parts = [value]
        for part in parts:
            try:
                value = int(part)
                if not -INT64_LIMIT < value < INT64_LIMIT:
                    raise ValueError
            except (TypeError, ValueError, OverflowError):
                offsets, dep_ids = _csr(np.asarray(rows, dtype=np.int64), ids, n)
                return offsets, dep_ids, (i, part)
            ids.append(value)
            rows.append(i)
    return _csr(np.asarray(rows, dtype=np.int64), ids, n) + (None,)


def _parse_text(texts: pa.Array) -> Deps:
    """``"3;7"`` cells (empty parts ignored, spaces stripped) as CSR, with Arrow kernels."""
    n = len(texts)
    if n == 0 or not pc.any(pc.greater(pc.utf8_length(texts), 0)).as_py():
        return np.zeros(n + 1, dtype=np.int64), np.zeros(0, dtype=np.int64), None
    parts = pc.split_pattern(texts, ";")
    lengths = pc.fill_null(pc.list_value_length(parts), 0).to_numpy(zero_copy_only=False)
    flat = pc.utf8_trim_whitespace(pc.list_flatten(parts))
    keep = pc.greater(pc.utf8_length(flat), 0).to_numpy(zero_copy_only=False)
    rows = np.repeat(np.arange(n, dtype=np.int64), lengths)[keep]
    flat = flat.filter(pa.array(keep))
    try:
        ids = pc.cast(flat, pa.int64()).to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        # A part Arrow cannot read as int64: parse in Python, which also accepts "+3".
        ids = []
        for row, part in zip(rows.tolist(), flat.to_pylist(), strict=True):
            try:
                value = int(part)
                if not -INT64_LIMIT < value < INT64_LIMIT:
                    raise ValueError
            except ValueError:
                count = len(ids)
                offsets, dep_ids = _csr(rows[:count], ids, n)
                return offsets, dep_ids, (row, part)
            ids.append(value)
    return _csr(rows, ids, n) + (None,)


def _arrow_deps(column: pa.ChunkedArray, n: int) -> Deps:
    """``deps`` of an Arrow table: ``list<int>`` (as written by hwsim), text, or integers."""
    chunk = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    kind = chunk.type
    if pa.types.is_null(kind):
        return np.zeros(n + 1, dtype=np.int64), np.zeros(0, dtype=np.int64), None
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        lengths = pc.fill_null(pc.list_value_length(chunk), 0).to_numpy(zero_copy_only=False)
        values = pc.list_flatten(chunk)
        if values.null_count or not pa.types.is_integer(values.type):
            return _deps_from_values(pd.Series(chunk.to_pylist(), dtype=object))
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        return offsets, np.asarray(values.to_numpy(), dtype=np.int64), None
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return _parse_text(pc.fill_null(chunk, ""))
    if pa.types.is_dictionary(kind):
        return _parse_text(pc.fill_null(chunk.cast(pa.string()), ""))
    return _deps_from_values(pd.Series(chunk.to_numpy(zero_copy_only=False)))
