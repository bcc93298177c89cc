"""Human-readable physical quantities ("3.35 TB/s", "50 MiB", "1.755 GHz", "3.9 pJ/bit").

Every physical parameter in a machine YAML is written with its unit and normalised once, at
load time, to one base unit per dimension:

=============  ==============  =====================================
dimension      base unit       accepted examples
=============  ==============  =====================================
``bytes``      byte            ``80 GB``, ``50 MiB``, ``64 B``, ``512 KiB``
``bandwidth``  byte / second   ``3.35 TB/s``, ``63 GB/s``, ``900 GiB/s``
``frequency``  hertz           ``1.755 GHz``, ``800 MHz``
``time``       second          ``500 ns``, ``7 ns``, ``1.2 us``
``energy``     picojoule       ``2.89 fJ``, ``1.1 pJ``, ``1.3 nJ``
``energy_bit`` picojoule / bit ``3.9 pJ/bit``, ``1.3 pJ/b``
``power``      watt            ``700 W``, ``35 mW``
``flops``      FLOP / second   ``989.4 TFLOP/s``, ``66.9 TFLOPS``
``count``      plain number    ``132``, ``4096``
=============  ==============  =====================================

Decimal prefixes (k, M, G, T, P) are powers of 1000 and binary prefixes (Ki, Mi, Gi, Ti)
powers of 1024, as in the IEC standard: "GB" is 1e9 bytes, "GiB" is 2**30 bytes.
A bare number is accepted for every dimension and read in the base unit.
"""

from __future__ import annotations

import re

from hwsim.errors import ConfigError

DECIMAL = {"": 1.0, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15}
BINARY = {"Ki": 2.0**10, "Mi": 2.0**20, "Gi": 2.0**30, "Ti": 2.0**40, "Pi": 2.0**50}
SUBUNIT = {"": 1.0, "m": 1e-3, "u": 1e-6, "µ": 1e-6, "n": 1e-9, "p": 1e-12, "f": 1e-15, "a": 1e-18}

# dimension -> (unit symbols accepted, scale of that symbol to the base unit, prefix family)
_UNITS: dict[str, list[tuple[str, float, str]]] = {
    "bytes": [("B", 1.0, "size"), ("bytes", 1.0, "size"), ("b", 0.125, "size"), ("bit", 0.125, "size")],
    "bandwidth": [("B/s", 1.0, "size"), ("Bps", 1.0, "size"), ("bit/s", 0.125, "size"), ("b/s", 0.125, "size"), ("bps", 0.125, "size")],
    "frequency": [("Hz", 1.0, "size")],
    "time": [("s", 1.0, "sub"), ("sec", 1.0, "sub")],
    "energy": [("J", 1e12, "sub")],
    "energy_bit": [("J/bit", 1e12, "sub"), ("J/b", 1e12, "sub")],
    "power": [("W", 1.0, "sub")],
    "flops": [("FLOP/s", 1.0, "size"), ("FLOPS", 1.0, "size"), ("OP/s", 1.0, "size"), ("OPS", 1.0, "size")],
    "count": [],
}

_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_QUANTITY = re.compile(rf"^\s*({_NUMBER})\s*(\S*)\s*$")

BASE_UNIT = {
    "bytes": "B",
    "bandwidth": "B/s",
    "frequency": "Hz",
    "time": "s",
    "energy": "pJ",
    "energy_bit": "pJ/bit",
    "power": "W",
    "flops": "FLOP/s",
    "count": "",
}


def _scale_of(symbol: str, dimension: str) -> float | None:
    """Return the factor that converts one ``symbol`` to the base unit, or None if unknown."""
    for unit, scale, family in _UNITS[dimension]:
        if not symbol.endswith(unit):
            continue
        prefix = symbol[: len(symbol) - len(unit)]
        prefixes = dict(DECIMAL, **BINARY) if family == "size" else SUBUNIT
        if family == "sub" and prefix in DECIMAL and prefix not in SUBUNIT:
            prefixes = DECIMAL  # "kW", "MJ" are legal too
        if prefix in prefixes:
            return scale * prefixes[prefix]
    return None


def parse_quantity(value: object, dimension: str, where: str = "") -> float:
    """Parse ``value`` (a number or a string with a unit) into the base unit of ``dimension``.

    Raises ConfigError naming ``where`` (the key path) when the unit does not match the
    dimension or the text is not a quantity.
    """
    if dimension not in _UNITS:
        raise ValueError(f"unknown dimension {dimension!r}")
    if isinstance(value, bool):
        raise ConfigError(f"{where}: expected a {dimension} quantity, got {value!r}")
    if isinstance(value, int | float):
        return float(value)
    if not isinstance(value, str):
        raise ConfigError(f"{where}: expected a {dimension} quantity, got {value!r}")
    match = _QUANTITY.match(value)
    if not match:
        raise ConfigError(f"{where}: cannot read {value!r} as a {dimension} quantity "
                          f"(expected a number and a unit, e.g. '3.35 TB/s')")
    number, symbol = float(match.group(1)), match.group(2)
    if symbol == "":
        return number
    scale = _scale_of(symbol, dimension)
    if scale is None:
        examples = ", ".join(u for u, _, _ in _UNITS[dimension]) or "no unit"
        raise ConfigError(f"{where}: unit {symbol!r} in {value!r} is not a {dimension} unit "
                          f"(expected one of: {examples}, with a prefix)")
    return number * scale


def format_quantity(value: float, dimension: str) -> str:
    """Format a base-unit value for people: ``format_quantity(3.35e12, 'bandwidth') -> '3.35 TB/s'``."""
    unit = BASE_UNIT[dimension]
    if dimension in ("energy", "energy_bit"):
        for prefix, scale in (("m", 1e9), ("u", 1e6), ("n", 1e3), ("p", 1.0), ("f", 1e-3)):
            if abs(value) >= scale or prefix == "f":
                return f"{value / scale:.4g} {prefix}{unit[1:]}"
    if dimension == "time":
        for prefix, scale in (("", 1.0), ("m", 1e-3), ("u", 1e-6), ("n", 1e-9)):
            if abs(value) >= scale or prefix == "n":
                return f"{value / scale:.4g} {prefix}s"
    for prefix, scale in (("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.4g} {prefix}{unit}"
    return f"{value:.4g} {unit}".rstrip()
