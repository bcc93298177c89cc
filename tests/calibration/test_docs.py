"""The calibration tables the README and calibration/README.md show are today's."""

from __future__ import annotations

from hwsim.calibration.table import summarize
from hwsim.cli.calibrate_cmd import format_summary

from ..conftest import ROOT


def test_the_documented_calibration_table_is_todays(table):
    printed = format_summary(summarize(table)).splitlines()
    for doc in ("README.md", "calibration/README.md"):
        text = (ROOT / doc).read_text()
        start = text.index("category            rows")
        shown = text[start:text.index("```", start)].strip().splitlines()
        assert shown == printed, doc
