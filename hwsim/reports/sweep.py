"""The sweep report: metrics against every axis, a Pareto front, and a Markdown table.

Reads only a sweep folder's ``results.parquet`` (see :mod:`hwsim.sweep.table`) and writes

* ``report/axis-<n>-<key>.png``: the sweep's ``metrics`` (default: throughput and energy per
  work unit) against each axis, one row and colour per trace (every point drawn, the
  median per axis value joined by a line);
* ``report/pareto-t<i>.png``: per trace, throughput against energy per work unit, the points
  on the Pareto front ringed. The front is over the sweep's objectives (``pareto`` in the
  sweep file; by default throughput up, energy per work unit and on-chip bytes down), so a
  point whose extra SRAM buys nothing is dominated. The colour shows the third objective
  (or an SRAM or capacity axis);
* ``sweep.md``: counts, each trace's Pareto front and the full table, with the figures;
* ``pareto_points.txt``: the ids of the points on any trace's front, one per line, for a
  finer sweep of just those (``hwsim sweep FILE --points @DIR/pareto_points.txt``).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from hwsim.atomic import atomic_write_text
from hwsim.errors import HwsimError
from hwsim.reports.tables import DPI, figure_png, markdown_table, new_figure, save_png
from hwsim.units import format_quantity

RESULTS = "results.parquet"
MARKDOWN = "sweep.md"
PARETO_POINTS = "pareto_points.txt"
FIGURES = "report"
#: Rows of the full table written to the Markdown file; the Parquet file has them all.
MAX_MARKDOWN_ROWS = 200
#: Up to this many distinct swept values get a tick each, labelled with the value itself.
MAX_VALUE_TICKS = 12
TRACE_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")


def is_sweep_folder(path: str | os.PathLike) -> bool:
    """True when ``path`` holds a sweep table written by ``hwsim sweep``."""
    path = Path(path)
    if not (path / RESULTS).is_file():
        return False
    import pyarrow as pa
    import pyarrow.parquet as pq
    try:
        return b"hwsim.sweep" in (pq.read_schema(path / RESULTS).metadata or {})
    except (OSError, pa.ArrowException):
        return True   # a damaged table: reading it says so


def pareto_front(maximize: np.ndarray, minimize: np.ndarray) -> np.ndarray:
    """Mask of the non-dominated points. ``maximize`` and ``minimize`` hold one objective
    per column (``[n]`` or ``[n, k]``; either may have no columns). A point is dominated
    when another is at least as good on every objective and better on one; exact
    duplicates of a front point stay on it, and a point with a NaN objective never is."""
    n = len(maximize) if np.ndim(maximize) else len(minimize)
    cost = np.hstack([-np.asarray(maximize, dtype=float).reshape(n, -1),
                      np.asarray(minimize, dtype=float).reshape(n, -1)])
    # One pass keeping the front of the points seen so far: a point dominated by any earlier
    # point is dominated by one still on that front (domination is transitive), so each
    # point is compared with the front only, not with all n.
    kept: list[int] = []
    for i in np.flatnonzero(np.isfinite(cost).all(axis=1)).tolist():
        point, front_cost = cost[i], cost[kept]
        if ((front_cost <= point).all(axis=1) & (front_cost < point).any(axis=1)).any():
            continue
        beaten = (point <= front_cost).all(axis=1) & (point < front_cost).any(axis=1)
        kept = [j for j, out in zip(kept, beaten.tolist(), strict=True) if not out]
        kept.append(i)
    front = np.zeros(n, dtype=bool)
    front[kept] = True
    return front


def render_sweep(path: str | os.PathLike, color_axis: str | None = None, **_options: object) -> Path:
    """Draw the figures and write ``sweep.md`` for sweep folder ``path``; return the Markdown path.

    ``color_axis`` picks the axis shown as colour in the Pareto plots (default: an axis
    whose key mentions sram or capacity, else the first numeric axis).
    """
    from hwsim.sweep.table import read_results

    folder = Path(path)
    table, axes = read_results(folder)
    manifest = _manifest(folder)
    objectives = _objectives(folder, table, manifest)
    metrics = _metrics(folder, table, manifest)
    dimensions = {"on_chip_bytes": "bytes", **manifest.get("axis_dimensions", {})}
    figures = folder / FIGURES
    ok = table[table["status"] == "ok"].copy()
    ok["pareto"] = False
    for _, rows in ok.groupby("trace_index", sort=True):
        ok.loc[rows.index, "pareto"] = pareto_front(rows[list(objectives["maximize"])].to_numpy(dtype=float),
                                                    rows[list(objectives["minimize"])].to_numpy(dtype=float))
    color = color_axis or _default_color_axis(ok, axes, objectives)
    images = []
    for n, axis in enumerate(axes):
        name = f"axis-{n}-{_slug(axis)}.png"
        save_png(figure_png(_axis_figure(ok, axis, metrics, dimensions.get(axis, ""))), figures / name)
        images.append((f"metrics against {axis}", f"{FIGURES}/{name}"))
    for index, rows in ok.groupby("trace_index", sort=True):
        name = f"pareto-t{index}.png"
        save_png(figure_png(_pareto_figure(rows, color, dimensions.get(color or "", ""))), figures / name)
        images.append((f"Pareto front, {rows['trace'].iat[0]}", f"{FIGURES}/{name}"))
    from hwsim.units import BASE_UNIT

    units = {axis: BASE_UNIT.get(dim, "") for axis, dim in dimensions.items()}
    text = _markdown(table, ok, axes, images, objectives, manifest, units)
    # The front's point ids, for a finer sweep of just those: hwsim sweep ... --points @FILE
    front = sorted(set(ok.loc[ok["pareto"], "point_id"].astype(str)))
    atomic_write_text(folder / PARETO_POINTS, "".join(f"{point_id}\n" for point_id in front))
    return atomic_write_text(folder / MARKDOWN, text)


def _manifest(folder: Path) -> dict:
    """The sweep's ``sweep.json`` (empty when missing or unreadable: the table suffices)."""
    from hwsim.sweep.table import MANIFEST

    try:
        return json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return {}


