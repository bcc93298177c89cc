"""The HTML report renders in a real browser (headless Chromium) with every figure decoded."""

from __future__ import annotations

import re
import subprocess

import pytest

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions")


#: The window the pages must fit, in CSS pixels.
WINDOW = (1400, 900)


def rendered_dom(chromium: str, page, profile) -> str:
    """The DOM of ``page`` after its load event, as headless Chromium serialises it, in a
    window of ``WINDOW``."""
    try:
        done = subprocess.run([chromium, *FLAGS, f"--window-size={WINDOW[0]},{WINDOW[1]}",
                               f"--user-data-dir={profile}", "--dump-dom", page.as_uri()],
                              capture_output=True, text=True, timeout=90)
    except subprocess.TimeoutExpired:
        pytest.fail("headless chromium did not finish rendering within 90 s")
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def figures_loaded(dom: str) -> tuple[int, int]:
    match = re.search(r'data-figures-loaded="(\d+)/(\d+)"', dom)
    assert match, "the page's load script did not run"
    return int(match.group(1)), int(match.group(2))


def page_width(dom: str) -> int:
    match = re.search(r'data-page-width="(\d+)"', dom)
    assert match, "the page's load script did not run"
    return int(match.group(1))


def check_page(chromium: str, page, profile) -> str:
    """Every figure of ``page`` decodes and the page is no wider than the window."""
    dom = rendered_dom(chromium, page, profile)
    loaded, total = figures_loaded(dom)
    assert total > 0 and loaded == total, (loaded, total)
    assert page_width(dom) <= WINDOW[0], page_width(dom)
    return dom


def test_comparison_and_sweep_pages_fit_the_window_with_every_figure(chromium, tmp_path, offload_tiny,
                                                                     offload_h200):
    from hwsim.reports import compare, html
    from hwsim.sweep import load_sweep, run_sweep

    from ..conftest import ROOT

    cmp = compare.compare_runs({"tiny": offload_tiny, "h200-with-a-long-label": offload_h200}, tmp_path / "cmp")
    check_page(chromium, html.write_report(cmp), tmp_path / "p1")
    spec = load_sweep(ROOT / "examples" / "sweeps" / "hbm-link-sample.yaml")
    run_sweep(spec, tmp_path / "sweep", workers=0, quiet=True, fidelity="roofline")
    dom = check_page(chromium, html.write_report(tmp_path / "sweep"), tmp_path / "p2")
    assert "hwsim sweep h200-memory-sample" in dom


def test_a_too_wide_page_is_detected_by_the_same_check(chromium, reported_run, tmp_path):
    page = reported_run.read_text().replace("<body>", '<body><div style="width:2000px">wide</div>', 1)
    path = tmp_path / "wide.html"
    path.write_text(page)
    assert page_width(rendered_dom(chromium, path, tmp_path / "profile")) > WINDOW[0]


def test_report_figures_all_load_in_headless_chromium(chromium, reported_run, tmp_path):
    dom = check_page(chromium, reported_run, tmp_path / "profile")
    assert figures_loaded(dom) == (2, 2)
    assert "Energy provenance" in dom


def test_a_broken_figure_is_detected_by_the_same_check(chromium, reported_run, tmp_path):
    page = reported_run.read_text()
    broken = re.sub(r'src="data:image/png;base64,[^"]{0,40}', 'src="data:image/png;base64,AAAA', page, count=1)
    assert broken != page
    path = tmp_path / "broken.html"
    path.write_text(broken)
    loaded, total = figures_loaded(rendered_dom(chromium, path, tmp_path / "profile"))
    assert (loaded, total) == (1, 2)
