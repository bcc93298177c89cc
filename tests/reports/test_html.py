from __future__ import annotations

import base64
import re
import sys
import types

import pytest

import hwsim
from hwsim.cli.main import main
from hwsim.errors import HwsimError
from hwsim.reports import compare, html, timeline

from ..conftest import ARCH, EXAMPLES
from .conftest import is_png


def data_uris(page: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)]


def test_run_report_is_one_self_contained_page_with_figures_and_tables(reported_run):
    page = reported_run.read_text()
    assert reported_run.name == "index.html"
    images = data_uris(page)
    assert len(images) == page.count("<img") == 2  # roofline and energy
    assert all(is_png(png) for png in images)
    assert not re.search(r'(src|href)="(https?:)?//', page)  # nothing loaded from elsewhere
    for fragment in ("Roofline", "Energy provenance", "O&#x27;Connor MICRO 2017", "pJ/bit",
                     "resolved machine config", "clock_hz: 1980000000.0", "timeline.json",
                     "ui.perfetto.dev", "<table"):
        assert fragment in page, fragment


def test_run_report_writes_summary_timeline_and_artefacts_beside_it(reported_run):
    folder = reported_run.parent
    summary = (folder / "summary.md").read_text()
    assert summary.startswith("# hwsim report: h200")
    assert "| energy per work unit |" in summary and "| throughput |" in summary
    trace = timeline.read_trace_json(folder / "timeline.json.gz")
    assert trace["traceEvents"] and "ui.perfetto.dev" in summary
    for name in ("roofline.png", "roofline.csv", "energy.png", "energy_provenance.parquet", "tiers.csv"):
        assert (folder / "report" / name).is_file(), name


def test_report_is_byte_identical_when_rendered_twice(reported_run):
    folder = reported_run.parent
    before = {p.name: p.read_bytes() for p in (reported_run, folder / "summary.md", folder / "timeline.json.gz",
                                               folder / "report" / "roofline.png")}
    html.write_report(folder)
    after = {name: (folder / name if name != "roofline.png" else folder / "report" / name).read_bytes()
             for name in before}
    assert after == before


def test_comparison_report_has_the_comparison_and_a_section_per_run(tmp_path, offload_tiny, offload_h200):
    out = compare.compare_runs({"tiny": offload_tiny, "h200": offload_h200}, tmp_path / "cmp")
    index = html.write_report(out)
    page = index.read_text()
    assert "<h2>Comparison</h2>" in page and '<h2 id="run-tiny">Run tiny</h2>' in page
    assert '<h2 id="run-h200">Run h200</h2>' in page and 'href="#run-h200"' in page
    assert 'href="h200/index.html"' in page and (out / "h200" / "index.html").is_file()   # its own report
    assert "h200 / tiny" in page
    assert len(data_uris(page)) == 1 + 2 * 2
    for label in ("tiny", "h200"):
        assert timeline.read_trace_json(out / f"timeline-{label}.json.gz")["traceEvents"]
        assert (out / "report" / label / "roofline.png").is_file()
    assert "## Run h200" in (out / "summary.md").read_text()


def test_a_folder_that_is_neither_run_nor_comparison_is_refused(tmp_path, capsys):
    with pytest.raises(HwsimError, match="not a run, comparison or sweep folder"):
        html.write_report(tmp_path)
    assert main(["report", str(tmp_path)]) == 2
    assert "not a run, comparison or sweep folder" in capsys.readouterr().err
    with pytest.raises(HwsimError, match="no such folder"):
        html.write_report(tmp_path / "missing")


def test_registered_folder_kinds_are_tried_first(tmp_path, monkeypatch):
    monkeypatch.setattr(html, "_KINDS", list(html._KINDS))
    (tmp_path / "sweep.parquet").write_bytes(b"")
    seen = []

    def render(folder, **options):
        seen.append((folder, options))
        return folder / "index.html"

    html.register_folder_kind("sweep", lambda f: (f / "sweep.parquet").is_file(), render)
    assert html.folder_kind(tmp_path).name == "sweep"
    assert html.write_report(tmp_path, max_events=5) == tmp_path / "index.html"
    assert seen == [(tmp_path, {"max_events": 5})]


def test_cli_report_passes_window_and_max_events_to_the_timeline(tmp_path, capsys):
    folder = tmp_path / "run"
    assert main(["run", "--arch", str(ARCH / "tiny.yaml"), "--trace", str(EXAMPLES / "gemm.csv"),
                 "--out", str(folder), "--quiet"]) == 0
    assert main(["report", str(folder), "--window", "100:", "--max-events", "2"]) == 0
    out = capsys.readouterr().out
    assert f"report   -> {folder / 'index.html'}" in out and "ui.perfetto.dev" in out
    trace = timeline.read_trace_json(folder / "timeline.json.gz")
    assert trace["otherData"]["window_cycles"][0] == 100
    assert sum(e["ph"] == "X" for e in trace["traceEvents"]) <= 2 + 1


