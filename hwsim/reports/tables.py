"""Writing report tables and figures: Parquet/CSV/Markdown/HTML tables and PNG figures.

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

import pandas as pd

from hwsim.atomic import atomic_path, atomic_write_bytes, atomic_write_text

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


def markdown_table(frame: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table of ``frame`` (numbers right-aligned)."""
    if frame.columns.empty:
        return ""
    columns = [str(c) for c in frame.columns]
    numeric = [pd.api.types.is_numeric_dtype(frame[c]) for c in frame.columns]
    lines = ["| " + " | ".join(_md_escape(c) for c in columns) + " |",
             "|" + "|".join("---:" if num else "---" for num in numeric) + "|"]
    for row in frame.itertuples(index=False, name=None):
        lines.append("| " + " | ".join(_md_escape(format_value(v)) for v in row) + " |")
    return "\n".join(lines) + "\n"


def html_table(frame: pd.DataFrame, css_class: str = "table") -> str:
    """An HTML ``<table>`` of ``frame`` with escaped text and formatted numbers."""
    numeric = [pd.api.types.is_numeric_dtype(frame[c]) for c in frame.columns]
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    rows = []
    for row in frame.itertuples(index=False, name=None):
        cells = "".join(
            f'<td class="num">{html.escape(format_value(v))}</td>' if num
            else f"<td>{html.escape(format_value(v))}</td>"
            for v, num in zip(row, numeric, strict=True))
        rows.append(f"<tr>{cells}</tr>")
    return (f'<table class="{css_class}"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table>")


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
