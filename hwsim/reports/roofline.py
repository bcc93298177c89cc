"""Roofline: compute and bandwidth ceilings of a machine, with its ops placed under them.

Everything is computed from a run's records DataFrame and the resolved machine dict
(base units: FLOP/s, bytes/s, Hz), never from simulator objects; every ceiling is read
from the machine's component facts (:mod:`hwsim.components.facts`), where each component
kind states its own peaks.

Ceilings
    * compute, one per unit and dtype: the unit's datasheet peak for that dtype (dtype
      ``any`` for units whose rate does not depend on it), before any ``efficiency`` factor.
    * bandwidth, one per memory tier and direction (read, write) and per link direction:
      the datasheet bandwidth (a banked SRAM's sequential bandwidth), before efficiency.

Where an op sits
    * achieved FLOP/s = ``flops / ((end_cycle - start_cycle) / clock_hz)``;
    * arithmetic intensity = ``flops / bytes`` moved at the op's **bottleneck resource**: of
      the tiers and links the op moved bytes through (``bytes_<name>`` record columns), the
      one its bytes keep busiest longest, ``bytes / bandwidth``. That is the resource whose
      ceiling is lowest for this op, so the point is read against the right diagonal: an op
      on that diagonal is bandwidth-bound there; far under both roofs it lost time to
      queueing, latency or quantisation. Ops that move no bytes have no intensity (NaN) and
      are listed but not plotted.
    * an op kind's point aggregates its ops per unit: total FLOPs over total busy time, and
      total FLOPs over the total bytes at the kind's bottleneck resource.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hwsim.components.facts import read_facts
from hwsim.reports.tables import figure_png, new_figure, save_png, write_table

#: Per-op points drawn per (unit, kind) at most; the tables always hold every op.
MAX_POINTS_PER_KIND = 2000
#: Ceiling lines in dark tones, op points in bright ones, so the two never look alike.
LINE_COLORS = ("#1b1b1b", "#6a3d9a", "#1f4e79", "#7f2704", "#00441b", "#525252", "#67000d", "#08306b")
POINT_COLORS = ("#e41a1c", "#377eb8", "#4daf4a", "#ff7f00", "#984ea3", "#a65628", "#f781bf",
                "#17becf", "#bcbd22", "#999999")


def _shown_facts(machine: dict[str, Any]):
    """Facts of the components to draw ceilings for: on a machine of several (identical)
    devices, device 0's (``d0.<name>``) and the fabrics', not every device's copy of the same
    ceiling. A fabric's ceiling is the bandwidth of one port per direction."""
    for name, record in read_facts(machine).items():
        head = name.split(".", 1)[0]
        if "." in name and head[:1] == "d" and head[1:].isdigit() and head != "d0":
            continue
        yield name, record


def compute_ceilings(machine: dict[str, Any]) -> pd.DataFrame:
    """Peak FLOP/s per compute unit and dtype: columns component, kind, dtype, peak_flops_per_s."""
    rows = [(name, record.kind, peak.dtype, peak.flops_per_s)
            for name, record in _shown_facts(machine) for peak in record.peaks]
    return pd.DataFrame(rows, columns=["component", "kind", "dtype", "peak_flops_per_s"])


def bandwidth_ceilings(machine: dict[str, Any]) -> pd.DataFrame:
    """Datasheet bandwidth per memory tier and link, per direction: columns resource, kind,
    direction (``read``/``write`` for a tier, ``<a>-><b>`` for a link), bandwidth_bytes_per_s."""
    rows = [(name, record.kind, b.direction, b.peak_bytes_per_s)
            for name, record in _shown_facts(machine) if record.role in ("tier", "link")
            for b in record.bandwidth]
    return pd.DataFrame(rows, columns=["resource", "kind", "direction", "bandwidth_bytes_per_s"])


def resource_bandwidth(machine: dict[str, Any]) -> pd.Series:
    """The highest datasheet bandwidth of each tier and link over its directions, bytes/s,
    indexed by resource: the ceiling an op's bytes at that resource are read against (the
    records count a resource's bytes, not its directions)."""
    table = bandwidth_ceilings(machine)
    return table.groupby("resource", sort=False)["bandwidth_bytes_per_s"].max()