def _objectives(folder: Path, table: pd.DataFrame, manifest: dict) -> dict[str, tuple[str, ...]]:
    """The sweep's Pareto objectives (from its ``sweep.json``), each a column of ``table``."""
    from hwsim.sweep.spec import DEFAULT_PARETO

    chosen = manifest.get("pareto") or DEFAULT_PARETO
    objectives = {sense: tuple(chosen.get(sense, ())) for sense in ("maximize", "minimize")}
    for sense, names in objectives.items():
        _require_columns(folder, table, names, f"pareto.{sense}")
    return objectives


def _metrics(folder: Path, table: pd.DataFrame, manifest: dict) -> tuple[str, ...]:
    """The columns drawn against every axis (the sweep file's ``metrics``), each in ``table``."""
    from hwsim.sweep.spec import DEFAULT_METRICS

    metrics = tuple(manifest.get("metrics") or DEFAULT_METRICS)
    _require_columns(folder, table, metrics, "metrics")
    return metrics


def _require_columns(folder: Path, table: pd.DataFrame, names: tuple[str, ...], key: str) -> None:
    """Fail, naming the sweep's ``sweep.json`` and ``key``, on a column the table lacks."""
    from hwsim.sweep.table import MANIFEST

    for name in names:
        if name not in table:
            raise HwsimError(f"{folder / MANIFEST}: {key}: the results table has no column {name!r}")


def _metric_unit(rows: pd.DataFrame, column: str) -> tuple[str, str]:
    """The y-axis label of a metric column, and the dimension its ticks are formatted in."""
    if column == "throughput":
        return str(rows["throughput_unit"].iat[0]), ""
    if column == "energy_per_work_unit_j":
        return f"J/{rows['work_unit'].iat[0]}", ""
    if column.startswith(("bytes_", "peak_bytes_")) or column == "on_chip_bytes":
        return "bytes", "bytes"
    return {"energy_j": "J", "avg_power_w": "W", "seconds": "s", "total_cycles": "cycles",
            "busiest_utilization": "fraction busy"}.get(column, column), ""


