"""The demo report: figures and key ratios from the tidy table of :mod:`hwsim.demo.main_job`.

Reads only result files (``results.parquet``, each run's ``kv_timeline.parquet`` and run
folder), never simulator objects.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hwsim.atomic import atomic_write_text
from hwsim.demo.experiments import WORLDKV_FRAMES
from hwsim.reports.html import figure_html, html_page
from hwsim.reports.tables import figure_png, html_table, markdown_table, new_figure, save_png

#: Published figures the demo puts its results next to (WORKLOADS.md §1.7, §2.6).
PAPER = {
    "worldkv_over_full": 4.78 / 2.36,     # [S] LingBot-World-Fast on H200: WorldKV / full KV FPS
    "sliding_over_worldkv": 5.05 / 4.78,  # [S] sliding window / WorldKV FPS
    "gdn2_16k_over_2k": 36.1 / 38.0,      # [P Fig. 2] GDN-2 hybrid training throughput
}


def key_ratios(table: pd.DataFrame) -> dict[str, float]:
    """The ratios the demo answers with (each a quotient of two rows of ``table``)."""
    def value(experiment: str, label: str, machine: str, column: str = "throughput") -> float:
        row = table[(table["experiment"] == experiment) & (table["label"] == label) & (table["machine"] == machine)]
        return float(row[column].iloc[0])

    w = "worldkv"
    gdn = table[table["experiment"] == "gdn2"]
    def drop(model: str) -> float:
        rows = gdn[gdn["label"].str.startswith(model)].sort_values("x")
        return float(rows["throughput"].iloc[-1] / rows["throughput"].iloc[0])

    return {
        "worldkv_over_full_h200": value(w, "WorldKV rho=0.5", "h200") / value(w, "full KV", "h200"),
        "worldkv_over_full_4xh200": (value("worldkv-4xh200", "WorldKV rho=0.5", "h200x4")
                                     / value("worldkv-4xh200", "full KV", "h200x4")),
        "sliding_over_worldkv_h200": value(w, "sliding 18", "h200") / value(w, "WorldKV rho=0.5", "h200"),
        "worldkv_rho025_over_rho05_h200": value(w, "WorldKV rho=0.25", "h200") / value(w, "WorldKV rho=0.5", "h200"),
        "worldkv_gh200_over_h200": value(w, "WorldKV rho=0.5", "gh200") / value(w, "WorldKV rho=0.5", "h200"),
        "worldkv_asic_over_h200": value(w, "WorldKV rho=0.5", "worldkv-asic") / value(w, "WorldKV rho=0.5", "h200"),
        "worldkv_energy_per_frame_over_full_h200": (value(w, "WorldKV rho=0.5", "h200", "energy_per_unit_j")
                                                    / value(w, "full KV", "h200", "energy_per_unit_j")),
        "worldkv_peak_kv_over_full": (value(w, "WorldKV rho=0.5", "h200", "peak_kv_bytes")
                                      / value(w, "full KV", "h200", "peak_kv_bytes")),
        "gdn2_16k_over_2k": drop("GDN-2"),
        "transformer_16k_over_2k": drop("Transformer"),
        "hrm_h100_over_edge_tokens_per_s": (value("hrm", "HRM-Text-1B decode", "h100-sxm")
                                            / value("hrm", "HRM-Text-1B decode", "edge-npu")),
    }


def _bars(ax, frame: pd.DataFrame, column: str, scale: float, ylabel: str) -> None:
    """Grouped bars, one group per label and one bar per machine; a run whose working set
    overflowed a tier is drawn hatched and pale, marked "overflow"."""
    pivot = frame.pivot(index="label", columns="machine", values=column).loc[frame["label"].unique()]
    invalid = frame.pivot(index="label", columns="machine", values="overflow").loc[pivot.index].fillna("") != ""
    width = 0.8 / len(pivot.columns)
    x = np.arange(len(pivot.index))
    for i, machine in enumerate(pivot.columns):
        bars = ax.bar(x + i * width, pivot[machine] * scale, width, label=machine, color=f"C{i}")
        for bar, bad in zip(bars, invalid[machine].tolist(), strict=True):
            if bad:
                bar.set_alpha(0.35)
                bar.set_hatch("//")
                ax.annotate("overflow", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                            ha="center", va="bottom", fontsize=6, rotation=90, color="#8a1c1c")
    ax.set_xticks(x + width * (len(pivot.columns) - 1) / 2, pivot.index, rotation=15)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)


def worldkv_png(table: pd.DataFrame) -> bytes:
    rows = table[table["experiment"] == "worldkv"]
    fig, (a, b, c) = new_figure(11, 3.6, ncols=3)
    _bars(a, rows, "throughput", 1.0, "video frames / s")
    a.set_title("throughput")
    _bars(b, rows, "energy_per_unit_j", 1.0, "J / video frame")
    b.set_title("energy per frame")
    _bars(c, rows, "host_link_bytes", 1e-9, "GB over the link to the bank's tier")
    c.set_title("bank traffic over the CPU link")
    fig.subplots_adjust(left=0.06, right=0.99, bottom=0.24, wspace=0.32)
    return figure_png(fig)


def kv_memory_png(table: pd.DataFrame, out: Path) -> bytes:
    rows = table[(table["experiment"] == "worldkv") & (table["machine"] == "h200")]
    fig, ax = new_figure(7, 4.2)
    for i, (_, row) in enumerate(rows.iterrows()):
        timeline = pd.read_parquet(out / row["folder"] / "kv_timeline.parquet")
        color = f"C{i}"
        ax.step(timeline["seconds"], timeline["working"] / 1e9, where="post", color=color,
                label=f"{row['label']}: attended KV (HBM)")
        if timeline["bank"].max() > 0:
            ax.step(timeline["seconds"], timeline["bank"] / 1e9, where="post", color=color, linestyle=":",
                    label=f"{row['label']}: chunk bank (CPU DRAM)")
    ax.set_xlabel("simulated time on h200 (s)")
    ax.set_ylabel("KV bytes allocated (GB)")
    ax.set_title(f"KV memory over a {WORLDKV_FRAMES}-frame rollout")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return figure_png(fig)


def gdn2_png(table: pd.DataFrame) -> bytes:
    rows = table[table["experiment"] == "gdn2"]
    fig, ax = new_figure(7, 4.2)
    for model in ("GDN-2 hybrid", "Transformer"):
        sel = rows[rows["label"].str.startswith(model)].sort_values("x")
        ax.plot(sel["x"] / 1024, sel["throughput"] / 1e3, marker="o", label=f"{model} (simulated, h100-sxm)")
    ax.plot([2, 16], [38.0, 36.1], "k--", marker="s", label="GDN-2 hybrid, paper (1xH100)")
    ax.set_xscale("log", base=2)
    ax.set_xticks([2, 4, 8, 16], ["2K", "4K", "8K", "16K"])
    ax.set_xlabel("training sequence length (16K tokens per step)")
    ax.set_ylabel("thousand tokens / s")
    ax.set_title("linear vs softmax attention: training throughput")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return figure_png(fig)


def hrm_png(table: pd.DataFrame) -> bytes:
    rows = table[table["experiment"] == "hrm"]
    fig, (a, b) = new_figure(9, 3.6, ncols=2)
    a.bar(rows["machine"], rows["throughput"])
    a.set_ylabel("tokens / s")
    a.set_yscale("log")
    a.set_title("HRM-Text-1B decode")
    b.bar(rows["machine"], rows["energy_per_unit_j"])
    b.set_ylabel("J / token")
    b.set_title("energy per token")
    fig.subplots_adjust(wspace=0.35)
    return figure_png(fig)


def ratios_table(ratios: dict[str, float]) -> pd.DataFrame:
    notes = {
        "worldkv_over_full_h200": f"paper {PAPER['worldkv_over_full']:.2f}x (360 frames on 4xH200)",
        "worldkv_over_full_4xh200": f"paper {PAPER['worldkv_over_full']:.2f}x (the same setup)",
        "sliding_over_worldkv_h200": f"paper {PAPER['sliding_over_worldkv']:.3f}x",
        "gdn2_16k_over_2k": f"paper {PAPER['gdn2_16k_over_2k']:.3f}",
        "transformer_16k_over_2k": "paper: 'degrades sharply'",
    }
    return pd.DataFrame({"ratio": list(ratios), "simulated": [round(v, 4) for v in ratios.values()],
                         "reference": [notes.get(k, "") for k in ratios]})


def status(row: pd.Series) -> str:
    """"ok", or why a run's numbers are not a real machine's (its working set overflowed)."""
    return f"INVALID: overflow {row['overflow']}" if row["overflow"] else "ok"


def results_view(table: pd.DataFrame) -> pd.DataFrame:
    """The runs for people: status first, numbers in base units (the page shows them in
    units for people), the run folder last."""
    view = table[["experiment", "label", "machine", "throughput", "throughput_unit", "energy_per_unit_j",
                  "peak_kv_bytes", "peak_bank_bytes", "host_link_bytes", "busiest", "spills", "folder"]].copy()
    view.insert(0, "status", table.apply(status, axis=1))
    return view


def run_links(out: Path, table: pd.DataFrame) -> list[str]:
    """Per run, the href of its own report when it has one (``hwsim demo --reports``, or the
    showcase runs), else of its folder."""
    return [f"{folder}/index.html" if (out / folder / "index.html").is_file() else f"{folder}/"
            for folder in table["folder"]]


def write_page(out: Path, table: pd.DataFrame, extra_sections: dict[str, str] | None = None) -> Path:
    """Write ``index.html``, ``summary.md`` and the figures' PNGs into ``out``."""
    ratios = key_ratios(table)
    figures = {"worldkv": worldkv_png(table), "kv_memory": kv_memory_png(table, out),
               "gdn2_scaling": gdn2_png(table), "hrm_decode": hrm_png(table)}
    for name, png in figures.items():
        save_png(png, out / f"{name}.png")
    ratio_frame, view = ratios_table(ratios), results_view(table)
    body = [
        "<p>What do WorldKV's retrieval and compression cost and save on different tiered-memory "
        "designs, and how do GDN-2 and HRM-Text behave on the same machines? Every number below "
        "is simulated by hwsim from the workload generators' traces; the papers' figures are "
        f"shown beside them. WorldKV rollouts are {WORLDKV_FRAMES} video frames (20 chunks), "
        "shorter than the paper's, so that full KV fits one GPU.</p>",
        "<h2>Key ratios</h2>", html_table(ratio_frame, caption="Simulated ratios beside the papers' figures"),
        "<h2>WorldKV on three memory designs</h2>",
        figure_html(figures["worldkv"], "WorldKV throughput, energy, traffic",
                    "WorldKV policies on h200 (bank in CPU DRAM over PCIe), gh200 (over NVLink-C2C) "
                    "and worldkv-asic (over CXL): throughput, energy per frame and bank traffic; "
                    "hatched bars overflowed a tier"),
        figure_html(figures["kv_memory"], "KV memory over time",
                    "KV bytes allocated over the rollout on h200: the attended window in HBM and "
                    "WorldKV's chunk bank in CPU DRAM"),
        "<h2>Gated DeltaNet-2 vs softmax attention</h2>",
        figure_html(figures["gdn2_scaling"], "GDN-2 scaling",
                    "Training throughput against sequence length at 16K tokens per step on "
                    "h100-sxm, with the GDN-2 paper's measurement"),
        "<h2>HRM-Text decode</h2>",
        figure_html(figures["hrm_decode"], "HRM decode",
                    "HRM-Text-1B decode on h100-sxm and edge-npu: tokens per second and energy per token"),
    ]
    for title, section in (extra_sections or {}).items():
        body += [f"<h2>{html.escape(title)}</h2>", section]
    invalid = [s != "ok" for s in view["status"]]
    body += ["<h2>All runs</h2>"]
    if any(invalid):
        body.append('<p class="invalid">Runs marked INVALID did not fit: their working set '
                    "overflowed the named tier and they were simulated as if it fit, so their "
                    "throughput and energy are not that machine's.</p>")
    body += [html_table(view, links={"folder": run_links(out, table)},
                        row_classes=["invalid" if bad else "" for bad in invalid],
                        units={"throughput": ""},
                        caption="Every run (click a header to sort; a folder links to the run's report)"),
             "<p>Each run folder holds records.parquet, summary.json, the resolved machine and "
             "the trace metadata; <code>hwsim report &lt;folder&gt;</code> writes its report "
             "(roofline, energy breakdown, timeline), and <code>hwsim demo --reports</code> "
             "writes every run's.</p>"]
    index = atomic_write_text(out / "index.html", html_page("hwsim demo: what the 2026 workloads need from a machine",
                                                            "\n".join(body)))
    summary = ["# hwsim demo", "", "## Key ratios", "", markdown_table(ratio_frame), "",
               "## All runs", "", markdown_table(view), ""]
    atomic_write_text(out / "summary.md", "\n".join(summary))
    return index


