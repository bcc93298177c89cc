"""The HTML report renders in a real browser (headless Chromium) with every figure decoded."""

from __future__ import annotations

import re
import subprocess

import pytest

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions")


def rendered_dom(chromium: str, page, profile) -> str:
    """The DOM of ``page`` after its load event, as headless Chromium serialises it."""
    try:
        done = subprocess.run([chromium, *FLAGS, f"--user-data-dir={profile}", "--dump-dom", page.as_uri()],
                              capture_output=True, text=True, timeout=90)
    except subprocess.TimeoutExpired:
        pytest.fail("headless chromium did not finish rendering within 90 s")
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def figures_loaded(dom: str) -> tuple[int, int]:
    match = re.search(r'data-figures-loaded="(\d+)/(\d+)"', dom)
    assert match, "the page's load script did not run"
    return int(match.group(1)), int(match.group(2))


def test_report_figures_all_load_in_headless_chromium(chromium, reported_run, tmp_path):
    dom = rendered_dom(chromium, reported_run, tmp_path / "profile")
    loaded, total = figures_loaded(dom)
    assert total == 2 and loaded == total
    assert "Energy provenance" in dom


def test_a_broken_figure_is_detected_by_the_same_check(chromium, reported_run, tmp_path):
    page = reported_run.read_text()
    broken = re.sub(r'src="data:image/png;base64,[^"]{0,40}', 'src="data:image/png;base64,AAAA', page, count=1)
    assert broken != page
    path = tmp_path / "broken.html"
    path.write_text(broken)
    loaded, total = figures_loaded(rendered_dom(chromium, path, tmp_path / "profile"))
    assert (loaded, total) == (1, 2)
