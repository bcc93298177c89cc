"""The HTML report: one self-contained ``index.html`` per run or comparison folder.

``write_report(folder)`` detects what ``folder`` is and renders it:

* a run folder (has ``summary.json``): headline numbers, tiers, links and units, the
  roofline, the energy breakdown with its provenance table, the resolved machine config and
  trace metadata;
* a comparison folder (has ``comparison.parquet``): the comparison tables and bars, then
  the same sections for every run.

Figures are embedded as base64 PNG data URIs and tables as HTML, so the page opens from a
file with no network and no companion files. Beside it go ``summary.md`` and the timeline
JSON (``timeline.json``, or ``timeline-<label>.json`` per run of a comparison), which the
page links and explains how to open. The figures and tables also land in ``report/`` as
PNG, Parquet and CSV.

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
from hwsim.reports import energy, roofline, timeline
from hwsim.reports.compare import COMPARISON, RunData, comparison_markdown, load_comparison
from hwsim.reports.tables import html_table, markdown_table, png_data_uri, save_png, write_table
from hwsim.results import GAP_BY_KIND
from hwsim.units import format_quantity

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
        title = f"hwsim {markdown.stem}: {folder.resolve().name}"
        return atomic_write_text(folder / INDEX, html_page(title, markdown_html(markdown.read_text(), folder)))

    return render_index


def markdown_html(text: str, base: Path) -> str:
    """HTML for the Markdown that reports write: headings, pipe tables, images (embedded
    from files under ``base`` as data URIs) and paragraphs; anything else is kept as text."""
    out: list[str] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i].rstrip()
        image = re.fullmatch(r"!\[([^\]]*)\]\(([^)\s]+)\)", line.strip())
        if line.startswith("#"):
            level = min(len(line) - len(line.lstrip("#")), 6)
            out.append(f"<h{level}>{html.escape(line.lstrip('#').strip())}</h{level}>")
        elif line.startswith("|"):
            block = []
            while i < len(lines) and lines[i].startswith("|"):
                block.append([html.escape(c.strip()) for c in lines[i].strip().strip("|").split("|")])
                i += 1
            body = [r for r in block[1:] if not all(set(c) <= set("-: ") for c in r)]
            head = "".join(f"<th>{c}</th>" for c in block[0])
            rows = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in body)
            out.append(f'<table class="table"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>')
            continue
        elif image:
            path = (base / image.group(2)).resolve()
            out.append(figure_html(path.read_bytes(), image.group(1)) if path.is_file()
                       else f"<p>missing figure {html.escape(image.group(2))}</p>")
        elif line.strip():
            out.append(f"<p>{html.escape(line)}</p>")
        i += 1
    return "\n".join(out)


def is_run_folder(folder: Path) -> bool:
    return (folder / "summary.json").is_file() and (folder / "records.parquet").is_file()


def is_comparison_folder(folder: Path) -> bool:
    return (folder / f"{COMPARISON}.parquet").is_file() and (folder / f"{COMPARISON}.json").is_file()


def render_run(folder: Path, **options: Any) -> Path:
    """Write ``index.html``, ``summary.md``, ``timeline.json`` and ``report/`` for a run folder."""
    run = RunData.load(folder)
    section, markdown = _run_section(run, folder, "timeline.json", options, heading=2)
    title = f"hwsim report: {run.summary['machine']}" + (f" / {run.trace}" if run.trace else "")
    atomic_write_text(folder / SUMMARY_MD, f"# {title}\n\n{markdown}")
    return atomic_write_text(folder / INDEX, html_page(title, section))


def render_comparison(folder: Path, **options: Any) -> Path:
    """Write ``index.html``, ``summary.md`` and per-run timelines for a comparison folder."""
    table, runs_info, runs = load_comparison(folder)
    parts = [f"<h2>Comparison</h2><p>Ratios divide each run by the first, "
             f"<code>{html.escape(runs_info['label'].iloc[0])}</code>.</p>",
             html_table(runs_info), html_table(table)]
    png_path = folder / f"{COMPARISON}.png"
    if png_path.is_file():
        parts.append(figure_html(png_path.read_bytes(), "throughput, energy per work unit, bytes per tier"))
    markdown = [comparison_markdown(table, runs_info)]
    for run in runs:
        section, md = _run_section(run, folder, f"timeline-{run.label}.json", options,
                                   heading=3, artefacts=folder / ARTEFACTS / run.label)
        parts.append(f"<h2>Run {html.escape(run.label)}</h2>{section}")
        markdown.append(f"\n## Run {run.label}\n\n{md}")
    title = f"hwsim comparison: {', '.join(runs_info['label'])}"
    atomic_write_text(folder / SUMMARY_MD, "\n".join(markdown))
    return atomic_write_text(folder / INDEX, html_page(title, "".join(parts)))


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
        ("total", f"{summary['total_cycles']:,} cycles = {format_quantity(summary['seconds'], 'time')} "
                  f"at {format_quantity(summary['clock_hz'], 'frequency')}"),
        ("throughput", f"{summary['throughput']:.4g} {summary['throughput_unit']}"),
        ("busiest", f"{summary['busiest_component']} ({100 * summary['busiest_utilization']:.1f}% busy)"),
        ("energy", f"{e['total_j']:.4g} J (dynamic {e['dynamic_pj'] / 1e12:.4g} J, "
                   f"leakage {e['leakage_pj'] / 1e12:.4g} J)"),
        ("energy per work unit", f"{summary['energy_per_work_unit_j']:.4g} J/{summary['work_unit']}"),
    ]
    if summary.get("overflow"):
        rows.append(("OVERFLOW", "working set exceeds capacity of: " + ", ".join(summary["overflow"])))
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


def _run_section(run: RunData, folder: Path, timeline_name: str, options: dict[str, Any],
                 heading: int, artefacts: Path | None = None) -> tuple[str, str]:
    """HTML and Markdown for one run; writes its timeline and artefacts as a side effect."""
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
    trace = timeline.timeline_trace(run.records, run.machine, **options)
    atomic_write_text(folder / timeline_name,
                      json.dumps(trace, separators=(",", ":"), allow_nan=False) + "\n")
    hidden = sum(trace["otherData"]["hidden_ops"].values())
    note = (f"<p>Timeline: <a href=\"{html.escape(timeline_name)}\"><code>{html.escape(timeline_name)}"
            f"</code></a> ({len(trace['traceEvents']):,} events). To view it, "
            f"{html.escape(timeline.HOW_TO_OPEN)}.</p>")
    if hidden:
        note += f"<p>{hidden:,} shorter ops are hidden to keep the file small (see its thread names).</p>"
    machine_yaml = yaml.safe_dump(run.machine, sort_keys=False)
    gap = _gap_table(run.folder)
    body = [
        html_table(headline(run.summary, run.trace_meta)),
        f"<{h}>Memory tiers</{h}>", html_table(tables["tiers"]),
        f"<{h}>Links</{h}>", html_table(tables["links"]) if len(tables["links"]) else "<p>none</p>",
        f"<{h}>Compute units</{h}>", html_table(tables["units"]),
        f"<{h}>Roofline</{h}>", figure_html(roof_png, f"roofline of {run.summary['machine']}"),
        f"<p>{html.escape(_ROOFLINE_NOTE)}</p>", html_table(kinds), html_table(ceilings),
        *([f"<{h}>Contention per op kind</{h}>", f"<p>{html.escape(_GAP_NOTE)}</p>", html_table(gap)]
          if gap is not None else []),
        f"<{h}>Energy</{h}>", figure_html(energy_png, f"energy of {run.summary['machine']}"),
        html_table(by_component), html_table(by_kind),
        f"<{h}>Energy provenance</{h}>", html_table(provenance),
        f"<{h}>Timeline</{h}>", note,
        f"<{h}>Inputs</{h}>",
        f"<details><summary>resolved machine config</summary><pre>{html.escape(machine_yaml)}</pre></details>",
        f"<details><summary>trace metadata</summary><pre>"
        f"{html.escape(json.dumps(run.trace_meta, indent=2, sort_keys=True))}</pre></details>",
    ]
    markdown = "\n".join([
        markdown_table(headline(run.summary, run.trace_meta)),
        "## Memory tiers\n", markdown_table(tables["tiers"]),
        "## Links\n", markdown_table(tables["links"]) if len(tables["links"]) else "none\n",
        "## Compute units\n", markdown_table(tables["units"]),
        "## Roofline (per op kind)\n", markdown_table(kinds),
        *(["## Contention per op kind\n", f"{_GAP_NOTE}\n", markdown_table(gap)] if gap is not None else []),
        "## Energy by component\n", markdown_table(by_component),
        "## Energy provenance\n", markdown_table(provenance),
        f"## Timeline\n\n`{timeline_name}`: {timeline.HOW_TO_OPEN}.\n",
    ])
    return "".join(body), markdown


_ROOFLINE_NOTE = ("Each op kind is placed at its arithmetic intensity against the tier or link "
                  "its bytes kept busiest (its bottleneck) and at its achieved FLOP/s over its "
                  "busy time; small points are single ops.")

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1200px;color:#222;padding:0 1em}
table{border-collapse:collapse;margin:0.6em 0;font-size:0.85em}
th,td{border:1px solid #ccc;padding:2px 6px;text-align:left}
td.num{text-align:right;font-variant-numeric:tabular-nums}
th{background:#f0f0f0}
img{max-width:100%;height:auto;border:1px solid #eee}
pre{background:#f7f7f7;padding:0.6em;overflow:auto;font-size:0.8em}
h2{border-bottom:1px solid #ddd;margin-top:1.6em}
"""

