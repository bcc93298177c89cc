"""Typed, unit-aware configuration dataclasses built from YAML mappings.

A config class is a frozen dataclass whose fields are declared with :func:`param`: the
default, the physical dimension (see :mod:`hwsim.units`), the allowed range and a mandatory
help string. The same dataclass is the schema (validation, :mod:`hwsim.config.json_schema`),
the documentation (``hwsim describe``) and the typed object the simulator uses. Every file
a user writes (machines and their components, sweep files, regress cases, workload specs)
is described this way and built by :func:`build_config`.

Rules that involve several fields live in the class's ``problems()`` hook: a method that
yields ``(key, message)`` for each broken rule. :func:`build_config` runs it at load time,
so a file is rejected when it is read, not later when it is simulated.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import re
import typing
from dataclasses import MISSING, field, fields
from typing import Any

from hwsim.config.issues import Issues
from hwsim.errors import ConfigError, did_you_mean, shown
from hwsim.memo import remember
from hwsim.units import BASE_UNIT, parse_quantity

REQUIRED = MISSING
#: Physical dimensions (every unit of :mod:`hwsim.units` but plain counts): never negative
#: unless a field says otherwise, and at most :data:`PHYSICAL_LIMIT` in base units.
PHYSICAL = tuple(d for d in BASE_UNIT if d != "count")
#: Largest magnitude of a physical quantity in base units (1e30 bytes, Hz, pJ, s, ...): far
#: beyond any machine, and small enough that products of two stay finite.
PHYSICAL_LIMIT = 1e30
#: Largest whole number a count field takes unless it says otherwise (cycle and byte
#: arithmetic on int64 must not wrap).
INT_LIMIT = 2**40
#: Longest text a text field takes unless it says otherwise.
TEXT_LIMIT = 4096


def param(default: Any = REQUIRED, *, unit: str = "count", help: str,
          choices: tuple[str, ...] | None = None, minimum: float | None = None,
          exclusive_minimum: bool = False, maximum: float | None = None,
          exclusive_maximum: bool = False, items: Any = None, config: type | None = None,
          max_length: int | None = None, pattern: str | None = None, **extra: Any) -> Any:
    """Declare a config field with its default, physical ``unit`` dimension and help text.

    ``unit`` is a dimension of :mod:`hwsim.units` ("bytes", "bandwidth", "frequency", "time",
    "energy", "energy_bit", "power", "flops", "count"), "text", "bool", "list" (``items``:
    a dimension, "text" or a config class; ``single=True`` lets one item be written without
    the list), "scalar" (a number or a text), "map" (any values), ``"map:<dimension>"`` /
    ``"map:text"``, or "config" (a nested mapping built as the class ``config``). Numbers
    must be finite and within ``minimum``/``maximum``; physical quantities are never
    negative unless ``minimum`` says so. ``extra`` keys are kept in the field's metadata;
    ``per`` names what a quantity is counted per (``per="FLOP"``: an energy in pJ/FLOP, see
    :func:`field_unit`).
    """
    metadata = {"unit": unit, "help": help, "choices": choices, "minimum": minimum,
                "exclusive_minimum": exclusive_minimum, "maximum": maximum,
                "exclusive_maximum": exclusive_maximum, "items": items, "config": config,
                "max_length": max_length, "pattern": pattern, **extra}
    if isinstance(default, dict | list):
        frozen_default = default
        return field(default_factory=lambda: type(frozen_default)(frozen_default), metadata=metadata)
    return field(default=default, metadata=metadata)


def build_config(cls: type, data: Any, where: str, issues: Issues | None = None) -> Any:
    """Build the dataclass ``cls`` from the mapping ``data``; ``where`` is its key path.

    Unknown keys, missing required keys, bad units, out-of-range and non-finite values and
    broken cross-field rules (the class's ``problems()`` hook) are all reported, each naming
    its full key path (``components.hbm.bandwith: unknown key (did you mean 'bandwidth'?)``).
    With ``issues`` given, problems are added to it and None is returned if there were any;
    without, they are raised together as one ConfigError.
    """
    own = issues is None
    issues = Issues() if own else issues
    before = len(issues)
    result = _build(cls, data, where, issues)
    if own:
        issues.raise_if_any()
    return result if len(issues) == before else None


def _build(cls: type, data: Any, where: str, issues: Issues) -> Any:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        issues.add(where, f"expected a mapping, got {_type_name(data)}")
        return None
    known, required, hints = _schema(cls)
    before = len(issues)
    for key in data:
        if key not in known:
            issues.add(_join(where, str(key)), f"unknown key{did_you_mean(str(key), tuple(known))}")
    for name in required:
        if data.get(name) is None:
            issues.add(_join(where, name), f"required key is missing ({known[name].metadata.get('help', '')})"
                       if name not in data else "required key has no value")
    values: dict[str, Any] = {}
    notes: dict[str, str] = {}
    for name, raw in data.items():
        f = known.get(name)
        if f is None or raw is None:
            continue
        path = _join(where, name)
        if isinstance(raw, dict) and "ref" in raw and f.metadata.get("unit") in ("energy", "energy_bit", "power"):
            from hwsim.energy.library import resolve  # only machines that use references need it

            try:
                values[name], notes[name] = resolve(raw, f.metadata["unit"], path)
            except ConfigError as err:
                issues.add_located(err, path)
            continue
        value = _converted(cls, name, raw, f, hints[name], path, issues)
        if value is not _BAD:
            values[name] = value
    if notes:
        if "provenance" not in known:
            issues.add(where, "energy references need a component with a provenance field")
        else:
            values["provenance"] = {**notes, **values.get("provenance", {})}
    if len(issues) > before:
        return None
    try:
        built = cls(**values)
    except ConfigError as err:   # a class that still checks in __post_init__
        issues.add_located(err, where)
        return None
    hook = getattr(built, "problems", None)
    if callable(hook):
        for key, message in hook():
            issues.add(_join(where, key), message)
    return built


#: Scalar values converted lately, by (config class, field, raw type, raw value): the points
#: of a sweep write the same values into every field but the ones their axes change.
_CONVERTED: dict[tuple, Any] = {}
_CONVERTED_SIZE = 4096


def _converted(cls: type, name: str, raw: Any, f: dataclasses.Field, hint: Any, path: str, issues: Issues) -> Any:
    """:func:`convert_value` of field ``name`` of ``cls``, remembered for scalar values that
    convert (a conversion does not depend on where the value is written; a problem is
    reported every time, naming its path)."""
    if not isinstance(raw, str | int | float):   # bool is an int
        return convert_value(raw, f, hint, path, issues)
    key = (cls, name, type(raw), raw)
    found = _CONVERTED.get(key, _BAD)
    if found is _BAD:
        before = len(issues)
        found = convert_value(raw, f, hint, path, issues)
        if found is not _BAD and len(issues) == before:
            remember(_CONVERTED, key, found, _CONVERTED_SIZE)
    return found


class _Bad:
    """Marker of a value that failed conversion (its problem is already recorded)."""


_BAD = _Bad()


@functools.cache
def _type_hints(cls: type) -> dict[str, Any]:
    """Resolved field annotations of a config class (resolving them is slow; classes are few)."""
    return typing.get_type_hints(cls)


@functools.cache
def _schema(cls: type) -> tuple[dict[str, dataclasses.Field], tuple[str, ...], dict[str, Any]]:
    """(fields by name, required names, type hints) of a config class, computed once."""
    known = {f.name: f for f in fields(cls) if f.init}
    required = tuple(name for name, f in known.items() if f.default is MISSING and f.default_factory is MISSING)
    return known, required, _type_hints(cls)


def _type_name(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "text", bool: "true/false", int: "a number",
            float: "a number"}.get(type(value), type(value).__name__)


def convert_value(value: Any, f: dataclasses.Field, hint: Any, path: str, issues: Issues) -> Any:
    """``value`` converted to field ``f``'s type (base units), or the marker ``_BAD`` after
    recording why it cannot be."""
    meta = f.metadata
    unit = meta.get("unit", "count")
    if unit == "text":
        return _text(value, meta, path, issues)
    if unit == "bool":
        if not isinstance(value, bool):
            issues.add(path, f"expected true or false, got {shown(value)}")
            return _BAD
        return value
    if unit == "scalar":   # a number or a text, interpreted by the caller
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            issues.add(path, f"expected a number or a text, got {_type_name(value)} {shown(value)}")
            return _BAD
        if isinstance(value, float) and not math.isfinite(value):
            issues.add(path, f"must be a finite number, got {shown(value)}")
            return _BAD
        return value
    if unit == "config":
        built = _build(meta["config"], value, path, issues)
        return _BAD if built is None else built
    if unit == "list":
        return _list(value, meta, path, issues)
    if unit == "map" or unit.startswith("map:"):
        return _map(value, f, unit, path, issues)
    number = _number(value, unit, meta, hint, path, issues)
    return number


def _text(value: Any, meta: dict, path: str, issues: Issues) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool) and not meta.get("choices"):
        value = str(value)   # a number written where text is expected (a name "100"): keep it as text
    if not isinstance(value, str):
        issues.add(path, f"expected text, got {_type_name(value)} {shown(value)}")
        return _BAD
    limit = meta.get("max_length") or TEXT_LIMIT
    if len(value) > limit:
        issues.add(path, f"at most {limit} characters, got {len(value)}")
        return _BAD
    choices = meta.get("choices")
    if choices and value not in choices:
        issues.add(path, f"{shown(value)} is not one of {', '.join(choices)}{did_you_mean(value, choices)}")
        return _BAD
    pattern = meta.get("pattern")
    if pattern and not re.fullmatch(pattern, value):
        issues.add(path, f"{shown(value)} is not allowed here ({meta.get('pattern_help') or 'pattern ' + pattern})")
        return _BAD
    return value


def _list(value: Any, meta: dict, path: str, issues: Issues) -> Any:
    if not isinstance(value, list) and meta.get("single"):
        value = [value]    # one item may be written without the list
    if not isinstance(value, list):
        issues.add(path, f"expected a list, got {_type_name(value)} {shown(value)}")
        return _BAD
    items = meta.get("items")
    if items is None:
        return tuple(value)
    out, bad = [], False
    shorthand = getattr(items, "SHORTHAND", None) if isinstance(items, type) else None
    for index, item in enumerate(value):
        child = f"{path}[{index}]"
        if isinstance(items, type):
            if shorthand and not isinstance(item, dict):
                item = {shorthand: item}
            built = _build(items, item, child, issues)
            bad |= built is None
            out.append(built)
            continue
        item_field = field(metadata={**meta, "unit": items, "items": None})
        converted = convert_value(item, item_field, float, child, issues)
        bad |= converted is _BAD
        out.append(converted)
    return _BAD if bad else tuple(out)


def _map(value: Any, f: dataclasses.Field, unit: str, path: str, issues: Issues) -> Any:
    if not isinstance(value, dict):
        issues.add(path, f"expected a mapping, got {_type_name(value)} {shown(value)}")
        return _BAD
    if unit == "map":
        return {str(k): v for k, v in value.items()}
    dim = unit.split(":", 1)[1]
    out, bad = {}, False
    for key, item in value.items():
        child = _join(path, str(key))
        if dim == "text":
            if isinstance(item, dict | list) or item is None:
                issues.add(child, f"expected text, got {_type_name(item)}")
                bad = True
            else:
                out[str(key)] = str(item)
            continue
        number = _number(item, dim, f.metadata, float, child, issues)
        bad |= number is _BAD
        out[str(key)] = number
    return _BAD if bad else out


def _number(value: Any, dim: str, meta: dict, hint: Any, path: str, issues: Issues) -> Any:
    try:
        number = parse_quantity(value, dim, path)
    except ConfigError as err:
        issues.add(path, err.problems[0].removeprefix(f"{path}: "))
        return _BAD
    if not math.isfinite(number):
        issues.add(path, f"must be a finite number, got {shown(value)}")
        return _BAD
    minimum, maximum = meta.get("minimum"), meta.get("maximum")
    if minimum is None and dim in PHYSICAL:
        minimum = 0.0
    integer = hint is int or hint == "int" or int in typing.get_args(hint)
    if maximum is None:
        maximum = PHYSICAL_LIMIT if dim in PHYSICAL else INT_LIMIT if integer else None
    if minimum is not None:
        if meta.get("exclusive_minimum") and not number > minimum:
            issues.add(path, f"must be > {_bound(minimum)}, got {shown(value)}")
            return _BAD
        if number < minimum:
            issues.add(path, f"must be >= {_bound(minimum)}, got {shown(value)}")
            return _BAD
    if maximum is not None:
        if meta.get("exclusive_maximum") and not number < maximum:
            issues.add(path, f"must be < {_bound(maximum)}, got {shown(value)}")
            return _BAD
        if number > maximum:
            issues.add(path, f"must be <= {_bound(maximum)}, got {shown(value)}")
            return _BAD
    if integer:
        if number != int(number):
            issues.add(path, f"expected a whole number, got {shown(value)}")
            return _BAD
        return int(number)
    return number


def _bound(value: float) -> str:
    """A range bound for people: ``1,099,511,627,776`` rather than ``1.09951e+12``."""
    return f"{int(value):,}" if float(value).is_integer() and abs(value) < 1e16 else f"{value:g}"


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def value_range(f: dataclasses.Field, hint: Any = float) -> str:
    """The allowed range of a numeric field as text (``"> 0"``, ``">= 1, <= 1"``), or ""."""
    meta = f.metadata
    unit = meta.get("unit", "count")
    dim = unit.split(":", 1)[1] if unit.startswith("map:") else unit
    if dim in ("text", "bool", "list", "map", "config", "scalar"):
        return ""
    minimum, maximum = meta.get("minimum"), meta.get("maximum")
    if minimum is None and dim in PHYSICAL:
        minimum = 0.0
    parts = []
    if minimum is not None:
        parts.append(f"{'>' if meta.get('exclusive_minimum') else '>='} {_bound(minimum)}")
    if maximum is not None:
        parts.append(f"{'<' if meta.get('exclusive_maximum') else '<='} {_bound(maximum)}")
    return ", ".join(parts)


def field_unit(f: dataclasses.Field) -> str:
    """The base unit a field's value is in, as people read it: its dimension's base unit
    (``pJ``, ``B/s``) and what it is counted per (``pJ/FLOP`` for ``per="FLOP"``); the
    dimension name for fields that are not quantities ("text", "map")."""
    unit = f.metadata.get("unit", "count")
    if unit.startswith("map:"):
        return f"map of {BASE_UNIT.get(unit[4:], unit[4:]) or 'number'}"
    base = BASE_UNIT.get(unit, unit)
    per = f.metadata.get("per")
    return f"{base}/{per}" if per and base else base


def describe_fields(cls: type) -> list[dict[str, Any]]:
    """Rows (name, unit, default, range, choices, help) documenting ``cls`` for people."""
    rows = []
    hints = _type_hints(cls)
    for f in fields(cls):
        if not f.init:
            continue
        default = ("(required)" if f.default is MISSING and f.default_factory is MISSING
                   else f.default if f.default is not MISSING else f.default_factory())
        rows.append({"name": f.name, "unit": field_unit(f), "default": default,
                     "range": value_range(f, hints.get(f.name)),
                     "choices": f.metadata.get("choices"), "help": f.metadata.get("help", "")})
    return rows


def to_plain(obj: Any) -> Any:
    """A config dataclass as plain dicts/lists/numbers, for JSON and YAML dumps."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_plain(getattr(obj, f.name)) for f in fields(obj)}
    if isinstance(obj, dict):
        return {str(k): to_plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_plain(v) for v in obj]
    return obj
