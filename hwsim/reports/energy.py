"""Energy: breakdown by component and by op kind, energy per unit of work, and provenance.

Reads the summary dict (``summary["energy"]``), the records DataFrame and the resolved
machine dict, whose component facts (:mod:`hwsim.components.facts`) hold every energy
constant with its unit and source; never simulator objects.

* by component: ``summary["energy"]["by_component_pj"]`` split into dynamic and leakage
  (``leakage_power * seconds``);
* by op kind (pJ): each kind's dynamic energy (``energy_pj`` of its records) split by
  where it was spent: compute energy on the op's unit (``energy_compute_pj``), and memory
  energy per tier, link or DMA group with a per-bit cost (``bytes_<name> * 8 *
  energy_per_bit``). Memory energy that is not per bit (a banked SRAM's per-access read
  and write energy) is the ``other memory`` column, so each row still sums to the kind's
  ``energy_pj``. Leakage belongs to the run, not to an op kind, and is left out of this view;
* provenance: for every component, every energy and power constant of its facts with its
  value, unit and source (the component's ``provenance`` note for that key when it has
  one, else its ``source``). ``hwsim energy`` prints the same table.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hwsim.components.facts import read_facts
from hwsim.reports.tables import figure_png, new_figure, save_png, write_table

PJ_PER_J = 1e12
OTHER_MEMORY = "other memory"


def component_energy(summary: dict[str, Any], machine: dict[str, Any]) -> pd.DataFrame:
    """Energy per component: columns component, kind, dynamic_pj, leakage_pj, total_pj, share."""
    by_component = summary["energy"]["by_component_pj"]
    facts = read_facts(machine)
    names = [n for n in facts if n in by_component] + sorted(set(by_component) - set(facts))
    total = float(summary["energy"]["total_pj"]) or 1.0
    rows = []
    for name in names:
        record = facts.get(name)
        leakage = (record.leakage_w if record else 0.0) * float(summary["seconds"]) * PJ_PER_J
        value = float(by_component[name])
        rows.append((name, record.kind if record else "", max(value - leakage, 0.0), leakage, value, value / total))
    return pd.DataFrame(rows, columns=["component", "kind", "dynamic_pj", "leakage_pj", "total_pj", "share"])


def kind_energy(records: pd.DataFrame, machine: dict[str, Any]) -> pd.DataFrame:
    """Dynamic energy per op kind split by component: one row per kind, one column per
    component (pJ), ``other memory`` if needed, and ``total_pj`` (= sum of ``energy_pj``)."""
    kinds = records["kind"].astype(str)
    facts = read_facts(machine)
    parts: dict[str, pd.Series] = {}
    compute = records["energy_compute_pj"].groupby([kinds, records["component"].astype(str)],
                                                   sort=True).sum()
    for (kind, component), value in compute.items():
        if value:
            parts.setdefault(component, pd.Series(dtype=float))
            parts[component].loc[kind] = float(value)
    memory_known = pd.Series(0.0, index=records.index)
    for name, record in facts.items():
        column = f"bytes_{name}"
        per_bit = [c.value for c in record.energy if c.name == "energy_per_bit"]
        if column not in records or not per_bit:
            continue
        spent = records[column].to_numpy(dtype=np.float64) * 8.0 * per_bit[0]
        memory_known += spent
        by_kind = pd.Series(spent, index=records.index).groupby(kinds, sort=True).sum()
        if by_kind.any():
            parts[name] = parts.get(name, pd.Series(dtype=float)).add(by_kind, fill_value=0.0)
    total = records["energy_pj"].groupby(kinds, sort=True).sum()
    other = (records["energy_pj"] - records["energy_compute_pj"] - memory_known).groupby(kinds, sort=True).sum()
    if (other.abs() > 1e-9 * max(float(total.abs().max()), 1.0)).any():
        parts[OTHER_MEMORY] = other
    order = [n for n in facts if n in parts] + [n for n in parts if n not in facts]
    frame = pd.DataFrame({name: parts[name] for name in order}, index=total.index).fillna(0.0)
    frame["total_pj"] = total
    frame = frame[frame["total_pj"] != 0]
    frame.index.name = "kind"
    return frame.reset_index()


def work_energy(summary: dict[str, Any]) -> dict[str, Any]:
    """Energy per unit of useful work: work_unit, work_units, total_j, energy_per_work_unit_j."""
    return {"work_unit": summary["work_unit"], "work_units": float(summary["work_units"]),
            "total_j": float(summary["energy"]["total_j"]),
            "energy_per_work_unit_j": float(summary["energy_per_work_unit_j"])}


def provenance_table(machine: dict[str, Any]) -> pd.DataFrame:
    """Every energy and power constant of the machine with its unit and source, read from
    its component facts. Columns: component, kind, constant, value, unit, source."""
    rows = [(name, record.kind, c.name, c.value, c.unit, c.source)
            for name, record in read_facts(machine).items() for c in record.energy]
    return pd.DataFrame(rows, columns=["component", "kind", "constant", "value", "unit", "source"])


def energy_png(summary: dict[str, Any], records: pd.DataFrame, machine: dict[str, Any],
               title: str = "") -> bytes:
    """Two stacked bar charts as PNG: energy per component (dynamic + leakage) and dynamic
    energy per op kind split by component, in joules."""
    comps = component_energy(summary, machine)
    kinds = kind_energy(records, machine)
    fig, (left, right) = new_figure(11.0, 4.5, ncols=2)
    y = np.arange(len(comps))
    left.barh(y, comps["dynamic_pj"] / PJ_PER_J, color="C0", label="dynamic")
    left.barh(y, comps["leakage_pj"] / PJ_PER_J, left=comps["dynamic_pj"] / PJ_PER_J,
              color="C7", label="leakage")
    left.set_yticks(y, comps["component"].tolist())
    left.invert_yaxis()
    left.set_xlabel("energy (J)")
    left.set_title("by component")
    left.legend(fontsize=8)
    x = np.arange(len(kinds))
    bottom = np.zeros(len(kinds))
    for i, column in enumerate(c for c in kinds.columns if c not in ("kind", "total_pj")):
        values = kinds[column].to_numpy(dtype=np.float64) / PJ_PER_J
        right.bar(x, values, bottom=bottom, color=f"C{i % 10}", label=column)
        bottom += values
    right.set_xticks(x, kinds["kind"].tolist(), rotation=30, ha="right")
    right.set_ylabel("dynamic energy (J)")
    right.set_title("by op kind (leakage excluded)")
    if len(kinds):
        right.legend(fontsize=8)
    per_unit = summary["energy_per_work_unit_j"]
    fig.suptitle(title or f"Energy: {machine['name']}  "
                 f"({summary['energy']['total_j']:.4g} J total, {per_unit:.4g} J/{summary['work_unit']})")
    fig.subplots_adjust(left=0.1, right=0.98, bottom=0.2, top=0.86, wspace=0.3)
    return figure_png(fig)


def write_energy(summary: dict[str, Any], records: pd.DataFrame, machine: dict[str, Any],
                 folder: str | os.PathLike, stem: str = "energy") -> dict[str, Path]:
    """Write ``<stem>.png`` and the tables ``<stem>_components``, ``<stem>_kinds`` and
    ``<stem>_provenance`` (Parquet and CSV) into ``folder``; return the paths."""
    folder = Path(folder)
    out = {"png": save_png(energy_png(summary, records, machine), folder / f"{stem}.png")}
    for part, frame in (("components", component_energy(summary, machine)),
                        ("kinds", kind_energy(records, machine)),
                        ("provenance", provenance_table(machine))):
        for fmt, path in write_table(frame, folder, f"{stem}_{part}").items():
            out[f"{part}_{fmt}"] = path
    return out
