"""Side-by-side comparison of runs: several machines on one trace, or several traces on one
machine, or any run folders.

A comparison folder holds one run folder per run (``<label>/``, unless the runs came from
existing folders elsewhere), and::

    comparison.parquet / .csv   metric, unit, one column per run, then "<label> / <first>" ratios
    comparison_runs.csv         label, machine, trace, work_unit, busiest_component, folder
    comparison.md               both tables for people
    comparison.png              throughput, energy per work unit and bytes per tier, as bars
    comparison.json             the runs, their folders (relative) and the baseline label

The metrics are read from each run's summary: cycles and clock, seconds, throughput in the
workload's units, energy per work unit, total, dynamic and leakage energy, bytes per tier
and link, peak occupancy per tier, utilisation per compute unit and of the busiest
component. Ratios divide by the first run (NaN where the first is 0 or missing).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hwsim.atomic import atomic_write_text
from hwsim.errors import HwsimError
from hwsim.reports.tables import figure_png, markdown_table, new_figure, save_png, write_table

COMPARISON = "comparison"


@dataclass
class RunData:
    """A run as reports see it: records, summary, resolved machine and trace metadata."""

    label: str
    records: pd.DataFrame
    summary: dict[str, Any]
    machine: dict[str, Any]
    trace_meta: dict[str, Any]
    folder: Path | None = None
    trace: str = field(default="")

    @classmethod
    def from_result(cls, label: str, result: Any, folder: Path | None = None, trace: str = "") -> RunData:
        """Wrap a :class:`hwsim.RunResult`."""
        return cls(label, result.records, result.summary, result.machine, result.trace_meta,
                   folder, trace or _trace_name(result.trace_meta))

    @classmethod
    def load(cls, folder: str | os.PathLike, label: str | None = None) -> RunData:
        """Read a run folder (``records.parquet``, ``summary.json``, ``machine.resolved.yaml``,
        ``trace_meta.json``); raises HwsimError if it is not one."""
        from hwsim.results import load_run, looks_like_run_folder

        folder = Path(folder)
        if not looks_like_run_folder(folder):
            raise HwsimError(f"{folder}: not a run folder (no run.json or summary.json)")
        records, summary, machine, meta = load_run(folder)
        return cls(label or folder.resolve().name, records, summary, machine, meta,
                   folder, _trace_name(meta))


def unique_labels(names: Sequence[str]) -> list[str]:
    """Folder-safe, unique labels: odd characters become ``_``, repeats get ``-2``, ``-3``."""
    out: list[str] = []
    for name in names:
        base = re.sub(r"[^A-Za-z0-9._-]+", "_", str(name)).strip("._") or "run"
        label, n = base, 1
        while label in out:
            n += 1
            label = f"{base}-{n}"
        out.append(label)
    return out


def comparison_table(runs: Sequence[RunData]) -> pd.DataFrame:
    """Metrics (rows) by run (columns), then ratio columns ``<label> / <first label>``."""
    if not runs:
        raise HwsimError("compare: no runs to compare")
    rows: dict[tuple[str, str], dict[str, float]] = {}

    def put(metric: str, unit: str, label: str, value: Any) -> None:
        rows.setdefault((metric, unit), {})[label] = float(value)

    work_units = sorted({r.summary["work_unit"] for r in runs})
    unit = work_units[0] if len(work_units) == 1 else "work unit"
    for run in runs:
        s, e, label = run.summary, run.summary["energy"], run.label
        put("cycles", "cycles", label, s["total_cycles"])
        put("clock", "Hz", label, s["clock_hz"])
        put("seconds", "s", label, s["seconds"])
        put("throughput", f"{unit}/s", label, s["throughput"])
        put("energy per work unit", f"J/{unit}", label, s["energy_per_work_unit_j"])
        put("total energy", "J", label, e["total_j"])
        put("dynamic energy", "J", label, e["dynamic_pj"] / 1e12)
        put("leakage energy", "J", label, e["leakage_pj"] / 1e12)
        put("busiest utilization", "fraction", label, s["busiest_utilization"])
        if s.get("communication"):
            put("communication", "s", label, s["communication"]["communication_seconds"])
            put("exposed communication", "s", label, s["communication"]["exposed_communication_seconds"])
    for run in runs:
        for name, tier in run.summary["tiers"].items():
            put(f"bytes {name}", "B", run.label, tier["bytes"])
        for name, link in run.summary["links"].items():
            put(f"bytes {name}", "B", run.label, link["bytes"])
    for run in runs:
        for name, tier in run.summary["tiers"].items():
            put(f"peak occupancy {name}", "B", run.label, tier["peak_occupancy_bytes"])
    for run in runs:
        for name, stats in run.summary["units"].items():
            put(f"utilization {name}", "fraction", run.label, stats["utilization"])
    labels = [r.label for r in runs]
    # On a machine of several devices, a group's ops are counted on its first device: rows of
    # the other devices' components that no run used say nothing.
    idle = [key for key, values in rows.items() if _other_device(key[0]) and not any(values.values())]
    for key in idle:
        del rows[key]
    frame = pd.DataFrame(
        {"metric": [m for m, _ in rows], "unit": [u for _, u in rows],
         **{label: [rows[key].get(label, np.nan) for key in rows] for label in labels}})
    first = frame[labels[0]].to_numpy(dtype=np.float64)
    for label in labels[1:]:
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = frame[label].to_numpy(dtype=np.float64) / first
        frame[f"{label} / {labels[0]}"] = np.where(first != 0, ratio, np.nan)
    return frame


def _other_device(metric: str) -> bool:
    """True for a metric of a component of device 1, 2, ... (``... d3.hbm``)."""
    head = metric.rsplit(" ", 1)[-1].split(".", 1)[0]
    return "." in metric.rsplit(" ", 1)[-1] and head[:1] == "d" and head[1:].isdigit() and head != "d0"


def runs_table(runs: Sequence[RunData], base: Path | None = None) -> pd.DataFrame:
    """One row per run: label, machine, trace, work_unit, busiest_component, folder."""
    return pd.DataFrame({
        "label": [r.label for r in runs],
        "machine": [str(r.summary["machine"]) for r in runs],
        "trace": [r.trace for r in runs],
        "work_unit": [str(r.summary["work_unit"]) for r in runs],
        "busiest_component": [str(r.summary["busiest_component"]) for r in runs],
        "folder": [_relative(r.folder, base) for r in runs],
    })


def comparison_png(runs: Sequence[RunData]) -> bytes:
    """Bars: throughput, energy per work unit, and bytes moved per tier and link."""
    labels = [r.label for r in runs]
    units = sorted({r.summary["work_unit"] for r in runs})
    unit = units[0] if len(units) == 1 else "work unit"
    fig, (ax1, ax2, ax3) = new_figure(13.0, 4.2, ncols=3)
    x = np.arange(len(runs))
    ax1.bar(x, [r.summary["throughput"] for r in runs], color="C0")
    ax1.set_title(f"throughput ({unit}/s)")
    ax2.bar(x, [r.summary["energy_per_work_unit_j"] for r in runs], color="C3")
    ax2.set_title(f"energy per {unit} (J)")
    names: list[str] = []
    for r in runs:
        names += [n for n in (*r.summary["tiers"], *r.summary["links"]) if n not in names]
    width = 0.8 / max(len(names), 1)
    for i, name in enumerate(names):
        values = [(r.summary["tiers"].get(name) or r.summary["links"].get(name) or {}).get("bytes", 0)
                  for r in runs]
        ax3.bar(x - 0.4 + width * (i + 0.5), values, width, label=name, color=f"C{i % 10}")
    ax3.set_title("bytes moved per tier and link (B)")
    if names:
        ax3.legend(fontsize=8)
    for ax in (ax1, ax2, ax3):
        ax.set_xticks(x, labels, rotation=20, ha="right")
        ax.grid(True, axis="y", alpha=0.3)
    fig.subplots_adjust(left=0.06, right=0.98, bottom=0.22, top=0.9, wspace=0.3)
    return figure_png(fig)


def compare_runs(runs: Sequence[RunData | str | os.PathLike] | Mapping[str, Any],
                 out: str | os.PathLike, *, plots: bool = True) -> Path:
    """Write the comparison files (see the module docstring) for ``runs`` into ``out``.

    ``runs`` is a list of :class:`RunData` or run folders, or a mapping ``label ->`` run
    folder or :class:`hwsim.RunResult` (results without a folder are written to
    ``out/<label>/``). Returns ``out``. Raises HwsimError for fewer than one run or a folder
    that is not a run folder.
    """
    import hwsim

    out = Path(out)
    items = list(runs.items()) if isinstance(runs, Mapping) else [(None, r) for r in runs]
    data: list[RunData] = []
    for label, item in items:
        if isinstance(item, RunData):
            data.append(item)
        elif isinstance(item, hwsim.RunResult):
            name = unique_labels([label or item.summary["machine"]])[0]
            data.append(RunData.from_result(name, item, hwsim.write_run(item, out / name)))
        else:
            data.append(RunData.load(item, label))
    if not data:
        raise HwsimError("compare: no runs to compare")
    if len({r.label for r in data}) != len(data):
        for run, label in zip(data, unique_labels([r.label for r in data]), strict=True):
            run.label = label
    table = comparison_table(data)
    runs_info = runs_table(data, out)
    write_table(table, out, COMPARISON)
    write_table(runs_info, out, f"{COMPARISON}_runs", ("csv",))
    atomic_write_text(out / f"{COMPARISON}.md", comparison_markdown(table, runs_info))
    if plots:
        save_png(comparison_png(data), out / f"{COMPARISON}.png")
    from hwsim.results import dumps_json

    atomic_write_text(out / f"{COMPARISON}.json", dumps_json({
        "baseline": data[0].label,
        "runs": runs_info.to_dict(orient="records"),
    }))
    return out


def comparison_markdown(table: pd.DataFrame, runs_info: pd.DataFrame) -> str:
    """The comparison as Markdown: the runs, then the metrics with ratios to the first run."""
    first = runs_info["label"].iloc[0]
    return (f"# Comparison of {len(runs_info)} runs\n\n{markdown_table(runs_info)}\n"
            f"Ratios divide each run by the first, `{first}`.\n\n{markdown_table(table)}")


def load_comparison(folder: str | os.PathLike) -> tuple[pd.DataFrame, pd.DataFrame, list[RunData]]:
    """Read a comparison folder: the metrics table, the runs table and the runs themselves."""
    from hwsim.results import read_json_file, read_parquet_file

    folder = Path(folder)
    table = read_parquet_file(folder / f"{COMPARISON}.parquet", "comparison table").to_pandas()
    info = read_json_file(folder / f"{COMPARISON}.json", "comparison index")
    try:
        runs = [RunData.load(folder / r["folder"], r["label"]) for r in info["runs"]]
    except (KeyError, TypeError):
        raise HwsimError(f"{folder / COMPARISON}.json: not a comparison index (damaged)") from None
    for run, meta in zip(runs, info["runs"], strict=True):
        run.trace = meta.get("trace") or run.trace
    return table, runs_table(runs, folder), runs


def _trace_name(meta: dict[str, Any]) -> str:
    parts = [str(meta.get(k)) for k in ("generator", "preset") if meta.get(k)]
    return "/".join(parts)


def _relative(folder: Path | None, base: Path | None) -> str:
    if folder is None:
        return ""
    if base is None:
        return str(folder)
    return Path(os.path.relpath(Path(folder).resolve(), Path(base).resolve())).as_posix()
