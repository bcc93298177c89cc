"""`Trace`: a validated table of operations plus metadata, in memory or streamed from Parquet."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from hwsim.config.fields import build_config, param
from hwsim.config.issues import Issues
from hwsim.errors import TraceError
from hwsim.trace.schema import SCHEMA_VERSION, ValidationState, normalize_frame


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

    Build one with :func:`Trace.from_ops` (a list of op dicts), :func:`Trace.from_frame`, or
    :func:`hwsim.read_trace`. A trace read from Parquet is streamed: its rows are validated
    and handed to the engine one row group at a time, so it need not fit in memory.
    """

    def __init__(self, meta: TraceMeta, frame: pd.DataFrame | None = None,
                 parquet_path: Path | None = None, source: str = "trace") -> None:
        if (frame is None) == (parquet_path is None):
            raise ValueError("a Trace is either in memory (frame) or on disk (parquet_path)")
        self.meta = meta
        self.source = source
        self._frame = frame
        self._parquet_path = parquet_path

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, meta: TraceMeta | None = None, source: str = "trace") -> Trace:
        """Validate ``frame`` against the schema; raises TraceError naming row and column."""
        typed = normalize_frame(frame.reset_index(drop=True), source, ValidationState())
        return cls(meta or TraceMeta(), frame=typed, source=source)

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
        return self._frame is not None

    @property
    def num_ops(self) -> int:
        if self._frame is not None:
            return len(self._frame)
        return pq.ParquetFile(self._parquet_path).metadata.num_rows

    def iter_batches(self, batch_rows: int = 65536) -> Iterator[pd.DataFrame]:
        """Yield validated row batches in trace order (Parquet: one row group at a time)."""
        if self._frame is not None:
            for start in range(0, len(self._frame), batch_rows):
                yield self._frame.iloc[start:start + batch_rows]
            return
        state = ValidationState()
        handle = pq.ParquetFile(self._parquet_path)
        for index in range(handle.num_row_groups):
            try:
                frame = handle.read_row_group(index).to_pandas()
                batch = normalize_frame(frame, self.source, state)
            except (pa.ArrowException, OSError, UnicodeError) as err:
                # Damaged pages surface when a column is first decoded, in reading or in validation.
                raise TraceError(f"{self.source}: row group {index} (rows from {state.rows + 1}) cannot be read "
                                 f"({' '.join(str(err).split())[:200]})") from None
            if len(batch) != handle.metadata.row_group(index).num_rows:
                raise TraceError(f"{self.source}: row group {index} holds {len(batch)} rows, its footer says "
                                 f"{handle.metadata.row_group(index).num_rows} (a damaged file)")
            yield batch

    def streams(self) -> list[str]:
        """Stream names in order of first appearance (reads only that column from Parquet)."""
        if self._frame is not None:
            return [str(s) for s in pd.unique(self._frame["stream"])]
        handle = pq.ParquetFile(self._parquet_path)
        if "stream" not in handle.schema_arrow.names:
            return ["main"]
        names: dict[str, None] = {}
        for index in range(handle.num_row_groups):
            try:
                column = handle.read_row_group(index, columns=["stream"]).column(0)
                values = list(pd.unique(column.to_pandas()))   # decoded here: damaged text fails here
            except (pa.ArrowException, OSError, UnicodeError) as err:
                raise TraceError(f"{self.source}: row group {index} cannot be read "
                                 f"({' '.join(str(err).split())[:200]})") from None
            if len(column) != handle.metadata.row_group(index).num_rows:
                raise TraceError(f"{self.source}: row group {index}, column 'stream' holds {len(column)} values, "
                                 f"its footer says {handle.metadata.row_group(index).num_rows} (a damaged file)")
            for value in values:
                names.setdefault("main" if value is None or value != value else str(value))
        return list(names)

    def to_frame(self) -> pd.DataFrame:
        """The whole validated table (loads a streamed trace into memory)."""
        if self._frame is not None:
            return self._frame
        return pd.concat(list(self.iter_batches()), ignore_index=True)

    def __len__(self) -> int:
        return self.num_ops

    def __repr__(self) -> str:
        return f"Trace({self.source!r}, ops={self.num_ops}, generator={self.meta.generator!r})"
