"""The building blocks of every report page: the page itself, figures with captions, and
the Markdown that sweep-like renderers write.

A page is self-contained (style and script inline, figures as data URIs), at most
``MAX_WIDTH_PX`` wide so it fits a 1,400 px window with its scroll bar, with tables that
scroll inside their own box and sort by a click on a header (numbers by their value), and
figures numbered by a CSS counter ("Figure 3. ..."). Its script marks the body with
``data-figures-loaded="<decoded>/<total>"`` and ``data-page-width="<px>"`` once loaded, so a
headless browser (and a person with the developer tools) can check every figure decoded
and nothing made the page wider than the window.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

from hwsim.reports.tables import png_data_uri

#: Widest the content may be (px); with margins it stays inside a 1,400 px window.
MAX_WIDTH_PX = 1240

STYLE = f"""
body{{font-family:system-ui,sans-serif;margin:2em auto;max-width:{MAX_WIDTH_PX}px;color:#222;padding:0 1em;
counter-reset:figure}}
.scroll{{max-width:100%;overflow-x:auto;margin:0.6em 0}}
table{{border-collapse:collapse;font-size:0.85em}}
caption{{text-align:left;font-weight:600;padding:0.2em 0}}
th,td{{border:1px solid #ccc;padding:2px 6px;text-align:left;overflow-wrap:anywhere}}
td.num{{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}}
th{{background:#f0f0f0;cursor:pointer;user-select:none}}
th[aria-sort=ascending]::after{{content:" \\25B2"}}
th[aria-sort=descending]::after{{content:" \\25BC"}}
tr.invalid td{{background:#fdecea;color:#8a1c1c}}
p.invalid{{background:#fdecea;border-left:4px solid #c62828;padding:0.5em 0.8em}}
figure{{margin:1em 0;counter-increment:figure}}
figure img{{max-width:100%;height:auto;border:1px solid #eee}}
figcaption{{font-size:0.9em;color:#444;margin-top:0.3em}}
figcaption::before{{content:"Figure " counter(figure) ". ";font-weight:600}}
pre{{background:#f7f7f7;padding:0.6em;overflow:auto;font-size:0.8em;max-width:100%}}
h2{{border-bottom:1px solid #ddd;margin-top:1.6em}}
code{{overflow-wrap:anywhere}}
"""

# Sorting: a click on a header sorts the table's rows by that column (numbers by their
# data-sort value, text by its text; a second click reverses). The load handler writes the
# figure and width marks described in the module docstring.
SCRIPT = """
document.addEventListener('click',function(e){var th=e.target.closest('table.sortable th');if(!th)return;
var table=th.closest('table'),body=table.tBodies[0],col=Array.prototype.indexOf.call(th.parentNode.children,th);
var up=th.getAttribute('aria-sort')!=='ascending';
Array.prototype.forEach.call(th.parentNode.children,function(h){h.removeAttribute('aria-sort');});
th.setAttribute('aria-sort',up?'ascending':'descending');
function key(r){var c=r.children[col];if(!c)return '';var v=c.getAttribute('data-sort');
return v===null?c.textContent:parseFloat(v);}
var rows=Array.prototype.slice.call(body.rows);
rows.sort(function(a,b){var x=key(a),y=key(b);var n=(typeof x==='number'&&typeof y==='number')?x-y:
String(x).localeCompare(String(y),undefined,{numeric:true});return up?n:-n;});
rows.forEach(function(r){body.appendChild(r);});});
window.addEventListener('load',function(){var i=Array.prototype.slice.call(document.images);
document.body.setAttribute('data-figures-loaded',i.filter(function(x){return x.complete&&x.naturalWidth>0;}).length+'/'+i.length);
document.body.setAttribute('data-page-width',String(document.documentElement.scrollWidth));});
"""


def figure_html(png: bytes, alt: str, caption: str = "") -> str:
    """An inline ``<figure>`` with ``png`` as a data URI and a numbered caption (the alt text
    when no caption is given)."""
    text = caption or alt
    return (f'<figure><img alt="{html.escape(alt)}" src="{png_data_uri(png)}">'
            f"<figcaption>{html.escape(text)}</figcaption></figure>")


def html_page(title: str, body: str) -> str:
    """A complete, self-contained page around ``body`` with the report's style and script."""
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>\n"
            f"<body><h1>{html.escape(title)}</h1>\n{body}\n<script>{SCRIPT}</script></body></html>\n")


def markdown_cells(line: str) -> list[str]:
    """The cells of a Markdown table row: split on pipes not escaped as ``\\|``, which become
    plain pipes in the cell text."""
    body = line.strip()
    body = body[1:] if body.startswith("|") else body
    body = body[:-1] if body.endswith("|") and not body.endswith("\\|") else body
    return [cell.replace("\\|", "|").strip() for cell in re.split(r"(?<!\\)\|", body)]


def markdown_html(text: str, base: Path, skip_title: bool = False) -> str:
    """HTML for the Markdown that reports write: headings, pipe tables (escaped pipes stay in
    their cell), images (embedded from files under ``base``, captioned with their alt text)
    and paragraphs; anything else is kept as text. ``skip_title`` drops a first level-1
    heading (the page title shows it)."""
    out: list[str] = []
    lines = text.splitlines()
    if skip_title and lines and lines[0].startswith("# "):
        lines = lines[1:]
    i = 0
    while i < len(lines):
        line = lines[i].rstrip()
        image = re.fullmatch(r"!\[([^\]]*)\]\(([^)\s]+)\)", line.strip())
        if line.startswith("#"):
            level = min(len(line) - len(line.lstrip("#")), 6)
            out.append(f"<h{level}>{html.escape(line.lstrip('#').strip())}</h{level}>")
        elif line.startswith("|"):
            block = []
            while i < len(lines) and lines[i].startswith("|"):
                block.append([html.escape(c) for c in markdown_cells(lines[i])])
                i += 1
            body = [r for r in block[1:] if not all(set(c) <= set("-: ") for c in r)]
            head = "".join(f"<th>{c}</th>" for c in block[0])
            rows = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in body)
            out.append(f'<div class="scroll"><table class="table sortable"><thead><tr>{head}</tr></thead>'
                       f"<tbody>{rows}</tbody></table></div>")
            continue
        elif image:
            path = (base / image.group(2)).resolve()
            out.append(figure_html(path.read_bytes(), image.group(1)) if path.is_file()
                       else f"<p>missing figure {html.escape(image.group(2))}</p>")
        elif line.strip():
            out.append(f"<p>{html.escape(line)}</p>")
        i += 1
    return "\n".join(out)