def op_points(records: pd.DataFrame, machine: dict[str, Any]) -> pd.DataFrame:
    """One row per op that has FLOPs and a duration: where it sits on the roofline.

    Columns: op_id, kind, component, dtype, flops, cycles, seconds, achieved_flops_per_s,
    bottleneck, bottleneck_bytes, arithmetic_intensity, peak_flops_per_s,
    attainable_flops_per_s (the lower of the unit's peak and bandwidth x intensity).
    """
    clock = float(machine["clock_hz"])
    ops = records[(records["flops"] > 0) & (records["end_cycle"] > records["start_cycle"])]
    cycles = (ops["end_cycle"] - ops["start_cycle"]).to_numpy(dtype=np.int64)
    seconds = cycles / clock
    flops = ops["flops"].to_numpy(dtype=np.float64)
    names, bws, moved = _resource_bytes(ops, machine)
    bottleneck, nbytes, bandwidth = _bottleneck(names, bws, moved)
    with np.errstate(divide="ignore", invalid="ignore"):
        intensity = np.where(nbytes > 0, flops / nbytes, np.nan)
    peaks = _unit_peaks(ops, machine)
    attainable = np.where(np.isnan(intensity), peaks, np.fmin(peaks, bandwidth * intensity))
    return pd.DataFrame({
        "op_id": ops["op_id"].to_numpy(),
        "kind": ops["kind"].astype(str).to_numpy(),
        "component": ops["component"].astype(str).to_numpy(),
        "dtype": ops["dtype"].astype(str).to_numpy(),
        "flops": ops["flops"].to_numpy(),
        "cycles": cycles,
        "seconds": seconds,
        "achieved_flops_per_s": flops / seconds,
        "bottleneck": bottleneck,
        "bottleneck_bytes": nbytes.astype(np.int64),
        "arithmetic_intensity": intensity,
        "peak_flops_per_s": peaks,
        "attainable_flops_per_s": attainable,
    })


def kind_points(records: pd.DataFrame, machine: dict[str, Any]) -> pd.DataFrame:
    """One row per (component, kind): the op kind's aggregate roofline point.

    Columns: component, kind, ops, flops, seconds (summed busy time), achieved_flops_per_s,
    bottleneck, bottleneck_bytes, arithmetic_intensity.
    """
    clock = float(machine["clock_hz"])
    ops = records[(records["flops"] > 0) & (records["end_cycle"] > records["start_cycle"])]
    columns = ["component", "kind", "ops", "flops", "seconds", "achieved_flops_per_s",
               "bottleneck", "bottleneck_bytes", "arithmetic_intensity"]
    if ops.empty:
        return pd.DataFrame(columns=columns)
    names, bws, _ = _resource_bytes(ops, machine)
    frame = pd.DataFrame({
        "component": ops["component"].astype(str).to_numpy(),
        "kind": ops["kind"].astype(str).to_numpy(),
        "flops": ops["flops"].to_numpy(dtype=np.int64),
        "cycles": (ops["end_cycle"] - ops["start_cycle"]).to_numpy(dtype=np.int64),
        **{f"bytes_{n}": ops[f"bytes_{n}"].to_numpy(dtype=np.int64) for n in names},
    })
    groups = frame.groupby(["component", "kind"], sort=True)
    totals = groups.sum()
    counts = groups.size()
    moved = totals[[f"bytes_{n}" for n in names]].to_numpy(dtype=np.float64)
    bottleneck, nbytes, _ = _bottleneck(names, bws, moved)
    flops = totals["flops"].to_numpy(dtype=np.float64)
    seconds = totals["cycles"].to_numpy(dtype=np.float64) / clock
    with np.errstate(divide="ignore", invalid="ignore"):
        intensity = np.where(nbytes > 0, flops / nbytes, np.nan)
    return pd.DataFrame({
        "component": [c for c, _ in totals.index],
        "kind": [k for _, k in totals.index],
        "ops": counts.to_numpy(dtype=np.int64),
        "flops": totals["flops"].to_numpy(dtype=np.int64),
        "seconds": seconds,
        "achieved_flops_per_s": flops / seconds,
        "bottleneck": bottleneck,
        "bottleneck_bytes": nbytes.astype(np.int64),
        "arithmetic_intensity": intensity,
    }, columns=columns)


