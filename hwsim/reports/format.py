"""Numbers for people: every report cell in a unit a person reads at a glance.

Tables keep base units (bytes, bytes/s, FLOP, s, pJ, J, Hz) in their Parquet and CSV files;
the HTML and Markdown renderings go through :func:`human`, which picks an SI prefix
(``141 GB``, ``4.8 TB/s``, ``2.04 kJ``, ``49.78 µs``) instead of ``1.41e+11``. The unit of a
column follows from its name (:func:`column_unit`: ``capacity_bytes`` is bytes,
``energy_pj`` picojoules shown as joules, ``utilization`` a fraction shown as a percentage),
and :func:`column_title` drops that suffix from the header.
"""

from __future__ import annotations

import math
import re

#: Prefixes from the largest down; the first the value reaches is used.
_SI = (("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3), ("", 1.0), ("m", 1e-3),
       ("µ", 1e-6), ("n", 1e-9), ("p", 1e-12))
#: Units that take prefixes below one as well (energies, times, powers).
_SMALL_OK = {"J", "s", "W"}
#: Column-name suffixes and the unit of their values, most specific first.
_SUFFIXES = (
    ("_bytes_per_s", "B/s"), ("_flops_per_s", "FLOP/s"), ("_per_s", "/s"), ("_pj_per_bit", "pJ/bit"),
    ("_bytes", "B"), ("_flops", "FLOP"), ("_pj", "pJ"), ("_j", "J"), ("_w", "W"), ("_hz", "Hz"),
    ("_seconds", "s"), ("_cycles", "cycles"), ("_utilization", "fraction"), ("_share", "fraction"),
    ("_ratio", "ratio"),
)
_EXACT = {"bytes": "B", "flops": "FLOP", "seconds": "s", "cycles": "cycles", "utilization": "fraction",
          "clock": "Hz", "energy_j": "J", "ops": "count"}
#: Words dropped from a header when the cell shows the unit itself.
_UNIT_WORDS = re.compile(r"_(bytes_per_s|flops_per_s|pj_per_bit|bytes|pj|j|w|hz|seconds)$")


def column_unit(name: str) -> str:
    """The unit of a report column from its name ("" when it has none, e.g. a count)."""
    name = str(name)
    if name in _EXACT:
        return _EXACT[name]
    if name.startswith(("bytes_", "peak_bytes_")):
        return "B"
    for suffix, unit in _SUFFIXES:
        if name.endswith(suffix):
            return unit
    return ""


def column_title(name: str) -> str:
    """A header for people: ``avg_bandwidth_bytes_per_s`` -> ``avg bandwidth``."""
    text = str(name)
    if column_unit(text) in ("B", "B/s", "FLOP/s", "pJ", "J", "W", "Hz", "s", "pJ/bit") and text not in _EXACT:
        text = _UNIT_WORDS.sub("", text)
    return text.replace("_", " ")


def human(value: float, unit: str) -> str:
    """``value`` in ``unit`` (a base unit: B, B/s, FLOP, FLOP/s, s, J, pJ, W, Hz, cycles,
    fraction, ratio) as short text with 4 significant digits and an SI prefix."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    value = float(value)
    if unit == "pJ":
        value, unit = value * 1e-12, "J"
    elif unit == "pJ/bit":
        return f"{value:.4g} pJ/bit"
    if unit == "fraction":
        return f"{100 * value:.1f}%"
    if unit == "ratio":
        return f"{value:.3g}x"
    if unit in ("cycles", "count"):
        return f"{value:,.0f}" if value.is_integer() else f"{value:,.4g}"
    if not unit:
        return _plain(value)
    if value == 0:
        return f"0 {unit}"
    if unit == "s" and abs(value) >= 120:
        return f"{value / 60:.4g} min" if abs(value) < 7200 else f"{value / 3600:.4g} h"
    for prefix, scale in _SI:
        if abs(value) >= scale and (scale >= 1 or unit in _SMALL_OK):
            return f"{value / scale:.4g} {prefix}{unit}"
    return f"{value:.3g} {unit}"


def _plain(value: float) -> str:
    if value.is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    if 1e-3 <= abs(value) < 1e6:
        return f"{value:.4g}"
    for prefix, scale in _SI[:5]:
        if abs(value) >= scale:
            return f"{value / scale:.4g}{prefix}"
    return f"{value:.3g}"
