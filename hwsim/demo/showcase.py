"""Extra demo sections built from the report modules: a roofline and a machine comparison."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from hwsim.reports.compare import compare_runs
from hwsim.reports.html import figure_html
from hwsim.reports.roofline import roofline_png
from hwsim.reports.tables import html_table, save_png
from hwsim.results import read_records

SHOWCASE_LABEL = "WorldKV rho=0.5"


def showcase_sections(out: Path, table: pd.DataFrame) -> dict[str, str]:
    """Roofline of WorldKV on the H200 and the three machines side by side."""
    rows = table[(table["experiment"] == "worldkv") & (table["label"] == SHOWCASE_LABEL)]
    folders = {row["machine"]: out / row["folder"] for _, row in rows.iterrows()}
    import yaml

    h200 = folders["h200"]
    machine = yaml.safe_load((h200 / "machine.resolved.yaml").read_text())
    roofline = roofline_png(read_records(h200), machine, title=f"{SHOWCASE_LABEL} on h200")
    save_png(roofline, out / "roofline.png")
    comparison = compare_runs(folders, out / "comparison")
    comparison_table = pd.read_parquet(comparison / "comparison.parquet")
    png = (comparison / "comparison.png").read_bytes()
    save_png(png, out / "comparison.png")
    return {
        f"Roofline: {SHOWCASE_LABEL} on h200": figure_html(
            roofline, "roofline", f"Roofline of {SHOWCASE_LABEL} on h200: op kinds under the compute "
                                  f"ceilings and one bandwidth ceiling per tier and link"),
        f"Comparison: {SHOWCASE_LABEL} on h200, gh200 and worldkv-asic":
            figure_html(png, "comparison", f"{SHOWCASE_LABEL} on three machines: throughput, energy "
                                           f"per frame and bytes per tier and link")
            + html_table(comparison_table, row_unit="unit", caption="The three runs side by side")
            + "<p><code>hwsim report &lt;demo folder&gt;/comparison</code> writes the full comparison "
              "page, linked to each run's own report.</p>",
    }
