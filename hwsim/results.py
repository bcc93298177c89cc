"""What a run produces, the one boundary between the engine and everything that reads runs.

:func:`simulate` chains the two steps of a run, the engine (:func:`hwsim.engine.simulate.
run_trace`: timed records and totals) and the summary (:func:`hwsim.metrics.summary.
summarize`), into a :class:`RunResult`; this module also writes and reads run folders:
records, summary, the resolved machine, the trace metadata.

A run folder is written whole or not at all: its files go into a temporary folder beside
it, a manifest (``run.json``: every file with its size and SHA-256) is written last, and
the folder is renamed into place, replacing the previous run. Readers require the manifest
and check every file against it, so an interrupted or damaged folder is refused with what
is missing, never rendered as a mix of two runs. Output is byte-identical for identical
inputs. Numbers that are not finite (an energy that overflowed) are refused before
anything is written.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from hwsim.atomic import check_output_folder
from hwsim.errors import CapacityError, ResultError
from hwsim.inputs import SMALL_MAX_BYTES, check_input_file, read_bytes
from hwsim.units import format_quantity

RECORDS = "records.parquet"
RECORDS_CSV = "records.csv"
SUMMARY = "summary.json"
MACHINE = "machine.resolved.yaml"
TRACE_META = "trace_meta.json"
GAP_BY_KIND = "gap_by_kind.csv"   # event minus roofline cycles per op kind (hwsim run --gap)
MANIFEST = "run.json"             # written last: the run folder is complete
RUN_FILES = (RECORDS, SUMMARY, MACHINE, TRACE_META)
MANIFEST_FORMAT = "hwsim run folder"
_TEMP_MARK = ".hwsim-"


class RunResult:
    """Everything a run produced: one record per op, the summary, and its inputs.

    A run that wrote its records to a file as it went (``simulate(..., records=path)``)
    has ``records_file`` set and reads the records from it when ``records`` is first used;
    a run made with ``records=False`` has none (``records`` is None).
    """

    def __init__(self, records: pd.DataFrame | None, summary: dict[str, Any], machine: dict[str, Any],
                 trace_meta: dict[str, Any], records_file: Path | None = None, engine_run=None) -> None:
        self._records = records
        self.summary = summary
        self.machine = machine
        self.trace_meta = trace_meta
        self.records_file = None if records_file is None else Path(records_file)
        self._engine_run = engine_run   # holds records kept in memory until first read

    @property
    def records(self) -> pd.DataFrame | None:
        """The records DataFrame: joined from the run's arrays, or read from
        ``records_file``, on first use."""
        if self._records is None and self._engine_run is not None:
            self._records, self._engine_run = self._engine_run.records, None
        if self._records is None and self.records_file is not None:
            self._records = read_records_file(self.records_file)
        return self._records

    @records.setter
    def records(self, value: pd.DataFrame | None) -> None:
        self._records = value

    def __repr__(self) -> str:
        return (f"RunResult(machine={self.summary.get('machine')!r}, ops={self.summary.get('ops')}, "
                f"total_cycles={self.summary.get('total_cycles')})")

    def _repr_html_(self) -> str:
        """The run's headline and resources as HTML tables, for notebooks."""
        from hwsim.reports.notebook import result_html

        return result_html(self)


def simulate(machine, trace, *, fidelity: str = "event", allow_overflow: bool = False,
             batch_rows: int = 65536, on_batch: Callable[[int], None] | None = None,
             records: bool | str | os.PathLike = True) -> RunResult:
    """Run ``trace`` on ``machine`` (a MachineConfig or a built Machine) and summarise it.

    ``fidelity``: ``"event"`` (the SimPy replay, with contention) or ``"roofline"``
    (contention-free, a lower bound of the event total, much faster). ``records``: True
    keeps one record per op in memory, a path writes them to that Parquet file as the run
    goes (bounded memory), False keeps none (a summary only, as sweeps need).
    ``on_batch(rows)`` is called as each batch of trace rows is loaded (progress display).

    Raises CapacityError when the peak allocation of a tier exceeds its capacity, unless
    ``allow_overflow`` (then ``summary["overflow"]`` lists the tiers that did not fit);
    TraceError for a bad trace; ConfigError for a machine that cannot run it.
    """
    from hwsim.engine.simulate import run_trace
    from hwsim.metrics.summary import summarize

    run = run_trace(machine, trace, fidelity=fidelity, batch_rows=batch_rows, on_batch=on_batch,
                    records=records)
    summary = summarize(run.totals, run.machine, run.trace_meta)
    summary.update(run.summary_blocks)
    if summary["overflow"] and not allow_overflow:
        if run.records_file is not None:
            run.records_file.unlink(missing_ok=True)
        details = "; ".join(
            f"{name}: peak {format_quantity(summary['tiers'][name]['peak_occupancy_bytes'], 'bytes')} "
            f"> capacity {format_quantity(summary['tiers'][name]['capacity_bytes'], 'bytes')}"
            for name in summary["overflow"])
        raise CapacityError(f"{trace.source} on {run.machine['source']}: the working set does not fit "
                            f"({details}); place the spaces elsewhere or pass --allow-overflow")
    return RunResult(records=None, summary=summary, machine=run.machine, trace_meta=run.trace_meta,
                     records_file=run.records_file, engine_run=run if run.kept is not None else None)


