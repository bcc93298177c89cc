"""Notebook display: a result renders as HTML tables, progress updates one cell line."""

from __future__ import annotations

import sys
import types

from hwsim.progress import Progress


def test_a_result_shows_its_headline_and_resources_in_a_notebook(offload_h200):
    page = offload_h200._repr_html_()
    assert "hwsim run on h200" in page and "<caption>tiers</caption>" in page
    assert "141 GB" in page and "1.41e+11" not in page   # capacities in units for people
    assert "Invalid run" not in page


def fake_ipython(monkeypatch, kernel: bool) -> list:
    """An IPython module whose display handles record their updates."""
    updates: list = []

    class Handle:
        def update(self, obj):
            updates.append(obj.data)

    display_module = types.SimpleNamespace(
        Pretty=lambda text: types.SimpleNamespace(data=text),
        display=lambda obj, display_id: (updates.append(obj.data), Handle())[1])
    shell = types.SimpleNamespace(kernel=object()) if kernel else types.SimpleNamespace()
    ipython = types.ModuleType("IPython")
    ipython.get_ipython = lambda: shell
    ipython.display = display_module
    monkeypatch.setitem(sys.modules, "IPython", ipython)
    monkeypatch.setitem(sys.modules, "IPython.display", display_module)
    return updates


def test_progress_updates_one_notebook_line_inside_a_kernel(monkeypatch):
    updates = fake_ipython(monkeypatch, kernel=True)
    with Progress(3, "sweep", min_interval=0.0) as bar:
        for _ in range(3):
            bar.advance()
    assert updates[0] == "" and updates[-1].startswith("sweep 3/3 [")
    assert len(updates) >= 4


def test_progress_stays_silent_in_a_plain_ipython_shell_or_when_quiet(monkeypatch):
    updates = fake_ipython(monkeypatch, kernel=False)
    with Progress(2, "x") as bar:
        bar.advance(2)
    assert updates == [] and not bar.enabled
    fake_ipython(monkeypatch, kernel=True)
    assert not Progress(2, "x", quiet=True).enabled