# Marks the body with "<loaded>/<total>" figures once the page has loaded, so a headless
# browser (and a person with the developer tools) can check that every figure decoded.
_SCRIPT = ("window.addEventListener('load',function(){var i=Array.prototype.slice.call(document.images);"
           "document.body.setAttribute('data-figures-loaded',i.filter(function(x){return x.complete&&"
           "x.naturalWidth>0}).length+'/'+i.length);});")


_GAP_NOTE = ("What the event replay adds to the contention-free roofline level, summed per op kind "
             "(hwsim run --gap): queue cycles wait for a busy unit, contention cycles are slower "
             "shared channels; gap_ratio 1.0 means no contention.")


def _gap_table(folder: Path | None) -> pd.DataFrame | None:
    """The run's ``gap_by_kind.csv`` (written by ``hwsim run --gap``), if it has one."""
    path = folder / GAP_BY_KIND if folder is not None else None
    return pd.read_csv(path) if path is not None and path.is_file() else None


def figure_html(png: bytes, alt: str) -> str:
    """An inline ``<figure>`` with ``png`` as a data URI (for renderers of other folder kinds)."""
    return f'<figure><img alt="{html.escape(alt)}" src="{png_data_uri(png)}"></figure>'


def html_page(title: str, body: str) -> str:
    """A complete, self-contained page around ``body``, with the report's style and the
    figure-load marker (for renderers of other folder kinds)."""
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>\n"
            f"<body><h1>{html.escape(title)}</h1>\n{body}\n<script>{_SCRIPT}</script></body></html>\n")
