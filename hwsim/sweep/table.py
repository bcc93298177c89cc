"""The tidy sweep table: one row per (design point, trace), swept values next to metrics.

Rows are built from the per-run files under ``DIR/points/`` and written once, atomically,
to ``DIR/results.parquet``, sorted by ``point_id`` then trace, with no wall-clock values, so
the same sweep always gives a byte-identical table. Columns, in order:

* ``point_id``, ``trace`` (label), ``trace_index``, one column per axis (its dotted key;
  quantities in base units: bytes, bytes/s, Hz, s, pJ, W), ``machine``, ``fidelity``,
  ``status`` (``ok``, ``failed`` or ``missing``), ``error``;
* ``total_cycles`` (reference-clock cycles), ``seconds``, ``throughput`` (work units/s) and
  ``throughput_unit``, ``work_unit``, ``energy_j`` (J), ``energy_per_work_unit_j`` (J/unit),
  ``busiest_component``, ``busiest_utilization`` (0..1);
* ``bytes_<tier or link>`` (bytes moved) and ``peak_bytes_<tier>`` (peak occupancy, bytes);
* ``run_hash``: a stable hash of (resolved machine config, trace identity).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from hwsim.atomic import atomic_path

RESULTS = "results.parquet"
POINTS = "points"
MANIFEST = "sweep.json"
PARQUET_KEY = b"hwsim.sweep"

HEAD = ("point_id", "trace", "trace_index")
STATUS = ("machine", "fidelity", "status", "error")
METRICS = ("total_cycles", "seconds", "throughput", "throughput_unit", "work_unit", "energy_j",
           "energy_per_work_unit_j", "busiest_component", "busiest_utilization")
TEXT = ("point_id", "trace", "machine", "fidelity", "status", "error", "throughput_unit", "work_unit",
        "busiest_component", "run_hash")


def metrics_row(summary: dict[str, Any]) -> dict[str, Any]:
    """The table's metric columns from a run summary (event or roofline)."""
    row: dict[str, Any] = {
        "total_cycles": int(summary["total_cycles"]),
        "seconds": float(summary["seconds"]),
        "throughput": float(summary["throughput"]),
        "throughput_unit": str(summary["throughput_unit"]),
        "work_unit": str(summary["work_unit"]),
        "energy_j": float(summary["energy"]["total_j"]),
        "energy_per_work_unit_j": float(summary["energy_per_work_unit_j"]),
        "busiest_component": str(summary["busiest_component"]),
        "busiest_utilization": float(summary["busiest_utilization"]),
    }
    for name, tier in sorted(summary["tiers"].items()):
        row[f"bytes_{name}"] = int(tier["bytes"])
        row[f"peak_bytes_{name}"] = float(tier["peak_occupancy_bytes"])
    for name, link in sorted(summary.get("links", {}).items()):
        row[f"bytes_{name}"] = int(link["bytes"])
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()}


def build_table(rows: list[dict[str, Any]], axes: list[str]) -> pd.DataFrame:
    """One DataFrame from run rows, columns in the documented order, rows sorted."""
    frame = pd.DataFrame(rows)
    for column in (*HEAD, *axes, *STATUS, *METRICS, "run_hash"):
        if column not in frame:
            frame[column] = None
    extra = sorted(c for c in frame.columns if c.startswith("bytes_"))
    peaks = sorted(c for c in frame.columns if c.startswith("peak_bytes_"))
    order = [*HEAD, *axes, *STATUS, *METRICS, *extra, *peaks, "run_hash"]
    frame = frame[order].sort_values(["point_id", "trace_index"], kind="stable").reset_index(drop=True)
    for column in frame.columns:
        frame[column] = _typed(frame[column], column in TEXT)
    return frame


def _typed(column: pd.Series, text: bool) -> pd.Series:
    """A deterministic dtype per column: text, whole numbers (nullable), floats, or text."""
    values = column.dropna()
    if text or values.map(lambda v: isinstance(v, str | dict | list)).any():
        return column.map(lambda v: None if v is None or v != v else _text(v)).astype("string")
    if values.map(lambda v: isinstance(v, bool)).all() and len(values):
        return column.astype("boolean")
    if values.map(lambda v: isinstance(v, int) and not isinstance(v, bool)).all():
        return column.astype("Int64")
    return column.astype("float64")


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def write_table(frame: pd.DataFrame, path: str | os.PathLike, axes: list[str]) -> Path:
    """Write ``frame`` to Parquet atomically; the axis keys go into the file's metadata."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    table = table.replace_schema_metadata({PARQUET_KEY: json.dumps({"axes": axes}).encode()})
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
    return Path(path)


def read_results(folder: str | os.PathLike) -> tuple[pd.DataFrame, list[str]]:
    """The results table of a sweep folder and its axis keys (in sweep-file order)."""
    path = Path(folder) / RESULTS
    table = pq.read_table(path)
    meta = json.loads((table.schema.metadata or {}).get(PARQUET_KEY, b'{"axes": []}'))
    return table.to_pandas(), list(meta.get("axes", []))
