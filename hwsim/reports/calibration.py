"""The calibration table for reports: how far each machine's numbers can be trusted."""

from __future__ import annotations

import html

import pandas as pd

from hwsim.calibration.table import summarize
from hwsim.reports.tables import html_table


def calibration_section(table: pd.DataFrame, machines: list[str] | None = None) -> str:
    """HTML: per machine and category the rows, median |error| and bias, then every row
    (published, predicted, error) folded under a details element.

    ``table`` is :func:`hwsim.calibration.table.replay`'s result.
    """
    if machines:
        table = table[table["machine"].isin(machines)]
    summary = summarize(table, ("machine", "category"))
    summary = summary.assign(median_abs_error=(100 * summary["median_abs_error"]).round(1),
                             max_abs_error=(100 * summary["max_abs_error"]).round(0),
                             speed_geomean=summary["speed_geomean"].round(3))
    summary.columns = ["machine", "category", "rows", "median |error| %", "speed (bias)", "worst |error| %"]
    rows = table[["id", "machine", "category", "use", "published", "predicted", "unit", "error"]].copy()
    rows["error"] = (100 * rows["error"]).round(1)
    rows["predicted"] = rows["predicted"].map(lambda v: float(f"{v:.4g}"))
    rows.columns = ["measurement", "machine", "category", "use", "published", "predicted", "unit", "error %"]
    units = {c: "" for c in ("rows", "median |error| %", "speed (bias)", "worst |error| %", "published",
                             "predicted", "error %")}
    return "\n".join([
        "<p>Published measurements of real H100, H200 and GH200 runs (GEMM libraries, "
        "FlashAttention, BabelStream, nvbandwidth, kernel launches) replayed on the machine that "
        "models each part: <code>hwsim calibrate</code> prints the same table, "
        "<code>calibration/measurements.csv</code> holds every row with its source and conditions. "
        "Error is predicted speed over measured speed minus one: positive means hwsim is faster "
        "than the hardware. <em>fit</em> rows set the machines' fitted constants, <em>check</em> "
        "rows were held out of every fit.</p>",
        html_table(summary, units=units, caption="Error against published measurements, per machine and category"),
        f"<details><summary>All {len(rows)} measurements</summary>",
        html_table(rows, units=units, caption="Published and predicted value of every replayed measurement"),
        "</details>",
    ]) if len(table) else f"<p>{html.escape('No calibration rows for these machines.')}</p>"
