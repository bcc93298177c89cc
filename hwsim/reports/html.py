"""The HTML report: one self-contained ``index.html`` per run or comparison folder.

``write_report(folder)`` detects what ``folder`` is and renders it:

* a run folder (has ``summary.json``): headline numbers, tiers, links and units, the
  roofline, the energy breakdown with its provenance table, the resolved machine config and
  trace metadata;
* a comparison folder (has ``comparison.parquet``): the comparison tables and bars, then
  the same sections for every run.

Figures are embedded as base64 PNG data URIs (each with a numbered caption) and tables as
sortable HTML in units for people, so the page opens from a file with no network and no
companion files, and fits a 1,400 px window (wide tables scroll inside their box). Beside
it go ``summary.md`` and the timeline (``timeline.json.gz``, or ``timeline-<label>.json.gz``
per run of a comparison; Perfetto's protobuf ``.pftrace.gz`` when a run has more ops than
the JSON keeps), which the page links and explains how to open. A run whose working set
overflowed a tier is marked invalid at the top, with the tiers and sizes. The figures and
tables also land in ``report/`` as PNG, Parquet and CSV.

Other folder kinds (sweeps) plug in with :func:`register_folder_kind` (a detector and a
renderer that returns the ``index.html`` path; :func:`html_page`, :func:`figure_html` and
:func:`hwsim.reports.tables.html_table` build a page in the same style). A module named in
:data:`PLUGIN_MODULES` is imported on first use so that it can register itself.
"""

from __future__ import annotations

import html
import importlib
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from hwsim.atomic import atomic_write_text
from hwsim.errors import HwsimError
from hwsim.reports import energy, roofline, timeline, timeline_proto
from hwsim.reports.compare import COMPARISON, RunData, comparison_markdown, load_comparison
from hwsim.reports.format import human
from hwsim.reports.page import figure_html, html_page, markdown_html  # noqa: F401 - re-exported for renderers
from hwsim.reports.tables import html_table, markdown_table, save_png, write_table
from hwsim.results import GAP_BY_KIND

INDEX = "index.html"
SUMMARY_MD = "summary.md"
ARTEFACTS = "report"
#: Modules that provide more folder kinds, imported on first use (missing ones are skipped).
#: A module provides ``detect_folder(path) -> bool`` and ``render_folder(path, **options) ->
#: Path`` (the index.html), named by its ``FOLDER_KIND`` string; or, as the sweep report
#: does, ``is_sweep_folder(path)`` and ``render_sweep(path) -> Path`` of a Markdown page
#: whose figures this module embeds into an index.html beside it.
PLUGIN_MODULES: tuple[str, ...] = ("hwsim.reports.sweep",)


@dataclass(frozen=True)
class FolderKind:
    """A kind of results folder: ``detect(folder) -> bool`` and ``render(folder, **options) -> Path``."""

    name: str
    detect: Callable[[Path], bool]
    render: Callable[..., Path]


_KINDS: list[FolderKind] = []
_plugins_loaded = False


def register_folder_kind(name: str, detect: Callable[[Path], bool], render: Callable[..., Path]) -> None:
    """Add (or replace) a folder kind; kinds registered later are tried first."""
    _KINDS[:] = [k for k in _KINDS if k.name != name]
    _KINDS.insert(0, FolderKind(name, detect, render))


def folder_kind(folder: str | os.PathLike) -> FolderKind:
    """The kind of ``folder``; raises HwsimError if no registered kind recognises it."""
    global _plugins_loaded
    if not _plugins_loaded:
        _plugins_loaded = True
        for module in PLUGIN_MODULES:
            _load_plugin(module)
    folder = Path(folder)
    if not folder.is_dir():
        raise HwsimError(f"{folder}: no such folder")
    for kind in _KINDS:
        if kind.detect(folder):
            return kind
    raise HwsimError(f"{folder}: not a run, comparison or sweep folder "
                     f"(expected summary.json, {COMPARISON}.parquet or sweep.json)")


def write_report(folder: str | os.PathLike, **options: Any) -> Path:
    """Render the report of ``folder`` and return the path of its ``index.html``.

    ``options`` go to the timeline (``max_events``, ``window``). Raises HwsimError for a
    folder that is not a run, comparison or (registered) sweep folder.
    """
    folder = Path(folder)
    return folder_kind(folder).render(folder, **options)


