"""Writing a run folder: records, summary, the resolved machine and the trace metadata.

Every file is written atomically, so an interrupted write leaves the previous version or
nothing, never half a file. Output is byte-identical for identical inputs.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from hwsim.atomic import atomic_path, atomic_write_text
from hwsim.engine.simulate import RunResult

RECORDS = "records.parquet"
RECORDS_CSV = "records.csv"
SUMMARY = "summary.json"
MACHINE = "machine.resolved.yaml"
TRACE_META = "trace_meta.json"
GAP_BY_KIND = "gap_by_kind.csv"   # event minus roofline cycles per op kind (hwsim run --gap)


def dumps_json(data: object) -> str:
    """Deterministic JSON (sorted keys, fixed float repr, trailing newline)."""
    return json.dumps(data, sort_keys=True, indent=2, allow_nan=False) + "\n"


def write_run(result: RunResult, out: str | os.PathLike, csv: bool = False) -> Path:
    """Write ``result`` into folder ``out`` and return the folder path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pandas(result.records, preserve_index=False)
    table = table.replace_schema_metadata(None)  # pandas metadata adds nothing a reader needs
    with atomic_path(out / RECORDS) as tmp:
        pq.write_table(table, tmp)
    if csv:
        atomic_write_text(out / RECORDS_CSV, result.records.to_csv(index=False))
    atomic_write_text(out / SUMMARY, dumps_json(result.summary))
    atomic_write_text(out / MACHINE, yaml.safe_dump(result.machine, sort_keys=False))
    atomic_write_text(out / TRACE_META, dumps_json(result.trace_meta))
    return out


def read_records(run_dir: str | os.PathLike):
    """The records DataFrame of a run folder."""
    return pq.read_table(Path(run_dir) / RECORDS).to_pandas()


def read_summary(run_dir: str | os.PathLike) -> dict:
    """The summary dict of a run folder."""
    return json.loads((Path(run_dir) / SUMMARY).read_text())
