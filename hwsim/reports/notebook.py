"""Results in notebooks: what a Jupyter cell shows for a :class:`hwsim.RunResult`.

``RunResult._repr_html_`` calls :func:`result_html`: the report's headline table (with the
invalid-run banner when the working set overflowed) and its tiers, links and compute units,
in the same units for people and sortable tables as the HTML report, without figures so a
cell stays small. ``hwsim.write_run`` and ``hwsim report`` give the full page.
"""

from __future__ import annotations

import html
from typing import Any

from hwsim.reports.tables import html_table

#: Inline style for a cell's output (a notebook page has none of the report's CSS).
_STYLE = ("<style>.hwsim-result table{border-collapse:collapse;font-size:0.85em;margin:0.4em 0}"
          ".hwsim-result th,.hwsim-result td{border:1px solid #ccc;padding:2px 6px}"
          ".hwsim-result td.num{text-align:right}.hwsim-result caption{text-align:left;font-weight:600}"
          ".hwsim-result .invalid{background:#fdecea;color:#8a1c1c;padding:0.3em}</style>")


def result_html(result: Any) -> str:
    """HTML for a run: headline, then tiers, links and units (each a table)."""
    from hwsim.reports.html import _invalid_reason, headline, resource_tables

    summary = result.summary
    invalid = _invalid_reason(summary)
    parts = [_STYLE, '<div class="hwsim-result">']
    if invalid:
        parts.append(f'<p class="invalid"><strong>Invalid run</strong>: {html.escape(invalid)}</p>')
    parts.append(html_table(headline(summary, result.trace_meta), caption=f"hwsim run on {summary['machine']}"))
    for name, frame in resource_tables(summary).items():
        if len(frame):
            parts.append(html_table(frame, caption=name))
    parts.append(f"<p>{len(result.records):,} records: <code>result.records</code></p></div>")
    return "".join(parts)