def _load_plugin(name: str) -> None:
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as err:
        if err.name is not None and name.startswith(err.name):
            return  # not shipped in this installation
        raise
    if hasattr(module, "detect_folder") and hasattr(module, "render_folder"):
        kind = getattr(module, "FOLDER_KIND", name.rsplit(".", 1)[-1])
        if all(k.name != kind for k in _KINDS):
            register_folder_kind(kind, module.detect_folder, module.render_folder)
    elif (hasattr(module, "is_sweep_folder") and hasattr(module, "render_sweep")
          and all(k.name != "sweep" for k in _KINDS)):
        register_folder_kind("sweep", module.is_sweep_folder, _markdown_renderer(module.render_sweep))


def _markdown_renderer(render: Callable[[Path], Path]) -> Callable[..., Path]:
    """Wrap a renderer that writes a Markdown page into one that writes index.html from it."""

    def render_index(folder: Path, **_options: Any) -> Path:
        markdown = Path(render(folder))
        text = markdown.read_text()
        first = text.splitlines()[0].lstrip("#").strip() if text.strip() else ""
        title = first or f"hwsim {markdown.stem}: {folder.resolve().name}"
        return atomic_write_text(folder / INDEX, html_page(title, markdown_html(text, folder, skip_title=bool(first))))

    return render_index


def is_run_folder(folder: Path) -> bool:
    # Complete or not: a run folder's loader then says what is missing.
    from hwsim.results import looks_like_run_folder

    return looks_like_run_folder(folder)


def is_comparison_folder(folder: Path) -> bool:
    return (folder / f"{COMPARISON}.parquet").is_file() and (folder / f"{COMPARISON}.json").is_file()


def render_run(folder: Path, **options: Any) -> Path:
    """Write ``index.html``, ``summary.md``, the timeline and ``report/`` for a run folder."""
    run = RunData.load(folder)
    section, markdown = _run_section(run, folder, "timeline", options, heading=2)
    title = f"hwsim report: {run.summary['machine']}" + (f" / {run.trace}" if run.trace else "")
    atomic_write_text(folder / SUMMARY_MD, f"# {title}\n\n{markdown}")
    return atomic_write_text(folder / INDEX, html_page(title, section))


def render_comparison(folder: Path, **options: Any) -> Path:
    """Write ``index.html``, ``summary.md`` and per-run timelines for a comparison folder.

    Each run's label links to its section below and its folder to that run's own report
    (written too when the folder has none)."""
    table, runs_info, runs = load_comparison(folder)
    own = [_own_report(folder, relative, run, options) for relative, run in zip(runs_info["folder"], runs, strict=True)]
    invalid = [_invalid_reason(run.summary) for run in runs]
    runs_view = runs_info.assign(status=[reason or "ok" for reason in invalid])
    parts = [f"<h2>Comparison</h2><p>Ratios divide each run by the first, "
             f"<code>{html.escape(runs_info['label'].iloc[0])}</code>.</p>",
             *[f'<p class="invalid">Run {html.escape(r.label)} is invalid: {html.escape(reason)}.</p>'
               for r, reason in zip(runs, invalid, strict=True) if reason],
             html_table(runs_view, links={"label": [f"#run-{_anchor(r.label)}" for r in runs],
                                          "folder": own},
                        row_classes=["invalid" if reason else "" for reason in invalid],
                        caption="The runs (label: its section below; folder: its own report)"),
             html_table(table, row_unit="unit", caption="Metrics per run, and ratios to the first run")]
    png_path = folder / f"{COMPARISON}.png"
    if png_path.is_file():
        parts.append(figure_html(png_path.read_bytes(), "throughput, energy per work unit, bytes per tier",
                                 "Throughput, energy per work unit, and bytes moved per tier and link, "
                                 "one bar per run"))
    markdown = [comparison_markdown(table, runs_info)]
    for run in runs:
        section, md = _run_section(run, folder, f"timeline-{run.label}", options,
                                   heading=3, artefacts=folder / ARTEFACTS / run.label)
        parts.append(f'<h2 id="run-{_anchor(run.label)}">Run {html.escape(run.label)}</h2>{section}')
        markdown.append(f"\n## Run {run.label}\n\n{md}")
    title = f"hwsim comparison: {', '.join(runs_info['label'])}"
    atomic_write_text(folder / SUMMARY_MD, "\n".join(markdown))
    return atomic_write_text(folder / INDEX, html_page(title, "".join(parts)))


