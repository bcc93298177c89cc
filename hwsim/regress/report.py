"""Regression results for people and CI: a text table, JUnit XML, and Markdown for PR comments."""

from __future__ import annotations

import math
import os
import xml.etree.ElementTree as ET
from pathlib import Path

from hwsim.atomic import atomic_write_text
from hwsim.regress.baseline import Change, format_value

HEADER = ("case", "metric", "old", "new", "change")


def _cell(value: int | float | str | None) -> str:
    if value is None:
        return "-"
    return value if isinstance(value, str) else format_value(value)


def _change(change: Change) -> str:
    if change.relative is None:
        return change.kind
    if math.isinf(change.relative):
        return "from 0"
    return f"{100 * change.relative:+.4g}%"


def rows(changes: list[Change]) -> list[tuple[str, ...]]:
    """(case, metric, old, new, relative change) text cells, one tuple per change."""
    return [(c.case, c.metric, _cell(c.old), _cell(c.new), _change(c)) for c in changes]


def text_table(changes: list[Change]) -> str:
    """An aligned plain-text table of ``changes`` (header included)."""
    cells = [HEADER, *rows(changes)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(HEADER))]
    lines = ["  ".join(cell.ljust(w) if i < 2 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=True)))
             for row in cells]
    return "\n".join(line.rstrip() for line in lines)


def headline(cases: list[str], changes: list[Change], tolerance: float) -> str:
    """One line: how many cases failed, at which tolerance."""
    failed = sorted({c.case for c in changes if c.failed})
    total = len(set(cases) | {c.case for c in changes})   # a case only in the baseline counts too
    tol = f"tolerance {100 * tolerance:g}%"
    if not failed:
        return f"hwsim regress: all {total} cases match the baseline ({tol})"
    return f"hwsim regress: {len(failed)} of {total} cases failed ({tol})"


def markdown(cases: list[str], changes: list[Change], tolerance: float) -> str:
    """A Markdown report for a PR comment: headline, failures, then changes within tolerance."""
    failed = [c for c in changes if c.failed]
    within = [c for c in changes if not c.failed]
    parts = [f"### {headline(cases, changes, tolerance)}", ""]

    def table(items: list[Change]) -> list[str]:
        out = ["| case | metric | old | new | change |", "|---|---|---:|---:|---:|"]
        for row in rows(items):
            out.append("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |")
        return out

    if failed:
        parts += table(failed) + [""]
    if within:
        parts += [f"<details><summary>{len(within)} changes within tolerance</summary>", ""]
        parts += table(within) + ["", "</details>", ""]
    return "\n".join(parts)


def junit_xml(cases: list[str], changes: list[Change], tolerance: float) -> str:
    """JUnit XML: one testcase per case (every case run or pinned), failures carry the table."""
    names = sorted(set(cases) | {c.case for c in changes})
    by_case: dict[str, list[Change]] = {}
    for change in changes:
        by_case.setdefault(change.case, []).append(change)
    failing = [n for n in names if any(c.failed for c in by_case.get(n, []))]
    suites = ET.Element("testsuites")
    suite = ET.SubElement(suites, "testsuite", name="hwsim-regress", tests=str(len(names)),
                          failures=str(len(failing)), errors="0", skipped="0")
    for name in names:
        case = ET.SubElement(suite, "testcase", classname="hwsim.regress", name=name)
        bad = [c for c in by_case.get(name, []) if c.failed]
        if bad:
            kinds = sorted({c.kind for c in bad})
            failure = ET.SubElement(case, "failure", type=", ".join(kinds),
                                    message=f"{len(bad)} metric(s) outside tolerance "
                                            f"{100 * tolerance:g}% or not comparable")
            failure.text = text_table(bad)
    ET.indent(suites)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write a report file atomically (folders created)."""
    return atomic_write_text(path, text)