@pytest.mark.parametrize("window", ["abc", "5", "9:3", "-1:4"])
def test_cli_report_rejects_a_malformed_window(tmp_path, capsys, run_folder, window):
    assert main(["report", str(run_folder), f"--window={window}"]) == 2
    assert "--window" in capsys.readouterr().err


def test_report_renders_a_machine_with_sram_cam_and_dma(tmp_path, asic_run):
    folder = hwsim.write_run(asic_run, tmp_path / "asic")
    page = html.write_report(folder).read_text()
    assert len(data_uris(page)) == 2
    for fragment in ("search_energy_per_bit", "read_energy", "other memory", "Pagiamtzis"):
        assert fragment in page, fragment


def test_markdown_html_renders_headings_tables_paragraphs_and_embeds_images(tmp_path, offload_tiny):
    from hwsim.reports.energy import energy_png

    (tmp_path / "fig").mkdir()
    (tmp_path / "fig" / "a.png").write_bytes(energy_png(offload_tiny.summary, offload_tiny.records,
                                                         offload_tiny.machine))
    text = "# Title\n\nSome <text>.\n\n| a | b |\n|---|---:|\n| 1 | x |\n\n![the figure](fig/a.png)\n![gone](no.png)\n"
    page = html.markdown_html(text, tmp_path)
    assert "<h1>Title</h1>" in page and "<p>Some &lt;text&gt;.</p>" in page
    assert "<th>a</th><th>b</th>" in page and "<td>1</td><td>x</td>" in page and "---" not in page
    assert len(data_uris(page)) == 1 and 'alt="the figure"' in page
    assert "missing figure no.png" in page


def test_a_plugin_with_a_markdown_renderer_gets_an_index_html(tmp_path, monkeypatch, offload_tiny):
    from hwsim.reports.energy import energy_png

    monkeypatch.setattr(html, "_KINDS", [k for k in html._KINDS if k.name != "sweep"])
    monkeypatch.setattr(html, "_plugins_loaded", True)
    module = types.ModuleType("fake_sweep_report")

    def render_sweep(folder):
        (folder / "p.png").write_bytes(energy_png(offload_tiny.summary, offload_tiny.records, offload_tiny.machine))
        (folder / "sweep.md").write_text("# Sweep\n\n| point | x |\n|---|---|\n| p0 | 1 |\n\n![pareto](p.png)\n")
        return folder / "sweep.md"

    module.is_sweep_folder = lambda folder: (folder / "results.parquet").is_file()
    module.render_sweep = render_sweep
    monkeypatch.setitem(sys.modules, "fake_sweep_report", module)
    html._load_plugin("fake_sweep_report")
    (tmp_path / "results.parquet").write_bytes(b"")
    index = html.write_report(tmp_path)
    page = index.read_text()
    assert index == tmp_path / "index.html" and html.folder_kind(tmp_path).name == "sweep"
    assert "<h1>Sweep</h1>" in page and "<td>p0</td>" in page and len(data_uris(page)) == 1


def test_a_plugin_with_detect_and_render_functions_is_registered_under_its_kind(tmp_path, monkeypatch):
    monkeypatch.setattr(html, "_KINDS", list(html._KINDS))
    module = types.ModuleType("fake_kind")
    module.FOLDER_KIND = "study"
    module.detect_folder = lambda folder: (folder / "study.txt").is_file()
    module.render_folder = lambda folder, **options: folder / "index.html"
    monkeypatch.setitem(sys.modules, "fake_kind", module)
    html._load_plugin("fake_kind")
    html._load_plugin("hwsim.no_such_report_module")  # absent plugins are skipped
    (tmp_path / "study.txt").write_text("x")
    assert html.folder_kind(tmp_path).name == "study"


def test_markdown_cells_keep_escaped_pipes_in_their_cell():
    from hwsim.reports.page import markdown_cells

    assert markdown_cells(r"| a \| b | c |") == ["a | b", "c"]
    assert markdown_cells("| x | |") == ["x", ""]
    frame = __import__("pandas").DataFrame({"name": ["p|q"], "bytes": [2_000_000]})
    from hwsim.reports.tables import markdown_table
    row = markdown_table(frame).splitlines()[2]
    assert markdown_cells(row) == ["p|q", "2 MB"]