def roofline_png(records: pd.DataFrame, machine: dict[str, Any], title: str = "") -> bytes:
    """The log-log roofline plot of one run as PNG bytes."""
    compute = compute_ceilings(machine)
    bandwidth = bandwidth_ceilings(machine)
    kinds = kind_points(records, machine)
    ops = op_points(records, machine)
    ops = ops[ops["arithmetic_intensity"].notna()]
    kinds = kinds[kinds["arithmetic_intensity"].notna()]

    top = float(compute["peak_flops_per_s"].max()) if len(compute) else 1e12
    ridges = [top / bw for bw in bandwidth["bandwidth_bytes_per_s"] if bw > 0]
    xs = [*ops["arithmetic_intensity"], *ridges]
    x_lo = 10 ** np.floor(np.log10(max(min(xs), 1e-6)) - 1) if xs else 1e-2
    x_hi = 10 ** np.ceil(np.log10(max(xs)) + 1) if xs else 1e4
    ys = [*ops["achieved_flops_per_s"], *compute["peak_flops_per_s"]]
    y_lo = 10 ** np.floor(np.log10(max(min(ys), 1.0)) - 1) if ys else 1e9
    y_hi = 10 ** np.ceil(np.log10(top) + 0.3)

    fig, ax = new_figure(8.0, 5.5)
    ax.set_xscale("log")
    ax.set_yscale("log")
    # One line per distinct ceiling value, naming everything that shares it (bf16 and fp16
    # of one engine, or an HBM tier and the on-package link in front of it).
    merged = (compute.assign(name=compute["component"] + " " + compute["dtype"])
              .groupby("peak_flops_per_s", sort=False)["name"].agg(", ".join))
    for i, (peak, names) in enumerate(merged.items()):
        ax.axhline(peak, color=LINE_COLORS[i % len(LINE_COLORS)], linestyle="--", linewidth=1,
                   label=f"{names}: {_si(peak)}FLOP/s")
    roofs = _roof_names(bandwidth)
    for i, (bw, names) in enumerate(roofs.items()):
        ax.plot([x_lo, top / bw], [bw * x_lo, top], color=LINE_COLORS[(i + len(merged)) % len(LINE_COLORS)],
                linewidth=1.5, label=f"{names}: {_si(bw)}B/s")
    # Ops and their kind's aggregate share a colour (by kind) and a marker (by unit).
    colors = {k: POINT_COLORS[i % len(POINT_COLORS)] for i, k in enumerate(sorted(set(kinds["kind"])))}
    units = sorted(set(kinds["component"]))
    markers = {u: "osD^v<>ph*"[i % 10] for i, u in enumerate(units)}
    for (unit, kind), group in ops.groupby(["component", "kind"], sort=True):
        pick = _evenly(len(group), MAX_POINTS_PER_KIND)
        ax.scatter(group["arithmetic_intensity"].to_numpy()[pick],
                   group["achieved_flops_per_s"].to_numpy()[pick],
                   s=8, alpha=0.3, color=colors[kind], marker=markers[unit], linewidths=0)
    for row in kinds.itertuples(index=False):
        ax.scatter([row.arithmetic_intensity], [row.achieved_flops_per_s], s=80, zorder=3,
                   color=colors[row.kind], marker=markers[row.component], edgecolor="black",
                   label=f"{row.kind} on {row.component} (via {row.bottleneck})")
    ax.set_xlim(x_lo, x_hi)
    ax.set_ylim(y_lo, y_hi)
    ax.set_xlabel("arithmetic intensity (FLOP per byte at the op's bottleneck tier or link)")
    ax.set_ylabel("achieved FLOP/s")
    ax.set_title(title or f"Roofline: {machine['name']}")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=7, loc="lower right", framealpha=0.9)
    fig.subplots_adjust(left=0.1, right=0.97, bottom=0.1, top=0.93)  # fixed: tight_layout is slow
    return figure_png(fig)


def write_roofline(records: pd.DataFrame, machine: dict[str, Any], folder: str | os.PathLike,
                   stem: str = "roofline") -> dict[str, Path]:
    """Write ``<stem>.png``, the per-kind table ``<stem>.parquet/.csv``, the per-op table
    ``<stem>_ops.parquet`` and the ceilings ``<stem>_ceilings.csv`` into ``folder``."""
    folder = Path(folder)
    out = {"png": save_png(roofline_png(records, machine), folder / f"{stem}.png")}
    out.update(write_table(kind_points(records, machine), folder, stem))
    out["ops"] = write_table(op_points(records, machine), folder, f"{stem}_ops", ("parquet",))["parquet"]
    out["ceilings"] = write_table(ceilings(machine), folder, f"{stem}_ceilings", ("csv",))["csv"]
    return out