def summary_lines(ratios: dict[str, Any]) -> list[str]:
    """The key ratios for the terminal."""
    return [
        f"  WorldKV vs full KV on 4x H200     {ratios['worldkv_over_full_4xh200']:.2f}x FPS "
        f"(paper {PAPER['worldkv_over_full']:.2f}x; its setup: 360 frames, Ulysses over 4 GPUs)",
        f"  WorldKV vs full KV on h200        {ratios['worldkv_over_full_h200']:.2f}x FPS "
        f"({WORLDKV_FRAMES} frames, so that full KV fits one GPU)",
        f"  sliding window vs WorldKV on h200 {ratios['sliding_over_worldkv_h200']:.3f}x (paper {PAPER['sliding_over_worldkv']:.3f}x)",
        f"  WorldKV energy/frame vs full KV   {ratios['worldkv_energy_per_frame_over_full_h200']:.2f}x; "
        f"peak attended KV {ratios['worldkv_peak_kv_over_full']:.2f}x (the bank lives in CPU DRAM)",
        f"  WorldKV on gh200 vs h200          {ratios['worldkv_gh200_over_h200']:.3f}x FPS (bank over C2C, not PCIe)",
        f"  WorldKV on worldkv-asic vs h200   {ratios['worldkv_asic_over_h200']:.2f}x FPS",
        f"  GDN-2 16K/2K throughput           {ratios['gdn2_16k_over_2k']:.3f} (paper {PAPER['gdn2_16k_over_2k']:.3f}); "
        f"Transformer {ratios['transformer_16k_over_2k']:.3f}",
        f"  HRM decode h100 vs edge-npu       {ratios['hrm_h100_over_edge_tokens_per_s']:.1f}x tokens/s",
    ]
