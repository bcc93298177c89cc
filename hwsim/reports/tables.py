"""Writing report tables and figures: Parquet/CSV/Markdown/HTML tables and PNG figures.

Parquet and CSV keep base units; Markdown and HTML show each number in a unit for people
(:mod:`hwsim.reports.format`), and HTML tables sort by a click on their header.

Everything is written atomically and deterministically: the same table gives the same
bytes (no pandas metadata in Parquet, fixed float formatting in CSV and Markdown), and the
same figure gives the same PNG (no software/date metadata, fixed size and dpi).
"""

from __future__ import annotations

import base64
import html
import io
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd

from hwsim.atomic import atomic_path, atomic_write_bytes, atomic_write_text
from hwsim.reports.format import column_title, column_unit, human

#: Figure resolution for every report PNG.
DPI = 110


def write_table(frame: pd.DataFrame, folder: str | os.PathLike, stem: str,
                formats: tuple[str, ...] = ("parquet", "csv")) -> dict[str, Path]:
    """Write ``frame`` as ``<stem>.parquet`` and/or ``<stem>.csv`` in ``folder``; return the paths."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = Path(folder)
    out: dict[str, Path] = {}
    for fmt in formats:
        path = folder / f"{stem}.{fmt}"
        if fmt == "parquet":
            table = pa.Table.from_pandas(frame, preserve_index=False).replace_schema_metadata(None)
            with atomic_path(path) as tmp:
                pq.write_table(table, tmp)
        elif fmt == "csv":
            atomic_write_text(path, frame.to_csv(index=False, lineterminator="\n"))
        else:
            raise ValueError(f"unknown table format {fmt!r} (expected parquet or csv)")
        out[fmt] = path
    return out


def format_value(value: object) -> str:
    """A short, stable text form of a table cell (4 significant digits for floats)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        if value.is_integer() and abs(value) < 1e6:
            return f"{int(value):,}"
        return f"{value:.4g}"
    if isinstance(value, int):
        return f"{value:,}"
    if hasattr(value, "item"):  # numpy scalars
        return format_value(value.item())
    return str(value)


def cell_text(value: object, unit: str = "") -> str:
    """A table cell for people: numbers with a unit in :func:`hwsim.reports.format.human`
    form (``141 GB``), everything else as :func:`format_value` writes it."""
    if unit and isinstance(value, int | float) and not isinstance(value, bool) or (
            unit and hasattr(value, "item") and not isinstance(value.item(), bool | str)):
        return human(float(value), unit)
    return format_value(value)


def _units(frame: pd.DataFrame, units: dict[str, str] | None, row_unit: str | None) -> list:
    """Per column: its unit, or None when the unit comes from the row (``row_unit`` column)."""
    units = units or {}
    out = []
    for c in frame.columns:
        if str(c) in units:
            out.append(units[str(c)])
        elif row_unit is not None and str(c) not in (row_unit, "metric") and " / " not in str(c):
            out.append(None)
        elif row_unit is not None and " / " in str(c):
            out.append("ratio")
        else:
            out.append(column_unit(str(c)) if pd.api.types.is_numeric_dtype(frame[c]) else "")
    return out


def _row_cells(frame: pd.DataFrame, units: dict[str, str] | None, row_unit: str | None):
    """(text, sort key or None, numeric) per cell, row by row."""
    column_units = _units(frame, units, row_unit)
    numeric = [pd.api.types.is_numeric_dtype(frame[c]) for c in frame.columns]
    unit_index = list(map(str, frame.columns)).index(row_unit) if row_unit in map(str, frame.columns) else None
    for row in frame.itertuples(index=False, name=None):
        cells = []
        for value, unit, num in zip(row, column_units, numeric, strict=True):
            if unit is None:
                unit = _ROW_UNITS.get(str(row[unit_index]), "") if unit_index is not None else ""
            sortable = num and isinstance(value, int | float | np.number) and not isinstance(value, bool)
            key = float(value) if sortable and not math.isnan(float(value)) else None
            cells.append((cell_text(value, unit), key, num))
        yield cells


