"""Typed, unit-aware configuration dataclasses built from YAML mappings.

A config class is a frozen dataclass whose fields are declared with :func:`param`: the
default, the physical dimension (see :mod:`hwsim.units`) and a mandatory help string. The
same dataclass is the schema (validation), the documentation (``hwsim describe``) and the
typed object the simulator uses.
"""

from __future__ import annotations

import dataclasses
import functools
import typing
from dataclasses import MISSING, field, fields
from typing import Any

from hwsim.errors import ConfigError, did_you_mean
from hwsim.units import BASE_UNIT, parse_quantity

REQUIRED = MISSING


def param(default: Any = REQUIRED, *, unit: str = "count", help: str,
          choices: tuple[str, ...] | None = None, minimum: float | None = None,
          exclusive_minimum: bool = False) -> Any:
    """Declare a config field with its default, physical ``unit`` dimension and help text.

    ``unit`` is a dimension of :mod:`hwsim.units` ("bytes", "bandwidth", "frequency", "time",
    "energy", "energy_bit", "power", "flops", "count") or "text" / "bool" / "list" / "map".
    """
    metadata = {"unit": unit, "help": help, "choices": choices, "minimum": minimum,
                "exclusive_minimum": exclusive_minimum}
    if isinstance(default, dict | list):
        frozen_default = default
        return field(default_factory=lambda: type(frozen_default)(frozen_default), metadata=metadata)
    return field(default=default, metadata=metadata)


def build_config(cls: type, data: Any, where: str) -> Any:
    """Build the dataclass ``cls`` from the mapping ``data``; ``where`` is its key path.

    Unknown keys, missing required keys, bad units and out-of-range values raise ConfigError
    naming the full key path (``components.hbm.bandwith: unknown key (did you mean
    'bandwidth'?)``).
    """
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(data).__name__}")
    known = {f.name: f for f in fields(cls) if f.init}
    for key in data:
        if key not in known:
            raise ConfigError(f"{_join(where, key)}: unknown key{did_you_mean(str(key), tuple(known))}")
    hints = _type_hints(cls)
    values = {}
    notes = {}
    for name, f in known.items():
        path = _join(where, name)
        if name not in data:
            if f.default is MISSING and f.default_factory is MISSING:
                raise ConfigError(f"{path}: required key is missing ({f.metadata.get('help', '')})")
            continue
        raw = data[name]
        if isinstance(raw, dict) and "ref" in raw and f.metadata.get("unit") in ("energy", "energy_bit", "power"):
            from hwsim.energy.library import resolve  # only machines that use references need it

            values[name], notes[name] = resolve(raw, f.metadata["unit"], path)
            continue
        values[name] = _convert(raw, f, hints[name], path)
    if notes:
        if "provenance" not in known:
            raise ConfigError(f"{where}: energy references need a component with a provenance field")
        values["provenance"] = {**notes, **values.get("provenance", {})}
    return cls(**values)


@functools.cache
def _type_hints(cls: type) -> dict[str, Any]:
    """Resolved field annotations of a config class (resolving them is slow; classes are few)."""
    return typing.get_type_hints(cls)


def _convert(value: Any, f: dataclasses.Field, hint: Any, path: str) -> Any:
    unit = f.metadata.get("unit", "count")
    if unit == "text":
        if not isinstance(value, str):
            raise ConfigError(f"{path}: expected text, got {value!r}")
        choices = f.metadata.get("choices")
        if choices and value not in choices:
            raise ConfigError(f"{path}: {value!r} is not one of {', '.join(choices)}"
                              f"{did_you_mean(value, choices)}")
        return value
    if unit == "bool":
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: expected true or false, got {value!r}")
        return value
    if unit == "list":
        if not isinstance(value, list):
            raise ConfigError(f"{path}: expected a list, got {value!r}")
        return tuple(value)
    if unit.startswith("map:"):
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected a mapping, got {value!r}")
        dim = unit.split(":", 1)[1]
        if dim == "text":
            return {str(k): str(v) for k, v in value.items()}
        return {str(k): _number(v, dim, f, _join(path, str(k))) for k, v in value.items()}
    number = _number(value, unit, f, path)
    if hint is int or hint == "int":
        if number != int(number):
            raise ConfigError(f"{path}: expected a whole number, got {value!r}")
        return int(number)
    return number


def _number(value: Any, dim: str, f: dataclasses.Field, path: str) -> float:
    number = parse_quantity(value, dim, path)
    minimum = f.metadata.get("minimum")
    if minimum is not None:
        if f.metadata.get("exclusive_minimum") and not number > minimum:
            raise ConfigError(f"{path}: must be > {minimum}, got {value!r}")
        if number < minimum:
            raise ConfigError(f"{path}: must be >= {minimum}, got {value!r}")
    return number


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def describe_fields(cls: type) -> list[dict[str, Any]]:
    """Rows (name, unit, default, help) documenting ``cls`` for people and for `--list`."""
    rows = []
    for f in fields(cls):
        if not f.init:
            continue
        unit = f.metadata.get("unit", "count")
        default = ("(required)" if f.default is MISSING and f.default_factory is MISSING
                   else f.default if f.default is not MISSING else f.default_factory())
        rows.append({"name": f.name, "unit": BASE_UNIT.get(unit, unit), "default": default,
                     "help": f.metadata.get("help", "")})
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