def dumps_json(data: object) -> str:
    """Deterministic JSON (sorted keys, fixed float repr, trailing newline)."""
    return json.dumps(data, sort_keys=True, indent=2, allow_nan=False) + "\n"


def non_finite(data: Any, path: str = "") -> list[str]:
    """Key paths of the numbers in ``data`` (nested dicts and lists) that are NaN or infinite."""
    if isinstance(data, float):
        return [] if math.isfinite(data) else [path or "value"]
    if isinstance(data, dict):
        return [p for k, v in data.items() for p in non_finite(v, f"{path}.{k}" if path else str(k))]
    if isinstance(data, list | tuple):
        return [p for i, v in enumerate(data) for p in non_finite(v, f"{path}[{i}]")]
    return []


def check_result(result: RunResult, source: str = "run") -> None:
    """Raise ResultError when the summary or the records hold a number that is not finite or
    a time, count or energy that is negative: a result no machine can produce."""
    from hwsim.engine.records import check_columns

    bad = non_finite(result.summary)
    if bad:
        raise ResultError(f"{source}: the result is not finite at {', '.join(bad[:4])} "
                          "(a machine constant or trace size too large for the arithmetic)")
    if result.records_file is not None and result._records is None:
        return   # records streamed to a file were checked batch by batch as they were written
    if result.records is not None:
        check_columns(result.records, source)


def write_run(result: RunResult, out: str | os.PathLike, csv: bool = False,
              extra: dict[str, str] | None = None) -> Path:
    """Write ``result`` (and ``extra`` files: name -> text) as the run folder ``out``,
    replacing a previous run there, and return the folder path.

    Raises HwsimError when ``out`` cannot be a run folder (a file, inside a file, a folder
    holding other things) and ResultError for a result that is not finite.
    """
    out = check_run_output(out)
    check_result(result, str(out))
    out.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(out)
    temp = out.parent / f".{out.name}{_TEMP_MARK}tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    temp.mkdir()
    try:
        texts = {SUMMARY: dumps_json(result.summary),
                 MACHINE: yaml.safe_dump(result.machine, sort_keys=False),
                 TRACE_META: dumps_json(result.trace_meta), **(extra or {})}
        if result.records_file is not None and result._records is None:
            # Records written as the run went: copied in (never read whole into memory).
            shutil.copyfile(result.records_file, temp / RECORDS)
            if csv:
                _write_csv_from(temp / RECORDS, temp / RECORDS_CSV)
        else:
            if result.records is None:
                raise ResultError(f"{out}: the run kept no records (simulate(..., records=False)); "
                                  "a run folder needs them")
            table = pa.Table.from_pandas(result.records, preserve_index=False)
            table = table.replace_schema_metadata(None)  # pandas metadata adds nothing a reader needs
            pq.write_table(table, temp / RECORDS)
            if csv:
                texts[RECORDS_CSV] = result.records.to_csv(index=False)
        for name, text in texts.items():
            (temp / name).write_text(text, encoding="utf-8")
        names = sorted(p.name for p in temp.iterdir())
        manifest = {"format": MANIFEST_FORMAT, "version": 1,
                    "files": {name: _fingerprint(temp / name) for name in names}}
        (temp / MANIFEST).write_text(dumps_json(manifest), encoding="utf-8")
        _replace_folder(temp, out)
    finally:
        if temp.exists():
            shutil.rmtree(temp, ignore_errors=True)
    return out


def check_run_output(out: str | os.PathLike) -> Path:
    """``out`` as a folder a run may be written to: absent, empty, or a previous run folder
    (which the new run replaces); HwsimError naming the problem otherwise."""
    out = check_output_folder(out, "run folder")
    if out.is_dir() and any(out.iterdir()) and not looks_like_run_folder(out):
        raise ResultError(f"{out}: holds files that are not a run's; choose another folder (a run "
                          "replaces its whole folder)")
    return out


def looks_like_run_folder(folder: str | os.PathLike) -> bool:
    """True for a folder with a run's manifest or any of its files (complete or not)."""
    folder = Path(folder)
    return any((folder / name).is_file() for name in (MANIFEST, *RUN_FILES))


def _fingerprint(path: Path) -> dict[str, Any]:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return {"bytes": path.stat().st_size, "sha256": digest.hexdigest()}


