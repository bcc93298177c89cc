"""The calibration tables the README and calibration/README.md show are what hwsim calibrate prints."""

from __future__ import annotations

from hwsim.cli.main import main

from ..conftest import ROOT


def test_the_documented_calibration_table_is_todays(capsys):
    assert main(["calibrate", "--summary-only"]) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    for doc in ("README.md", "calibration/README.md"):
        text = (ROOT / doc).read_text()
        start = text.index("category            rows")
        shown = text[start:text.index("```", start)].strip().splitlines()
        assert printed[:len(shown)] == shown, doc