def _default_color_axis(ok: pd.DataFrame, axes: list[str], objectives: dict[str, tuple[str, ...]]) -> str | None:
    """The third objective when there is one, else an SRAM or capacity axis, else the first axis."""
    shown = ("throughput", "energy_per_work_unit_j")
    for name in (*objectives["maximize"], *objectives["minimize"]):
        if name not in shown and pd.api.types.is_numeric_dtype(ok[name]) and ok[name].nunique() > 1:
            return name
    numeric = [a for a in axes if a in ok and pd.api.types.is_numeric_dtype(ok[a])]
    for axis in numeric:
        if re.search(r"sram|capacity", axis):
            return axis
    return numeric[0] if numeric else None


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")[:60]


def _positions(values: pd.Series) -> tuple[np.ndarray, list[str] | None]:
    """x positions: numeric values as they are, text as 0, 1, 2 ... in sorted order."""
    if pd.api.types.is_numeric_dtype(values):
        return values.to_numpy(dtype=float), None
    labels = sorted(values.astype(str).unique())
    return values.astype(str).map({v: i for i, v in enumerate(labels)}).to_numpy(dtype=float), labels


def tick_label(value: float, dimension: str) -> str:
    """An axis value for a tick: a quantity in its unit (bytes in KiB/MiB/GiB/TiB when they
    are whole numbers of them), or the plain number."""
    if dimension == "bytes":
        # The largest binary prefix the value reaches, if it is a round number of them (a
        # capacity such as 1.5 GiB); measured byte counts read better in decimal units.
        prefix, scale = next(((p, s) for p, s in (("Ti", 2**40), ("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10))
                              if value >= s), ("", 1))
        if prefix and (value / scale) * 4 == round((value / scale) * 4):
            return f"{value / scale:g} {prefix}B"
    return format_quantity(value, dimension) if dimension else f"{value:g}"


def _value_ticks(ax, x: np.ndarray, dimension: str, axis: str = "x") -> None:
    """Ticks at the swept values themselves (when there are few), labelled in their unit."""
    from matplotlib.ticker import FuncFormatter, NullLocator

    target = ax.xaxis if axis == "x" else ax.yaxis
    values = np.unique(x[np.isfinite(x)])
    if 0 < len(values) <= MAX_VALUE_TICKS:
        target.set_ticks(values, [tick_label(v, dimension) for v in values])
        target.set_minor_locator(NullLocator())
    elif dimension:
        target.set_major_formatter(FuncFormatter(lambda v, _: tick_label(v, dimension)))


def _axis_figure(ok: pd.DataFrame, axis: str, metrics: tuple[str, ...], dimension: str = ""):
    """One row per trace (their units differ), one panel per metric, against ``axis``."""
    from matplotlib.figure import Figure

    groups = list(ok.groupby("trace_index", sort=True))
    fig = Figure(figsize=(5.0 * max(len(metrics), 2), 2.6 * max(len(groups), 1) + 0.4), dpi=DPI)
    grid = fig.subplots(max(len(groups), 1), len(metrics), squeeze=False)
    for t, (_, rows) in enumerate(groups):
        x, labels = _positions(rows[axis])
        colour = TRACE_COLORS[t % len(TRACE_COLORS)]
        for ax, column in zip(grid[t], metrics, strict=True):
            y = rows[column].to_numpy(dtype=float)
            ax.scatter(x, y, s=14, color=colour, alpha=0.6)
            medians = pd.Series(y).groupby(x).median()
            ax.plot(medians.index, medians.to_numpy(), color=colour, linewidth=1, label="median")
            unit, y_dimension = _metric_unit(rows, column)
            ax.set_ylabel(unit)
            if y_dimension:
                _value_ticks(ax, y, y_dimension, axis="y")
            ax.set_title(f"{column} - {rows['trace'].iat[0]}", fontsize=8)
            if labels is not None:
                ax.set_xticks(range(len(labels)), labels, rotation=30)
            else:
                if len(np.unique(x)) > 2 and x.min() > 0 and x.max() / x.min() >= 16:
                    ax.set_xscale("log")
                _value_ticks(ax, x, dimension)
                ax.tick_params(axis="x", labelrotation=30)
    for ax in grid[-1]:
        ax.set_xlabel(axis)
    fig.tight_layout()
    return fig


def _pareto_figure(rows: pd.DataFrame, color: str | None, dimension: str = ""):
    fig, ax = new_figure(7.0, 4.5)
    x = rows["energy_per_work_unit_j"].to_numpy(dtype=float)
    y = rows["throughput"].to_numpy(dtype=float)
    front = rows["pareto"].to_numpy(dtype=bool)
    # Points that land on one spot (axes that change neither objective) are drawn once, with
    # an area that grows with their number and the number written beside them.
    spots = pd.DataFrame({"x": x, "y": y}).groupby(["x", "y"], sort=False).size()
    count = spots.reindex(pd.MultiIndex.from_arrays([x, y])).to_numpy()
    size = 22 * np.sqrt(count)
    if color and color in rows and pd.api.types.is_numeric_dtype(rows[color]):
        shade = rows[color].to_numpy(dtype=float)
        points = ax.scatter(x, y, c=shade, cmap="viridis", s=size, alpha=0.75, edgecolors="white",
                            linewidths=0.5, zorder=2)
        bar = fig.colorbar(points, ax=ax)
        bar.set_label(color)
        _value_ticks(bar.ax, shade, dimension, axis="y")
    else:
        ax.scatter(x, y, color="#1f77b4", s=size, alpha=0.75, zorder=2)
    for (px, py), n in spots.items():
        if n > 1:
            ax.annotate(f"x{n}", (px, py), xytext=(5, 4), textcoords="offset points", fontsize=7, zorder=4)
    order = np.argsort(x[front], kind="stable")
    ax.plot(x[front][order], y[front][order], color="#d62728", linewidth=1, zorder=1)
    ax.scatter(x[front], y[front], s=80 * np.sqrt(count[front]), facecolors="none", edgecolors="#d62728",
               linewidths=1.5, zorder=3, label="Pareto front")
    ax.set_xlabel(f"energy per {rows['work_unit'].iat[0]} (J)")
    ax.set_ylabel(f"throughput ({rows['throughput_unit'].iat[0]})")
    ax.set_title(f"{rows['trace'].iat[0]}: {len(rows)} points on {len(spots)} spots"
                 + (" (xN: N points on one spot)" if len(spots) < len(rows) else ""), fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def _markdown(table: pd.DataFrame, ok: pd.DataFrame, axes: list[str], images: list[tuple[str, str]],
              objectives: dict[str, tuple[str, ...]], manifest: dict | None = None,
              units: dict[str, str] | None = None) -> str:
    """The sweep's Markdown page; its first line (the page title) names the sweep."""
    manifest = manifest or {}
    counts = table["status"].value_counts().to_dict()
    name = manifest.get("name") or "sweep"
    lines = [f"# hwsim sweep {name}: {table['point_id'].nunique()} points x {table['trace'].nunique()} traces",
             ""]
    if manifest.get("description"):
        lines += [str(manifest["description"]), ""]
    if manifest.get("sweep_file"):
        lines += [f"Sweep file: {manifest['sweep_file']}", ""]
    lines += [", ".join(f"{counts.get(s, 0)} {s}" for s in ("ok", "failed", "missing")) + " runs; "
              f"fidelity {', '.join(sorted(table['fidelity'].dropna().unique()))}.", ""]
    goals = "; ".join(f"{sense} {', '.join(names)}" for sense, names in objectives.items() if names)
    shown = ["point_id", *axes, "throughput", "throughput_unit", "energy_per_work_unit_j", "total_cycles"]
    shown += [name for names in objectives.values() for name in names if name not in shown]
    for _, rows in ok.groupby("trace_index", sort=True):
        lines += [f"## {rows['trace'].iat[0]}: Pareto front ({goals})", ""]
        front = rows[rows["pareto"]].sort_values("energy_per_work_unit_j", kind="stable")
        lines += [markdown_table(front[shown].reset_index(drop=True), units=units), ""]
    lines += ["## Figures", ""] + [f"![{alt}]({src})" for alt, src in images] + [""]
    pareto = ok["pareto"].reindex(table.index).fillna(False).astype(bool)
    full = table.assign(pareto=pareto)[["point_id", "trace", *axes, "status", "throughput",
                                        "energy_per_work_unit_j", "total_cycles", "pareto", "error"]]
    lines += ["## All runs", ""]
    if len(full) > MAX_MARKDOWN_ROWS:
        lines += [f"First {MAX_MARKDOWN_ROWS} of {len(full)} runs; results.parquet has them all.", ""]
    lines += [markdown_table(full.head(MAX_MARKDOWN_ROWS), units=units), ""]
    return "\n".join(lines)