def ceilings(machine: dict[str, Any]) -> pd.DataFrame:
    """Compute and bandwidth ceilings in one table: ceiling, kind, value, unit."""
    compute = compute_ceilings(machine)
    bandwidth = bandwidth_ceilings(machine)
    rows = [(f"{r.component} {r.dtype}", r.kind, r.peak_flops_per_s, "FLOP/s")
            for r in compute.itertuples(index=False)]
    rows += [(f"{r.resource} {r.direction}", r.kind, r.bandwidth_bytes_per_s, "B/s")
             for r in bandwidth.itertuples(index=False)]
    return pd.DataFrame(rows, columns=["ceiling", "kind", "value", "unit"])


def _roof_names(bandwidth: pd.DataFrame) -> pd.Series:
    """Bandwidth value -> the resources that have it, a direction named only where the
    resource's directions differ (a link whose directions sustain different rates)."""
    uniform = bandwidth.groupby("resource")["bandwidth_bytes_per_s"].nunique() == 1
    names = [r.resource if uniform[r.resource] else f"{r.resource} {r.direction}"
             for r in bandwidth.itertuples(index=False)]
    return (bandwidth.assign(name=names).drop_duplicates(["name", "bandwidth_bytes_per_s"])
            .groupby("bandwidth_bytes_per_s", sort=False)["name"].agg(", ".join))


def _resource_bytes(ops: pd.DataFrame, machine: dict[str, Any]):
    table = resource_bandwidth(machine)
    table = table[[f"bytes_{n}" in ops.columns for n in table.index]]
    names = table.index.tolist()
    bws = table.to_numpy(dtype=np.float64)
    if not names:
        return names, bws, np.zeros((len(ops), 0))
    moved = np.column_stack([ops[f"bytes_{n}"].to_numpy(dtype=np.float64) for n in names])
    return names, bws, moved


def _bottleneck(names: list[str], bws: np.ndarray, moved: np.ndarray):
    """Per row: the resource with the longest bytes/bandwidth, its bytes and its bandwidth."""
    n = moved.shape[0]
    if not names:
        return np.full(n, "", dtype=object), np.zeros(n), np.full(n, np.nan)
    busy = moved / bws
    pick = np.argmax(busy, axis=1)  # ties: the first resource in YAML order
    rows = np.arange(n)
    nbytes = moved[rows, pick]
    label = np.array(names, dtype=object)[pick]
    label[nbytes <= 0] = ""
    return label, nbytes, np.where(nbytes > 0, bws[pick], np.nan)


def _unit_peaks(ops: pd.DataFrame, machine: dict[str, Any]) -> np.ndarray:
    """Each op's unit peak FLOP/s for its dtype (a matrix engine falls back to bf16, then its
    first dtype, as the timing model does)."""
    table = compute_ceilings(machine)
    peaks = {}
    for name, group in table.groupby("component", sort=False):
        by_dtype = dict(zip(group["dtype"], group["peak_flops_per_s"], strict=True))
        fallback = by_dtype.get("bf16", by_dtype.get("any", next(iter(by_dtype.values()))))
        peaks[name] = (by_dtype, fallback)
    keys = ops["component"].astype(str) + "\0" + ops["dtype"].astype(str)
    codes, uniques = pd.factorize(keys.to_numpy())
    values = np.full(len(uniques), np.nan)
    for j, key in enumerate(uniques):
        comp, dtype = key.split("\0", 1)
        if comp in peaks:
            by_dtype, fallback = peaks[comp]
            values[j] = by_dtype.get(dtype, fallback)
    return values[codes] if len(codes) else np.zeros(0)


def _evenly(n: int, limit: int) -> np.ndarray:
    """Indices of at most ``limit`` evenly spaced rows out of ``n`` (deterministic)."""
    if n <= limit:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, limit).astype(np.int64))


def _si(value: float) -> str:
    for prefix, scale in (("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.4g} {prefix}"
    return f"{value:.4g} "