def _replace_folder(temp: Path, out: Path) -> None:
    """Rename ``temp`` onto ``out``; a previous ``out`` is moved aside first, then removed
    (a reader sees the old run, no run, or the new run: never a mix)."""
    old = None
    if out.exists():
        old = out.parent / f".{out.name}{_TEMP_MARK}old-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        os.rename(out, old)
    os.rename(temp, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _remove_stale_temporaries(out: Path) -> None:
    """Remove temporary folders that earlier, killed writes of ``out`` left behind."""
    if not out.parent.is_dir():
        return
    for entry in out.parent.glob(f".{out.name}{_TEMP_MARK}*"):
        try:
            pid = int(entry.name.rsplit("-", 2)[-2])
            os.kill(pid, 0)
            if pid != os.getpid():
                continue          # a write still under way in another process
        except ProcessLookupError:
            pass
        except (ValueError, IndexError, PermissionError):
            continue
        shutil.rmtree(entry, ignore_errors=True)


def verify_run_folder(folder: str | os.PathLike, names: tuple[str, ...] = RUN_FILES) -> dict[str, Any]:
    """The manifest of the complete run folder ``folder``; ResultError listing every file
    that is missing or differs from the manifest (an interrupted or damaged run)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ResultError(f"{folder}: no such run folder")
    if not (folder / MANIFEST).is_file():
        present = [n for n in RUN_FILES if (folder / n).is_file()]
        missing = [n for n in RUN_FILES if n not in present]
        detail = f"missing {', '.join(missing)}" if missing else "every file is there but unconfirmed"
        raise ResultError(f"{folder}: not a complete run folder: no {MANIFEST} ({detail}); the run was "
                          "interrupted or an older hwsim wrote it: run it again")
    try:
        manifest = json.loads(read_bytes(folder / MANIFEST, "run manifest", SMALL_MAX_BYTES, ResultError))
        files = manifest["files"]
        if manifest.get("format") != MANIFEST_FORMAT or not isinstance(files, dict):
            raise ValueError
    except (ValueError, KeyError, TypeError):
        raise ResultError(f"{folder}/{MANIFEST}: not a run manifest (damaged); run it again") from None
    problems = []
    for name in names:
        expected = files.get(name)
        path = folder / name
        if expected is None:
            problems.append(f"{folder}: the manifest does not list {name}; run it again")
        elif not path.is_file():
            problems.append(f"{path}: missing (the manifest lists it); run it again")
        elif path.stat().st_size != expected.get("bytes") or _fingerprint(path)["sha256"] != expected.get("sha256"):
            problems.append(f"{path}: differs from the manifest (damaged or edited); run it again")
    if problems:
        raise ResultError(problems)
    return manifest


def load_run(folder: str | os.PathLike) -> tuple[Any, dict, dict, dict]:
    """``(records, summary, machine, trace_meta)`` of a complete run folder (verified)."""
    folder = Path(folder)
    verify_run_folder(folder)
    return read_records(folder, verify=False), read_summary(folder, verify=False), \
        _read_yaml(folder / MACHINE), _read_json(folder / TRACE_META)


def read_records(run_dir: str | os.PathLike, verify: bool = True):
    """The records DataFrame of a (verified) run folder."""
    path = Path(run_dir) / RECORDS
    if verify:
        verify_run_folder(run_dir, (RECORDS,))
    return read_records_file(path)


def read_records_file(path: str | os.PathLike) -> pd.DataFrame:
    """A records Parquet file as the records DataFrame: text columns as categoricals with
    the values present as sorted categories, whichever way the file was written (whole, or
    a row group per batch)."""
    frame = read_parquet_file(path, "records file").to_pandas()
    for name in frame.columns:
        column = frame[name]
        if isinstance(column.dtype, pd.CategoricalDtype):
            present = column.cat.remove_unused_categories()
            frame[name] = present.cat.reorder_categories(sorted(present.cat.categories))
    return frame


def _write_csv_from(records: Path, out: Path) -> None:
    """records.csv from a records Parquet file, one row group at a time."""
    handle = pq.ParquetFile(records)
    with open(out, "w", newline="", encoding="utf-8") as stream:
        for index in range(handle.num_row_groups):
            handle.read_row_group(index).to_pandas().to_csv(stream, index=False, header=index == 0)


def read_summary(run_dir: str | os.PathLike, verify: bool = True) -> dict:
    """The summary dict of a (verified) run folder."""
    if verify:
        verify_run_folder(run_dir, (SUMMARY,))
    summary = _read_json(Path(run_dir) / SUMMARY)
    if not isinstance(summary, dict) or not isinstance(summary.get("total_cycles"), int):
        raise ResultError(f"{Path(run_dir) / SUMMARY}: not a run summary")
    return summary


def read_parquet_file(path: str | os.PathLike, what: str) -> pa.Table:
    """A Parquet result file read whole; ResultError naming it when it is missing or damaged."""
    try:
        return pq.read_table(check_input_file(path, what, ResultError))
    except (pa.ArrowException, OSError) as err:
        raise ResultError(f"{path}: not a readable {what} ({' '.join(str(err).split())[:200]})") from None


def read_json_file(path: str | os.PathLike, what: str) -> Any:
    """A JSON result file; ResultError naming it when it is missing, too large or not JSON."""
    try:
        return json.loads(read_bytes(path, what, SMALL_MAX_BYTES, ResultError))
    except ValueError as err:
        raise ResultError(f"{path}: the {what} is not valid JSON ({' '.join(str(err).split())[:120]})") from None


def _read_json(path: Path) -> Any:
    return read_json_file(path, "result file")


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(read_bytes(path, "resolved machine", SMALL_MAX_BYTES, ResultError))
    except yaml.YAMLError:
        raise ResultError(f"{path}: not valid YAML") from None
