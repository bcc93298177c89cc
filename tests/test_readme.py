"""The README's Python examples run as written (from the repository root), and the
commands the README and docs show parse and name files that exist."""

from __future__ import annotations

import os
import re
import shlex

import pytest
import yaml

from hwsim.cli.main import build_parser, main

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


def shell_commands(text: str, program: str) -> list[list[str]]:
    """Every ``program ...`` command in the ``sh`` blocks of ``text`` and in the ``run:``
    steps of its CI workflow (``yaml`` blocks with ``jobs:``), continuations joined and
    comments dropped, split into words."""
    scripts = re.findall(r"```sh\n(.*?)```", text, flags=re.S)
    for block in re.findall(r"```yaml\n(.*?)```", text, flags=re.S):
        workflow = yaml.safe_load(block)
        if isinstance(workflow, dict) and "jobs" in workflow:
            scripts += [step["run"] for job in workflow["jobs"].values() for step in job["steps"] if "run" in step]
    commands = []
    for script in scripts:
        for line in script.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if words[:1] == [program] and not any(w.startswith("[") for w in words):  # not a synopsis
                commands.append(words[1:])
    return commands


DOCUMENTED = [(path.name, words) for path in (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")))
              for words in shell_commands(path.read_text(), "hwsim")]
#: Folders of the repository that documented commands name files in.
REPOSITORY_FOLDERS = ("arch_configs/", "examples/", "tests/", "traces/", "workloads/")


def test_the_docs_show_hwsim_commands():
    assert sum(name == "README.md" for name, _ in DOCUMENTED) >= 10
    assert any(name == "README.md" and words[0] == "regress" and "--junit" in words for name, words in DOCUMENTED)


@pytest.mark.parametrize(("doc", "words"), DOCUMENTED, ids=[" ".join(w[:2]) for _, w in DOCUMENTED])
def test_documented_commands_parse_and_name_files_that_exist(doc, words):
    parser = build_parser()
    try:
        parser.parse_args(words)
    except SystemExit as stop:
        if words == ["--version"] and stop.code == 0:
            return   # prints the version and exits, as documented
        pytest.fail(f"{doc}: 'hwsim {' '.join(words)}' does not parse (exit {stop.code})")
    for word in words:
        path = word.split("=", 1)[-1]
        if path.startswith(REPOSITORY_FOLDERS):
            assert (ROOT / path).exists(), f"{doc}: 'hwsim {' '.join(words)}' names {path}, which does not exist"


def test_the_readme_run_output_is_what_its_commands_print(tmp_path, monkeypatch, capsys):
    commands = {words[0]: words for doc, words in DOCUMENTED
                if doc == "README.md" and words[0] in ("trace", "run") and "wk.parquet" in words}
    monkeypatch.chdir(tmp_path)
    (tmp_path / "arch_configs").symlink_to(ROOT / "arch_configs")
    assert main(commands["trace"]) == 0
    capsys.readouterr()
    assert main(commands["run"]) == 0
    printed = capsys.readouterr().out.splitlines()
    readme = (ROOT / "README.md").read_text()
    shown = readme[readme.index("h200  wk.parquet"):]
    shown = shown[:shown.index("```")].splitlines()
    assert printed == shown
