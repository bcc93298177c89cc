"""Reading and writing traces: CSV for small hand-written ones, Parquet for large ones.

A CSV trace may start with one comment line holding the metadata as JSON::

    # hwsim-trace {"generator": "hand", "work_unit": "token", "work_units": 64}
    op_id,stream,deps,kind,m,n,k,...

Parquet traces keep the same metadata under the key ``hwsim.trace`` and are read one row
group at a time.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from hwsim.atomic import atomic_path, atomic_write_bytes
from hwsim.errors import TraceError
from hwsim.trace.schema import COLUMN_NAMES, ValidationState, normalize_frame
from hwsim.trace.trace import Trace, TraceMeta

CSV_MARKER = "# hwsim-trace"
PARQUET_KEY = b"hwsim.trace"
DEFAULT_ROW_GROUP = 65536


def read_trace(path: str | os.PathLike) -> Trace:
    """Read and validate a trace (``.csv`` or ``.parquet``).

    Raises TraceError naming the file, row and column of the first problem.
    """
    path = Path(path)
    if not path.exists():
        raise TraceError(f"{path}: no such trace file")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _read_csv(path)
    if suffix in (".parquet", ".pq"):
        return _read_parquet(path)
    raise TraceError(f"{path}: unknown trace format {suffix!r} (use .csv or .parquet)")


def _read_csv(path: Path) -> Trace:
    text = path.read_text()
    meta = TraceMeta()
    lines = text.splitlines(keepends=True)
    body_start = 0
    if lines and lines[0].startswith(CSV_MARKER):
        raw = lines[0][len(CSV_MARKER):].strip()
        try:
            data = json.loads(raw) if raw else {}
        except json.JSONDecodeError as err:
            raise TraceError(f"{path}: line 1: metadata is not valid JSON ({err.msg})") from None
        meta = TraceMeta.from_dict(data, str(path))
        body_start = 1
    body = "".join(line for line in lines[body_start:] if not line.startswith("#"))
    try:
        frame = pd.read_csv(io.StringIO(body), dtype=str, keep_default_na=False, na_values=[""],
                            skipinitialspace=True)
    except pd.errors.ParserError as err:
        raise TraceError(f"{path}: cannot parse CSV ({err})") from None
    if frame.empty:
        raise TraceError(f"{path}: the trace has no rows")
    typed = normalize_frame(frame, str(path), ValidationState())
    return Trace(meta, frame=typed, source=str(path))


def _read_parquet(path: Path) -> Trace:
    try:
        handle = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as err:
        raise TraceError(f"{path}: not a readable Parquet file ({err})") from None
    raw = (handle.schema_arrow.metadata or {}).get(PARQUET_KEY)
    meta = TraceMeta()
    if raw is not None:
        try:
            meta = TraceMeta.from_dict(json.loads(raw), str(path))
        except json.JSONDecodeError as err:
            raise TraceError(f"{path}: trace metadata is not valid JSON ({err.msg})") from None
    if handle.metadata.num_rows == 0:
        raise TraceError(f"{path}: the trace has no rows")
    return Trace(meta, parquet_path=path, source=str(path))


def write_trace(trace: Trace, path: str | os.PathLike, row_group_rows: int = DEFAULT_ROW_GROUP) -> Path:
    """Write ``trace`` to ``path`` (format from the suffix), atomically (temp file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        frame = trace.to_frame()[list(COLUMN_NAMES)]
        text = f"{CSV_MARKER} {trace.meta.to_json()}\n" + frame.to_csv(index=False)
        atomic_write_bytes(path, text.encode())
        return path
    if suffix not in (".parquet", ".pq"):
        raise TraceError(f"{path}: unknown trace format {suffix!r} (use .csv or .parquet)")
    with atomic_path(path) as tmp:
        writer = None
        for batch in trace.iter_batches(row_group_rows):
            table = pa.Table.from_pandas(batch[list(COLUMN_NAMES)], preserve_index=False)
            if writer is None:
                schema = table.schema.with_metadata({PARQUET_KEY: trace.meta.to_json().encode()})
                writer = pq.ParquetWriter(tmp, schema)
            writer.write_table(table.replace_schema_metadata(writer.schema.metadata),
                               row_group_size=row_group_rows)
        if writer is not None:
            writer.close()
    return path