def _anchor(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", label)


def _own_report(folder: Path, relative: str, run: RunData, options: dict[str, Any]) -> str:
    """The href (relative to ``folder``) of a run's own ``index.html``, rendering it first
    when the run folder has none ("" for a run without a folder)."""
    if run.folder is None or not relative:
        return ""
    if not (run.folder / INDEX).is_file():
        render_run(run.folder, **options)
    return f"{relative}/{INDEX}"


def _invalid_reason(summary: dict[str, Any]) -> str:
    """Why a run's numbers are not a real machine's ("" when they are): the tiers its working
    set overflowed (simulated with ``allow_overflow``), with peak and capacity."""
    tiers = summary.get("overflow") or []
    parts = [f"{t} working set {human(summary['tiers'][t]['peak_occupancy_bytes'], 'B')} > capacity "
             f"{human(summary['tiers'][t]['capacity_bytes'], 'B')}" if t in summary.get("tiers", {}) else t
             for t in tiers]
    return ("overflow: " + "; ".join(parts)) if parts else ""


register_folder_kind("run", is_run_folder, render_run)
register_folder_kind("comparison", is_comparison_folder, render_comparison)


def headline(summary: dict[str, Any], trace_meta: dict[str, Any] | None = None) -> pd.DataFrame:
    """The run's key numbers as a two-column table (quantity, value) for people."""
    e = summary["energy"]
    meta = trace_meta or {}
    trace = "/".join(str(meta[k]) for k in ("generator", "preset") if meta.get(k))
    if meta.get("description"):
        trace = f"{trace}: {meta['description']}" if trace else str(meta["description"])
    rows = [
        ("machine", summary["machine"]),
        ("trace", trace or "(no metadata)"),
        ("ops", f"{summary['ops']:,}"),
        ("total", f"{summary['total_cycles']:,} cycles = {human(summary['seconds'], 's')} "
                  f"at {human(summary['clock_hz'], 'Hz')}"),
        ("throughput", f"{human(summary['throughput'], '')} {summary['throughput_unit']}"),
        ("busiest", f"{summary['busiest_component']} ({100 * summary['busiest_utilization']:.1f}% busy)"),
        ("energy", f"{human(e['total_j'], 'J')} (dynamic {human(e['dynamic_pj'], 'pJ')}, "
                   f"leakage {human(e['leakage_pj'], 'pJ')})"),
        ("energy per work unit", f"{human(summary['energy_per_work_unit_j'], 'J')}/{summary['work_unit']}"),
    ]
    comm = summary.get("communication")
    if comm:
        rows += [("compute", f"{human(comm['compute_seconds'], 's')} with some compute unit busy"),
                 ("communication", f"{human(comm['communication_seconds'], 's')} with some collective "
                                   f"or send on the fabric"),
                 ("exposed communication", f"{human(comm['exposed_communication_seconds'], 's')} "
                                           f"({100 * comm['exposed_share']:.1f}% of the run) not hidden "
                                           f"under compute")]
    if summary.get("overflow"):
        rows.append(("INVALID", _invalid_reason(summary)))
    return pd.DataFrame(rows, columns=["quantity", "value"])


def resource_tables(summary: dict[str, Any]) -> dict[str, pd.DataFrame]:
    """Tiers, links and units of the summary as tables."""
    tiers = pd.DataFrame(
        [(n, t["bytes"], t["bandwidth_bytes_per_s"], t["utilization"], t["peak_occupancy_bytes"],
          t["capacity_bytes"], bool(t["fits"])) for n, t in summary["tiers"].items()],
        columns=["tier", "bytes", "avg_bandwidth_bytes_per_s", "utilization", "peak_occupancy_bytes",
                 "capacity_bytes", "fits"])
    links = pd.DataFrame(
        [(n, d, v["bytes"], v["bandwidth_bytes_per_s"], v["utilization"])
         for n, link in summary["links"].items() for d, v in link["directions"].items()],
        columns=["link", "direction", "bytes", "avg_bandwidth_bytes_per_s", "utilization"])
    units = pd.DataFrame(
        [(n, u["kind"], u["ops"], u["busy_cycles"], u["utilization"], u["flops"], u["achieved_flops_per_s"])
         for n, u in summary["units"].items()],
        columns=["unit", "kind", "ops", "busy_cycles", "utilization", "flops", "achieved_flops_per_s"])
    return {"tiers": tiers, "links": links, "units": units}


def write_run_timeline(run: RunData, folder: Path, stem: str, options: dict[str, Any]) -> tuple[str, str, str]:
    """Write a run's timeline as ``<stem>.json.gz``, or as Perfetto's protobuf
    ``<stem>.pftrace.gz`` when the run has more ops than the JSON keeps (every op stays);
    return the file name and an HTML and a Markdown note on it.

    ``options``: ``max_events`` and ``window`` for the JSON, ``timeline_format`` ``auto``
    (default), ``json`` or ``proto``."""
    options = dict(options)
    chosen = options.pop("timeline_format", "auto")
    if chosen not in ("auto", "json", "proto"):
        raise HwsimError(f"timeline format {chosen!r}: expected auto, json or proto")
    limit = options.get("max_events", timeline.DEFAULT_MAX_EVENTS)
    kinds = run.records["kind"].astype(str)
    ops = int((~kinds.isin(("alloc", "free"))).sum())
    too_many = limit is not None and 2 * ops > limit   # each op shows on its unit and its stream
    proto = chosen == "proto" or (chosen == "auto" and too_many and options.get("window") is None
                                  and timeline_proto.available())
    how = html.escape(timeline.HOW_TO_OPEN)
    if proto:
        name = stem + ".pftrace.gz"
        timeline_proto.write_timeline_proto(run.records, run.machine, folder / name)
        note = (f"<p>Timeline: <a href=\"{html.escape(name)}\"><code>{html.escape(name)}</code></a>, "
                f"every one of the {ops:,} ops with its dependencies, in Perfetto's protobuf format "
                f"(the JSON format would have to hide ops). To view it, {how}.</p>")
        return name, note, f"`{name}` (every op, Perfetto protobuf): {timeline.HOW_TO_OPEN}."
    name = stem + ".json.gz"
    trace = timeline.timeline_trace(run.records, run.machine, **options)
    timeline.write_trace_json(trace, folder / name)
    hidden = sum(trace["otherData"]["hidden_ops"].values())
    note = (f"<p>Timeline: <a href=\"{html.escape(name)}\"><code>{html.escape(name)}</code></a> "
            f"({len(trace['traceEvents']):,} events, dependencies as arrows). To view it, {how}.</p>")
    if hidden:
        why = ("the perfetto package is not installed, so the JSON timeline keeps the longest"
               if not timeline_proto.available() else "the JSON timeline keeps the longest")
        note += (f"<p>{hidden:,} shorter ops are hidden: {why} ops of each track (see its thread "
                 f"names); <code>hwsim report --timeline-format proto</code> keeps them all.</p>")
    return name, note, f"`{name}`: {timeline.HOW_TO_OPEN}."


def _run_section(run: RunData, folder: Path, timeline_name: str, options: dict[str, Any],
                 heading: int, artefacts: Path | None = None) -> tuple[str, str]:
    """HTML and Markdown for one run; writes its timeline and artefacts as a side effect.
    ``timeline_name`` is the timeline file's stem."""
    artefacts = artefacts or folder / ARTEFACTS
    h = f"h{heading}"
    tables = resource_tables(run.summary)
    roof_png = roofline.roofline_png(run.records, run.machine)
    energy_png = energy.energy_png(run.summary, run.records, run.machine)
    kinds = roofline.kind_points(run.records, run.machine)
    ceilings = roofline.ceilings(run.machine)
    by_component = energy.component_energy(run.summary, run.machine)
    by_kind = energy.kind_energy(run.records, run.machine)
    provenance = energy.provenance_table(run.machine)
    save_png(roof_png, artefacts / "roofline.png")
    save_png(energy_png, artefacts / "energy.png")
    for stem, frame in (("roofline", kinds), ("roofline_ceilings", ceilings),
                        ("energy_components", by_component), ("energy_kinds", by_kind),
                        ("energy_provenance", provenance), *tables.items()):
        write_table(frame, artefacts, stem)
    timeline_file, note, timeline_md = write_run_timeline(run, folder, timeline_name, options)
    machine_yaml = yaml.safe_dump(run.machine, sort_keys=False)
    gap = _gap_table(run.folder)
    machine = run.summary["machine"]
    invalid = _invalid_reason(run.summary)
    body = [
        *([f'<p class="invalid"><strong>Invalid run</strong> ({html.escape(invalid)}): it was '
           f"simulated as if the working set fit, so its times and energies are not this "
           f"machine's.</p>"] if invalid else []),
        html_table(headline(run.summary, run.trace_meta)),
        f"<{h}>Memory tiers</{h}>", html_table(tables["tiers"], caption="Bytes moved, bandwidth and occupancy per tier"),
        f"<{h}>Links</{h}>", html_table(tables["links"], caption="Bytes and bandwidth per link direction")
        if len(tables["links"]) else "<p>none</p>",
        f"<{h}>Compute units</{h}>", html_table(tables["units"], caption="Work and utilisation per compute unit"),
        f"<{h}>Roofline</{h}>",
        figure_html(roof_png, f"roofline of {machine}",
                    f"Roofline of {machine}: compute ceilings (dashed) per unit and dtype, one "
                    f"bandwidth ceiling per tier and link, op kinds (large marks) and single ops"),
        f"<p>{html.escape(_ROOFLINE_NOTE)}</p>",
        html_table(kinds, caption="Each op kind's roofline point"),
        html_table(ceilings, caption="The machine's ceilings"),
        *([f"<{h}>Contention per op kind</{h}>", f"<p>{html.escape(_GAP_NOTE)}</p>", html_table(gap)]
          if gap is not None else []),
        f"<{h}>Energy</{h}>",
        figure_html(energy_png, f"energy of {machine}",
                    f"Energy of the run on {machine} by component and by op kind"),
        html_table(by_component, caption="Energy per component"), html_table(by_kind, caption="Energy per op kind"),
        f"<{h}>Energy provenance</{h}>", html_table(provenance, caption="Where each energy constant comes from"),
        f"<{h}>Timeline</{h}>", note,
        f"<{h}>Inputs</{h}>",
        f"<details><summary>resolved machine config</summary><pre>{html.escape(machine_yaml)}</pre></details>",
        f"<details><summary>trace metadata</summary><pre>"
        f"{html.escape(json.dumps(run.trace_meta, indent=2, sort_keys=True))}</pre></details>",
    ]
    markdown = "\n".join([
        *([f"**Invalid run** ({invalid}).\n"] if invalid else []),
        markdown_table(headline(run.summary, run.trace_meta)),
        "## Memory tiers\n", markdown_table(tables["tiers"]),
        "## Links\n", markdown_table(tables["links"]) if len(tables["links"]) else "none\n",
        "## Compute units\n", markdown_table(tables["units"]),
        "## Roofline (per op kind)\n", markdown_table(kinds),
        *(["## Contention per op kind\n", f"{_GAP_NOTE}\n", markdown_table(gap)] if gap is not None else []),
        "## Energy by component\n", markdown_table(by_component),
        "## Energy provenance\n", markdown_table(provenance),
        f"## Timeline\n\n{timeline_md}\n",
    ])
    return "".join(body), markdown


_ROOFLINE_NOTE = ("Each op kind is placed at its arithmetic intensity against the tier or link "
                  "its bytes kept busiest (its bottleneck) and at its achieved FLOP/s over its "
                  "busy time; small points are single ops.")

_GAP_NOTE = ("What the event replay adds to the contention-free roofline level, summed per op kind "
             "(hwsim run --gap): queue cycles wait for a busy unit, contention cycles are slower "
             "shared channels; gap_ratio 1.0 means no contention.")


def _gap_table(folder: Path | None) -> pd.DataFrame | None:
    """The run's ``gap_by_kind.csv`` (written by ``hwsim run --gap``), if it has one."""
    path = folder / GAP_BY_KIND if folder is not None else None
    return pd.read_csv(path) if path is not None and path.is_file() else None
