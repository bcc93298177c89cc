"""Reading and writing traces: CSV for small hand-written ones, Parquet for large ones.

A CSV trace may start with one comment line holding the metadata as JSON::

    # hwsim-trace {"generator": "hand", "work_unit": "token", "work_units": 64}
    op_id,stream,deps,kind,m,n,k,...

Parquet traces keep the same metadata under the key ``hwsim.trace`` and are read one row
group at a time. hwsim writes their text columns as Arrow dictionary columns (integer codes
plus the distinct values) and ``deps`` as a ``list<int64>`` column, so reading one needs no
string parsing; Parquet files with plain string columns and ``"3;7"`` text deps read too.
"""

from __future__ import annotations

import io
import json
import os
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from hwsim.atomic import atomic_path, atomic_write_bytes, check_output_file
from hwsim.errors import TraceError
from hwsim.inputs import CSV_MAX_BYTES, check_input_file, read_text
from hwsim.trace.ingest import frame_columns
from hwsim.trace.schema import COLUMN_NAMES, ValidationState
from hwsim.trace.trace import Trace, TraceMeta

CSV_MARKER = "# hwsim-trace"
PARQUET_KEY = b"hwsim.trace"
DEFAULT_ROW_GROUP = 65536


def read_trace(path: str | os.PathLike) -> Trace:
    """Read and validate a trace (``.csv``, ``.parquet``, or one rank's Chakra execution
    trace ``.et``: :mod:`hwsim.trace.chakra`).

    Raises TraceError naming the file, row and column of the first problem.
    """
    path = check_input_file(path, "trace file", TraceError)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _read_csv(path)
    if suffix in (".parquet", ".pq"):
        return _read_parquet(path)
    if suffix == ".et":
        from hwsim.trace.chakra import read_chakra

        return read_chakra(path)
    raise TraceError(f"{path}: unknown trace format {suffix!r} (use .csv, .parquet or .et)")


def parse_meta_json(raw: str | bytes, where: str) -> dict[str, Any]:
    """Trace metadata text as a JSON object; TraceError naming ``where`` otherwise (NaN and
    Infinity are refused: JSON has no such numbers)."""
    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is not a JSON number")

    try:
        data = json.loads(raw, parse_constant=refuse) if raw else {}
    except (ValueError, RecursionError) as err:
        raise TraceError(f"{where}: metadata is not valid JSON ({getattr(err, 'msg', err)})") from None
    if not isinstance(data, dict):
        raise TraceError(f"{where}: metadata must be a JSON object, got {type(data).__name__}")
    return data


def _read_csv(path: Path) -> Trace:
    text = read_text(path, "trace file", CSV_MAX_BYTES, TraceError)
    meta = TraceMeta()
    lines = text.splitlines(keepends=True)
    if lines and lines[0].startswith(CSV_MARKER):
        meta = TraceMeta.from_dict(parse_meta_json(lines[0][len(CSV_MARKER):].strip(), f"{path}: line 1"),
                                   str(path))
    # Comment lines become blank lines (which the parser skips), so line numbers stay the file's.
    body = "".join("\n" if line.startswith("#") else line for line in lines)
    if not body.strip():
        raise TraceError(f"{path}: the trace has no header and no rows")
    try:
        frame = pd.read_csv(io.StringIO(body), dtype=str, keep_default_na=False, na_values=[""],
                            skipinitialspace=True)
    except pd.errors.ParserError as err:
        raise TraceError(f"{path}: {_parser_message(str(err))}") from None
    except pd.errors.EmptyDataError:
        raise TraceError(f"{path}: the trace has no header and no rows") from None
    if frame.empty:
        raise TraceError(f"{path}: the trace has no rows")
    duplicated = [c for c in frame.columns if re.fullmatch(r".+\.\d+", str(c)) and str(c).rsplit(".", 1)[0] in frame.columns]
    if duplicated:
        raise TraceError(f"{path}: column {str(duplicated[0]).rsplit('.', 1)[0]!r} appears twice in the header")
    typed = frame_columns(frame, str(path), ValidationState())
    return Trace(meta, columns=typed, source=str(path))


def _parser_message(text: str) -> str:
    """pandas' tokenizer error as one line: ``line 5: expected 3 fields, saw 4``."""
    match = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", text)
    if match:
        return f"line {match.group(2)}: expected {match.group(1)} fields (as in the header), saw {match.group(3)}"
    return f"cannot parse CSV ({' '.join(text.split())})"


def _read_parquet(path: Path) -> Trace:
    try:
        handle = pq.ParquetFile(path)
        schema = handle.schema_arrow
        raw = (schema.metadata or {}).get(PARQUET_KEY)
        rows = handle.metadata.num_rows
        in_groups = sum(handle.metadata.row_group(i).num_rows for i in range(handle.num_row_groups))
        columns = [(column.name, column.type) for column in schema]
    except (pa.ArrowException, OSError, UnicodeError) as err:
        raise TraceError(f"{path}: not a readable Parquet file ({' '.join(str(err).split())[:200]})") from None
    for name, kind in columns:
        if pa.types.is_dictionary(kind):
            kind = kind.value_type
        if name == "deps" and (pa.types.is_list(kind) or pa.types.is_large_list(kind)):
            kind = kind.value_type   # op ids, as hwsim writes them
        if not (pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_string(kind)
                or pa.types.is_large_string(kind) or pa.types.is_boolean(kind) or pa.types.is_null(kind)):
            raise TraceError(f"{path}: column {name!r} holds {kind}; trace columns hold numbers or text")
    meta = TraceMeta()
    if raw is not None:
        meta = TraceMeta.from_dict(parse_meta_json(raw, f"{path}: {PARQUET_KEY.decode()}"), str(path))
    if rows == 0:
        raise TraceError(f"{path}: the trace has no rows")
    if in_groups != rows:
        raise TraceError(f"{path}: damaged Parquet footer ({rows} rows, but its row groups hold {in_groups})")
    return Trace(meta, parquet_path=path, source=str(path))


def write_trace(trace: Trace, path: str | os.PathLike, row_group_rows: int = DEFAULT_ROW_GROUP) -> Path:
    """Write ``trace`` to ``path`` (format from the suffix), atomically (temp file + rename)."""
    path = check_output_file(path, "trace file")
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        frame = trace.to_frame()
        text = f"{CSV_MARKER} {trace.meta.to_json()}\n" + frame.to_csv(index=False)
        atomic_write_bytes(path, text.encode())
        return path
    if suffix not in (".parquet", ".pq"):
        raise TraceError(f"{path}: unknown trace format {suffix!r} (use .csv or .parquet)")
    with atomic_path(path) as tmp:
        writer = None
        for batch in trace.iter_batches(row_group_rows):
            table = batch.to_arrow(COLUMN_NAMES)
            if writer is None:
                schema = table.schema.with_metadata({PARQUET_KEY: trace.meta.to_json().encode()})
                writer = pq.ParquetWriter(tmp, schema)
            writer.write_table(table.replace_schema_metadata(writer.schema.metadata),
                               row_group_size=row_group_rows)
        if writer is not None:
            writer.close()
    return path
