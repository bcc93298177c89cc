"""The README's Python examples run as written (from the repository root)."""

from __future__ import annotations

import os
import re

import pytest

from .conftest import ROOT

BLOCKS = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)


def test_readme_has_python_examples():
    assert len(BLOCKS) >= 2


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_python_example_runs(index, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    code = BLOCKS[index].replace('"reports/', f'"{tmp_path}/')
    exec(compile(code, f"README.md[python block {index}]", "exec"), {"__name__": "readme"})
    assert os.getcwd() == str(ROOT)
