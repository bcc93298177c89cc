"""The documentation the program cites is in the repository, with the sections it names."""

from __future__ import annotations

import re

from hwsim.cli.main import main
from hwsim.cli.trace_cmd import WORKLOADS_DOC

from .conftest import ROOT


def workloads_sections() -> set[str]:
    text = (ROOT / WORKLOADS_DOC).read_text()
    return set(re.findall(r"^#{2,3} (\d+(?:\.\d+)?)[. ]", text, flags=re.MULTILINE))


def test_trace_list_cites_the_workloads_document_of_the_repository(capsys):
    assert main(["trace", "--list"]) == 0
    out = capsys.readouterr().out
    assert WORKLOADS_DOC in out.splitlines()[1]
    assert (ROOT / WORKLOADS_DOC).is_file()


def test_every_workloads_section_the_presets_cite_exists(capsys):
    assert main(["trace", "--list"]) == 0
    cited = re.findall(r"WORKLOADS(?:\.md)? §(\d+(?:\.\d+)?)(?:[-–](\d+\.\d+))?", capsys.readouterr().out)
    sections = workloads_sections()
    assert len(cited) >= 4 and {"1.5", "2.4", "3.6"} <= sections
    for first, last in cited:
        assert first in sections, first
        assert not last or last in sections, last
