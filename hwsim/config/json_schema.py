"""JSON Schemas of the files a user writes, generated from their config classes.

``hwsim schema machine|sweep|regress`` prints one. Editors that read the
``# yaml-language-server: $schema=...`` first line of a machine file (VS Code's YAML
extension, for one) then complete keys, show each field's help and unit, and flag unknown
keys and values of the wrong type while the file is typed. The schema is a guide for the
editor; :func:`hwsim.load_arch` remains the judge (units, ranges, wiring).
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

from hwsim.config.fields import PHYSICAL, value_range
from hwsim.units import _UNITS, BINARY, DECIMAL, SUBUNIT

DIALECT = "https://json-schema.org/draft/2020-12/schema"
_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"


def _quantity_pattern(dimension: str) -> str:
    """A regular expression for a quantity string of ``dimension`` ("3.35 TB/s")."""
    symbols = []
    for unit, _, family in _UNITS[dimension]:
        prefixes = [*DECIMAL, *BINARY] if family == "size" else [*SUBUNIT, *DECIMAL]
        symbols.append(f"(?:{'|'.join(sorted({p for p in prefixes if p}, key=lambda p: (-len(p), p)))})?"
                       + unit.replace("/", r"/"))
    return rf"^\s*{_NUMBER}\s*(?:{'|'.join(symbols)})?\s*$"


def _number_schema(f: dataclasses.Field, dim: str, integer: bool) -> dict[str, Any]:
    meta = f.metadata
    number: dict[str, Any] = {"type": "integer" if integer else "number"}
    minimum, maximum = meta.get("minimum"), meta.get("maximum")
    if minimum is None and dim in PHYSICAL:
        minimum = 0
    if minimum is not None:
        number["exclusiveMinimum" if meta.get("exclusive_minimum") else "minimum"] = minimum
    if maximum is not None:
        number["exclusiveMaximum" if meta.get("exclusive_maximum") else "maximum"] = maximum
    if dim not in PHYSICAL:
        return number
    choices = [number, {"type": "string", "pattern": _quantity_pattern(dim)}]
    if dim in ("energy", "energy_bit", "power"):
        choices.append({"type": "object", "required": ["ref"],
                        "description": "a published constant, e.g. {ref: horowitz_fp16_flop, node: 5 nm}"})
    return {"anyOf": choices}


def field_schema(f: dataclasses.Field, hint: Any = float) -> dict[str, Any]:
    """The JSON Schema of one :func:`~hwsim.config.fields.param` field."""
    meta = f.metadata
    unit = meta.get("unit", "count")
    schema: dict[str, Any]
    if unit == "text":
        schema = {"type": "string"}
        if meta.get("choices"):
            schema["enum"] = list(meta["choices"])
        if meta.get("max_length"):
            schema["maxLength"] = meta["max_length"]
        if meta.get("pattern"):
            schema["pattern"] = f"^(?:{meta['pattern']})$"
    elif unit == "bool":
        schema = {"type": "boolean"}
    elif unit == "scalar":
        schema = {"type": ["number", "string"]}
    elif unit == "config":
        schema = config_schema(meta["config"])
    elif unit == "list":
        items = meta.get("items")
        if isinstance(items, type):
            item = config_schema(items)
            if getattr(items, "SHORTHAND", None):
                item = {"anyOf": [{"type": "string"}, item]}
        elif items == "text":
            item = {"type": "string"}
        elif items:
            item = _number_schema(f, items, False)
        else:
            item = {}
        schema = {"type": "array", "items": item}
        if meta.get("single"):
            schema = {"anyOf": [item, schema]}
    elif unit == "map":
        schema = {"type": "object"}
    elif unit.startswith("map:"):
        dim = unit[4:]
        value = {"type": ["string", "number"]} if dim == "text" else _number_schema(f, dim, False)
        schema = {"type": "object", "additionalProperties": value}
    else:
        integer = hint is int or int in typing.get_args(hint)
        schema = _number_schema(f, unit, integer)
    help_text = meta.get("help", "")
    shown_range = value_range(f, hint)
    schema["description"] = help_text + (f" (unit: {unit})" if unit in PHYSICAL else "") \
        + (f"; {shown_range}" if shown_range else "")
    default = f.default
    if default is not dataclasses.MISSING and default is not None and not isinstance(default, tuple):
        schema["default"] = default
    return schema


def config_schema(cls: type, *, required: bool = True, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """An object schema of the config class ``cls`` (no unknown keys)."""
    hints = typing.get_type_hints(cls)
    fields = [f for f in dataclasses.fields(cls) if f.init]
    schema: dict[str, Any] = {
        "type": "object",
        "description": " ".join((cls.__doc__ or "").strip().split("\n\n")[0].split()),
        "properties": {**(extra or {}), **{f.name: field_schema(f, hints[f.name]) for f in fields}},
        "additionalProperties": False,
    }
    needed = [f.name for f in fields if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if required and needed:
        schema["required"] = needed
    return schema


def machine_schema() -> dict[str, Any]:
    """The machine file: top-level keys, and each component block by its ``kind``."""
    from hwsim.components.base import REGISTRY, _load_builtin_components
    from hwsim.config.machine import MachineFile

    _load_builtin_components()
    kinds = sorted(REGISTRY)
    top = config_schema(MachineFile, required=False)
    # A file that extends another may leave out what it inherits, kinds included.
    top["if"] = {"not": {"required": ["extends"]}}
    top["then"] = {"required": ["clock", "components"]}
    top["properties"]["components"] = {
        "type": "object", "description": MachineFile.__dataclass_fields__["components"].metadata["help"],
        "additionalProperties": {"anyOf": [{"$ref": "#/$defs/component"},
                                           {"type": "null", "description": "removes an inherited component"}]}}
    component: dict[str, Any] = {
        "type": "object", "properties": {"kind": {"enum": kinds, "description": "component kind"}},
        "allOf": [{"if": {"required": ["kind"], "properties": {"kind": {"const": kind}}},
                   "then": {"$ref": f"#/$defs/{kind}"}} for kind in kinds]}
    defs = {"component": component}
    for kind in kinds:
        defs[kind] = config_schema(REGISTRY[kind].Config, required=False,
                                   extra={"kind": {"const": kind}})
    return {"$schema": DIALECT, "title": "hwsim machine file", **top, "$defs": defs}


def sweep_schema() -> dict[str, Any]:
    """The sweep file, with axes as lists of values or ranges and constraints as text or rules."""
    from hwsim.sweep.sweep_file import RangeSpec, SweepFile

    schema = config_schema(SweepFile)
    schema["properties"]["axes"]["additionalProperties"] = {
        "anyOf": [{"type": "array", "minItems": 1}, config_schema(RangeSpec)]}
    rule = {"type": "object", "properties": {"key": {"type": "string"}, "op": {"type": "string"}, "value": {}},
            "required": ["key", "op", "value"], "additionalProperties": False}
    item = {"anyOf": [{"type": "string"}, rule]}
    schema["properties"]["constraints"]["anyOf"] = [item, {"type": "array", "items": item}]
    return {"$schema": DIALECT, "title": "hwsim sweep file", **schema}


def regress_schema() -> dict[str, Any]:
    """The regress cases file."""
    from hwsim.regress.cases import CasesFile

    return {"$schema": DIALECT, "title": "hwsim regress cases file", **config_schema(CasesFile)}


SCHEMAS = {"machine": machine_schema, "sweep": sweep_schema, "regress": regress_schema}