#: The ``unit`` column of a comparison table -> the unit its row's cells are shown in.
_ROW_UNITS = {"cycles": "cycles", "Hz": "Hz", "s": "s", "J": "J", "B": "B", "fraction": "fraction"}


def markdown_table(frame: pd.DataFrame, units: dict[str, str] | None = None, row_unit: str | None = None) -> str:
    """A GitHub-flavoured Markdown table of ``frame`` (numbers right-aligned, in units for
    people; ``units`` overrides a column's unit, ``row_unit`` names a column giving each
    row's unit)."""
    if frame.columns.empty:
        return ""
    columns = [str(c) for c in frame.columns]
    numeric = [pd.api.types.is_numeric_dtype(frame[c]) for c in frame.columns]
    lines = ["| " + " | ".join(_md_escape(c) for c in columns) + " |",
             "|" + "|".join("---:" if num else "---" for num in numeric) + "|"]
    for cells in _row_cells(frame, units, row_unit):
        lines.append("| " + " | ".join(_md_escape(text) for text, _, _ in cells) + " |")
    return "\n".join(lines) + "\n"


def html_table(frame: pd.DataFrame, css_class: str = "table", *, units: dict[str, str] | None = None,
               row_unit: str | None = None, links: dict[str, list[str]] | None = None,
               row_classes: list[str] | None = None, caption: str = "") -> str:
    """A sortable HTML ``<table>`` of ``frame`` (click a header) in a horizontally scrolling
    box, so a wide table never widens the page. Numbers are shown in units for people and
    sorted by their value (``data-sort``). ``links`` maps a column to one href per row (the
    cell becomes a link), ``row_classes`` gives each row a CSS class (``invalid``)."""
    head = "".join(f'<th title="{html.escape(str(c))}">{html.escape(column_title(str(c)))}</th>'
                   for c in frame.columns)
    hrefs = [(list(map(str, frame.columns)).index(c), targets) for c, targets in (links or {}).items()
             if c in map(str, frame.columns)]
    rows = []
    for r, cells in enumerate(_row_cells(frame, units, row_unit)):
        parts = []
        for c, (text, key, num) in enumerate(cells):
            body = html.escape(text)
            for column, targets in hrefs:
                if column == c and targets[r]:
                    body = f'<a href="{html.escape(targets[r])}">{body}</a>'
            sort = f' data-sort="{key!r}"' if key is not None else ""
            parts.append(f'<td class="num"{sort}>{body}</td>' if num else f"<td>{body}</td>")
        css = f' class="{html.escape(row_classes[r])}"' if row_classes and row_classes[r] else ""
        rows.append(f"<tr{css}>{''.join(parts)}</tr>")
    title = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return (f'<div class="scroll"><table class="{css_class} sortable">{title}<thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table></div>")


def new_figure(width: float = 7.0, height: float = 4.5, ncols: int = 1):
    """A matplotlib figure and axes drawn by the Agg renderer (never opens a window).

    The figure is built without pyplot, so the caller's global backend is left alone.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI)
    axes = fig.subplots(1, ncols) if ncols > 1 else fig.subplots()
    return fig, axes


def figure_png(fig) -> bytes:
    """The PNG bytes of ``fig`` without software or date metadata (stable across runs)."""
    import matplotlib

    buffer = io.BytesIO()
    with matplotlib.rc_context({"svg.hashsalt": "hwsim"}):
        fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def save_png(png: bytes, path: str | os.PathLike) -> Path:
    """Write PNG bytes to ``path`` atomically."""
    return atomic_write_bytes(path, png)


def png_data_uri(png: bytes) -> str:
    """A ``data:image/png;base64,...`` URI for embedding ``png`` in HTML."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
