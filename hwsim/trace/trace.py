"""`Trace`: a validated table of operations plus metadata, in memory or streamed from Parquet.

In memory a trace is one :class:`~hwsim.trace.columns.OpColumns` (integer arrays, text as
codes); streamed from Parquet it is validated one row group at a time as it is read. Either
way the engine sees the same thing: batches of validated columns in trace order.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from hwsim.config.fields import build_config, param
from hwsim.config.issues import Issues
from hwsim.errors import TraceError
from hwsim.trace.columns import OpColumns, concat
from hwsim.trace.ingest import arrow_codes, arrow_columns, frame_columns
from hwsim.trace.schema import (
    BY_NAME,
    COLUMN_NAMES,
    SCHEMA_VERSION,
    STR_COLUMNS,
    ValidationState,
    new_vocabulary,
    validate,
)


@dataclass(frozen=True)
class TraceMeta:
    """Where a trace came from and what its useful work is.

    ``work_units`` counts the workload's unit of useful work in the whole trace (for example
    video frames produced or tokens processed) so that throughput is reported as
    ``work_units / seconds`` in ``work_unit``/s.
    """

    schema_version: int = param(SCHEMA_VERSION, unit="count", minimum=0, help="trace format version")
    generator: str = param("", unit="text", help="what wrote the trace (workloads.<family>, hand, ...)")
    preset: str = param("", unit="text", help="model preset of a generated trace")
    params: dict[str, Any] = param({}, unit="map", help="the generator's resolved parameters")
    seed: int | None = param(None, unit="count", minimum=0, maximum=2**63 - 1, help="random seed of the generator")
    work_unit: str = param("op", unit="text", max_length=40, help="the workload's unit of useful work (frame, token)")
    work_units: float = param(0.0, unit="count", minimum=0.0, maximum=1e30, help="units of useful work in the trace")
    description: str = param("", unit="text", help="one line about the trace")

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "trace") -> TraceMeta:
        """Build from a metadata dict; unknown keys and values of the wrong type are rejected
        with their name (TraceError)."""
        if not isinstance(data, dict):
            raise TraceError(f"{source}: trace metadata must be a mapping, got {type(data).__name__}")
        issues = Issues(source, error=TraceError)
        meta = build_config(cls, data, "metadata", issues)
        issues.raise_if_any()
        if meta.schema_version != SCHEMA_VERSION:
            raise TraceError(f"{source}: schema_version {meta.schema_version} is not supported "
                             f"(this hwsim reads version {SCHEMA_VERSION})")
        return meta

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


class Trace:
    """A validated operation table and its metadata.

    Build one with :func:`Trace.from_ops` (a list of op dicts), :func:`Trace.from_frame`,
    :func:`Trace.from_columns` or :func:`hwsim.read_trace`. A trace read from Parquet is
    streamed: its rows are validated and handed to the engine one row group at a time, so it
    need not fit in memory.
    """

    def __init__(self, meta: TraceMeta, columns: OpColumns | list[OpColumns] | None = None,
                 parquet_path: Path | None = None, source: str = "trace") -> None:
        if (columns is None) == (parquet_path is None):
            raise ValueError("a Trace is either in memory (columns) or on disk (parquet_path)")
        self.meta = meta
        self.source = source
        # In memory: validated chunks in trace order (one, or a Parquet file's row groups).
        self._chunks = None if columns is None else (columns if isinstance(columns, list) else [columns])
        self._parquet_path = parquet_path
        # Codes of text columns mean the same in every batch and every pass over the file.
        self.vocab = self._chunks[0].vocab if self._chunks else new_vocabulary()
        self._layout: tuple[list[str], list[int]] | None = None
        self._meta_dict: dict[str, Any] | None = None

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, meta: TraceMeta | None = None, source: str = "trace") -> Trace:
        """Validate ``frame`` against the schema; raises TraceError naming row and column."""
        columns = frame_columns(frame.reset_index(drop=True), source, ValidationState())
        return cls(meta or TraceMeta(), columns=columns, source=source)

    @classmethod
    def from_columns(cls, columns: OpColumns, meta: TraceMeta | None = None, source: str = "trace") -> Trace:
        """Validate unvalidated ``columns`` (every schema column present; text codes over
        ``columns.vocab``); raises TraceError naming row and column."""
        missing = [c for c in COLUMN_NAMES if c != "deps" and c not in columns]
        if missing:
            raise ValueError(f"from_columns: missing columns {missing}")
        validated = validate(columns, source, ValidationState(columns.vocab))
        return cls(meta or TraceMeta(), columns=validated, source=source)

    @classmethod
    def from_ops(cls, ops: Iterable[dict[str, Any]], meta: TraceMeta | dict | None = None,
                 source: str = "ops") -> Trace:
        """Build a trace from op dicts: ``[{"op_id": 0, "kind": "gemm", "m": 64, ...}, ...]``."""
        rows = list(ops)
        if not rows:
            raise TraceError(f"{source}: a trace needs at least one op")
        if isinstance(meta, dict):
            meta = TraceMeta.from_dict(meta, source)
        return cls.from_frame(pd.DataFrame(rows), meta, source)

    @property
    def in_memory(self) -> bool:
        return self._chunks is not None

    @property
    def num_ops(self) -> int:
        if self._chunks is not None:
            return sum(len(c) for c in self._chunks)
        return pq.ParquetFile(self._parquet_path).metadata.num_rows

    def _parquet(self) -> pq.ParquetFile:
        names = pq.read_schema(self._parquet_path).names
        return pq.ParquetFile(self._parquet_path, read_dictionary=[c for c in STR_COLUMNS if c in names])

    def iter_batches(self, batch_rows: int = 65536) -> Iterator[OpColumns]:
        """Yield validated batches of at most ``batch_rows`` rows in trace order (Parquet:
        one row group at a time, whatever its size)."""
        if self._chunks is not None:
            for chunk in self._chunks:
                if len(chunk) <= batch_rows:
                    yield chunk
                    continue
                for start in range(0, len(chunk), batch_rows):
                    yield chunk.slice(start, start + batch_rows)
            return
        state = ValidationState(self.vocab)
        handle = self._parquet()
        for index in range(handle.num_row_groups):
            try:
                batch = arrow_columns(handle.read_row_group(index), self.source, state)
            except (pa.ArrowException, OSError, UnicodeError) as err:
                # Damaged pages surface when a column is first decoded, in reading or in validation.
                raise TraceError(f"{self.source}: row group {index} (rows from {state.rows + 1}) cannot be read "
                                 f"({' '.join(str(err).split())[:200]})") from None
            if len(batch) != handle.metadata.row_group(index).num_rows:
                raise TraceError(f"{self.source}: row group {index} holds {len(batch)} rows, its footer says "
                                 f"{handle.metadata.row_group(index).num_rows} (a damaged file)")
            yield batch

    def columns(self) -> OpColumns:
        """The whole validated trace as one batch (loads a streamed trace into memory)."""
        if self._chunks is not None and len(self._chunks) == 1:
            return self._chunks[0]
        return concat(list(self.iter_batches()))

    def loaded(self) -> Trace:
        """This trace held in memory (itself if it already is): validated once, reusable,
        kept as the file's row groups (no copy)."""
        if self._chunks is not None:
            return self
        return Trace(self.meta, columns=list(self.iter_batches()), source=self.source)

    def stream_layout(self) -> tuple[list[str], list[int]]:
        """Stream names in order of first appearance and the row of each stream's last op
        (0-based). Streamed traces read only the ``stream`` column."""
        if self._layout is None:
            self._layout = self._find_layout()
        return self._layout

    def _find_layout(self) -> tuple[list[str], list[int]]:
        vocab = self.vocab["stream"]
        if self._chunks is not None:
            parts = [(c.first_row, c.codes["stream"]) for c in self._chunks]
        elif "stream" not in pq.read_schema(self._parquet_path).names:
            return [BY_NAME["stream"].default], [self.num_ops - 1]
        else:
            handle, parts, row = self._parquet(), [], 0
            for index in range(handle.num_row_groups):
                try:
                    column = handle.read_row_group(index, columns=["stream"]).column(0)
                    codes = arrow_codes(column, BY_NAME["stream"].default, vocab)   # damaged text fails here
                except (pa.ArrowException, OSError, UnicodeError) as err:
                    raise TraceError(f"{self.source}: row group {index} cannot be read "
                                     f"({' '.join(str(err).split())[:200]})") from None
                if len(column) != handle.metadata.row_group(index).num_rows:
                    raise TraceError(f"{self.source}: row group {index}, column 'stream' holds {len(column)} "
                                     f"values, its footer says {handle.metadata.row_group(index).num_rows} "
                                     "(a damaged file)")
                parts.append((row, codes))
                row += len(column)
        first: dict[int, int] = {}
        last: dict[int, int] = {}
        for start, codes in parts:
            uniques, at = np.unique(codes, return_index=True)
            for code, i in zip(uniques.tolist(), at.tolist(), strict=True):
                first.setdefault(code, start + i)
            uniques, back = np.unique(codes[::-1], return_index=True)
            for code, i in zip(uniques.tolist(), back.tolist(), strict=True):
                last[code] = start + len(codes) - 1 - i
        order = sorted(first, key=first.get)
        return [vocab.values[c] for c in order], [last[c] for c in order]

    def meta_dict(self) -> dict[str, Any]:
        """``meta.to_dict()``, computed once per trace (treat as read-only)."""
        if self._meta_dict is None:
            self._meta_dict = self.meta.to_dict()
        return self._meta_dict

    def streams(self) -> list[str]:
        """Stream names in order of first appearance."""
        return self.stream_layout()[0]

    def to_frame(self) -> pd.DataFrame:
        """The whole validated table as pandas: text columns as categoricals, ``deps`` as
        ``"3;7"`` text (loads a streamed trace into memory)."""
        return self.columns().to_frame(COLUMN_NAMES)

    def __len__(self) -> int:
        return self.num_ops

    def __repr__(self) -> str:
        return f"Trace({self.source!r}, ops={self.num_ops}, generator={self.meta.generator!r})"
