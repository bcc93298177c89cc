"""The tidy sweep table: one row per (design point, trace), swept values next to metrics.

Rows are built from the saved runs (``DIR/runs.jsonl``) and written once, atomically,
to ``DIR/results.parquet``, sorted by ``point_id`` then trace, with no wall-clock values, so
the same sweep always gives a byte-identical table. Columns, in order:

* ``point_id``, ``trace`` (label), ``trace_index``, one column per axis (its dotted key;
  quantities in base units: bytes, bytes/s, Hz, s, pJ, W), ``machine``, ``fidelity``,
  ``status`` (``ok``, ``failed`` or ``missing``), ``error``;
* ``total_cycles`` (reference-clock cycles), ``seconds``, ``throughput`` (work units/s) and
  ``throughput_unit``, ``work_unit``, ``energy_j`` (J), ``energy_per_work_unit_j`` (J/unit),
  ``avg_power_w`` (energy over run time, W),
  ``busiest_component``, ``busiest_utilization`` (0..1), ``on_chip_bytes`` (the point's
  on-chip storage: SRAM capacity plus CAM key storage, bytes; a cost of the design);
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
from hwsim.components.facts import read_facts
from hwsim.errors import ResultError
from hwsim.inputs import check_input_file

RESULTS = "results.parquet"
MANIFEST = "sweep.json"
PARQUET_KEY = b"hwsim.sweep"

HEAD = ("point_id", "trace", "trace_index")
STATUS = ("machine", "fidelity", "status", "error")
METRICS = ("total_cycles", "seconds", "throughput", "throughput_unit", "work_unit", "energy_j",
           "energy_per_work_unit_j", "avg_power_w", "busiest_component", "busiest_utilization", "on_chip_bytes")
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
        "avg_power_w": float(summary["energy"]["total_j"]) / float(summary["seconds"])
        if summary["seconds"] else float("nan"),
        "busiest_component": str(summary["busiest_component"]),
        "busiest_utilization": float(summary["busiest_utilization"]),
    }
    for name, tier in sorted(summary["tiers"].items()):
        row[f"bytes_{name}"] = int(tier["bytes"])
        row[f"peak_bytes_{name}"] = float(tier["peak_occupancy_bytes"])
    for name, link in sorted(summary.get("links", {}).items()):
        row[f"bytes_{name}"] = int(link["bytes"])
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()}


def on_chip_bytes(machine: dict[str, Any]) -> int:
    """Bytes of on-chip storage of a resolved machine: the sum of its components' facts
    (SRAM capacity, memory tiers marked ``on_chip``, CAM keys; off-chip tiers count 0)."""
    return sum(record.on_chip_bytes for record in read_facts(machine).values())


def build_table(rows: list[dict[str, Any]], axes: list[str]) -> pd.DataFrame:
    """One DataFrame from run rows, columns in the documented order, rows sorted."""
    rows = sorted(rows, key=lambda r: (r["point_id"], r["trace_index"]))
    names = {name for row in rows for name in row}
    extra = sorted(c for c in names if c.startswith("bytes_"))
    peaks = sorted(c for c in names if c.startswith("peak_bytes_"))
    order = [*HEAD, *axes, *STATUS, *METRICS, *extra, *peaks, "run_hash"]
    return pd.DataFrame({name: _typed([row.get(name) for row in rows], name in TEXT) for name in order})


def _typed(values: list[Any], text: bool) -> pd.Series:
    """A deterministic dtype per column from its Python values: text, nullable booleans or
    whole numbers, or floats (missing values stay missing)."""
    present = [v for v in values if v is not None]
    if text or any(isinstance(v, str | dict | list) for v in present):
        return pd.Series([None if v is None else _text(v) for v in values], dtype="string")
    if present and all(isinstance(v, bool) for v in present):
        return pd.Series(values, dtype="boolean")
    if all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return pd.Series(values, dtype="Int64")
    return pd.Series([float("nan") if v is None else float(v) for v in values], dtype="float64")


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def write_table(frame: pd.DataFrame, path: str | os.PathLike, axes: list[str]) -> Path:
    """Write ``frame`` to Parquet atomically; the axis keys go into the file's metadata."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    # Keep pandas' own metadata: it restores the nullable whole-number columns on reading.
    meta = {**(table.schema.metadata or {}), PARQUET_KEY: json.dumps({"axes": axes}).encode()}
    table = table.replace_schema_metadata(meta)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
    return Path(path)


def read_results(folder: str | os.PathLike) -> tuple[pd.DataFrame, list[str]]:
    """The results table of a sweep folder and its axis keys (in sweep-file order)."""
    path = Path(folder) / RESULTS
    try:
        table = pq.read_table(check_input_file(path, "sweep results table", ResultError))
        meta = json.loads((table.schema.metadata or {}).get(PARQUET_KEY, b'{"axes": []}'))
        return table.to_pandas(), list(meta.get("axes", []))
    except (OSError, pa.ArrowException, ValueError, AttributeError) as err:
        raise ResultError(f"{path}: damaged sweep results table ({' '.join(str(err).split())[:200]}); rerun "
                          "the sweep with --resume to rebuild it") from None
