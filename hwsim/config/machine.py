"""Machine YAML → a validated, frozen :class:`MachineConfig`.

A machine file names a reference clock, its components (each with a ``kind`` and that
kind's parameters), the ``placement`` of logical memory spaces onto tiers and, optionally,
a ``dispatch`` table from op kind to the component that runs it::

    name: tiny
    clock: 1 GHz
    components:
      hbm:    {kind: memory_tier, capacity: 16 GiB, bandwidth: 1 TB/s}
      tensor: {kind: matrix_engine, memory: hbm, peak_flops: {bf16: 100 TFLOP/s}}
    placement: {default: hbm}

``extends: other.yaml`` starts from another file (a preset, or a shipped machine's name) and deep-merges this one on top
(a ``null`` value removes a key); ``overrides`` apply dotted ``key.path=value`` edits last.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from hwsim.components.base import ComputeUnit, MemoryResource, component_class
from hwsim.components.link import Link
from hwsim.config.catalog import resolve_machine
from hwsim.config.fields import build_config, to_plain
from hwsim.config.yaml_file import read_yaml_mapping
from hwsim.errors import ConfigError, did_you_mean
from hwsim.trace.schema import KINDS
from hwsim.units import parse_quantity

TOP_LEVEL_KEYS = ("name", "description", "clock", "extends", "components", "placement", "dispatch")


@dataclass(frozen=True)
class ComponentSpec:
    """One component block: its name, kind and typed config."""

    name: str
    kind: str
    config: Any


@dataclass(frozen=True)
class MachineConfig:
    """A whole machine, validated. ``clock_hz`` is the reference clock all cycles count in."""

    name: str
    clock_hz: float
    components: tuple[ComponentSpec, ...]
    placement: dict[str, str] = field(default_factory=dict)
    dispatch: dict[str, str] = field(default_factory=dict)
    description: str = ""
    source: str = ""

    def component(self, name: str) -> ComponentSpec:
        for spec in self.components:
            if spec.name == name:
                return spec
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """The resolved config in base units (bytes, bytes/s, Hz, s, pJ, pJ/bit, W)."""
        return {
            "name": self.name,
            "description": self.description,
            "source": self.source,
            "clock_hz": self.clock_hz,
            "components": {c.name: {"kind": c.kind, "role": _role(c.kind), **to_plain(c.config)}
                           for c in self.components},
            "placement": dict(self.placement),
            "dispatch": dict(self.dispatch),
        }


def _role(kind: str) -> str:
    """"compute", "tier", "link" or "host": how reports and summaries treat a component kind."""
    cls = component_class(kind, kind)
    if issubclass(cls, Link):
        return "link"
    if issubclass(cls, MemoryResource):
        return "tier"
    return "compute" if issubclass(cls, ComputeUnit) else "host"


def load_arch(path: str | os.PathLike, overrides: dict[str, Any] | list[str] | None = None) -> MachineConfig:
    """Load, merge (``extends``), override and validate a machine YAML.

    ``overrides`` is a mapping ``{"components.hbm.bandwidth": "4 TB/s"}`` or a list of
    ``"key.path=value"`` strings (values are read as YAML scalars). Raises ConfigError naming
    the file and key path of the first problem. ``path`` may also name a shipped machine
    (``"h200"``, see :mod:`hwsim.config.catalog`).
    """
    path = resolve_machine(path)
    return resolve_arch(read_arch(path), path, overrides)


def read_arch(path: str | os.PathLike) -> dict[str, Any]:
    """The machine YAML at ``path`` with its ``extends`` chain merged, not yet validated.

    With :func:`resolve_arch`, lets a caller that builds many variants of one machine (a
    sweep) read and parse the files once.
    """
    return _read_with_extends(resolve_machine(path), seen=())


def resolve_arch(raw: dict[str, Any], path: str | os.PathLike,
                 overrides: dict[str, Any] | list[str] | None = None) -> MachineConfig:
    """Apply ``overrides`` to a copy of ``raw`` (from :func:`read_arch` of ``path``) and
    validate it; errors name ``path`` like :func:`load_arch`'s."""
    path = Path(path)
    raw = copy.deepcopy(raw)
    for key, value in _normalise_overrides(overrides).items():
        _apply_override(raw, key, value, path)
    return _validate(raw, str(path))


def _read_with_extends(path: Path, seen: tuple[Path, ...]) -> dict[str, Any]:
    resolved = path.resolve()
    if resolved in seen:
        raise ConfigError(f"{path}: extends cycle ({' -> '.join(str(p) for p in (*seen, resolved))})")
    data = read_yaml_mapping(path, "machine file")
    base_name = data.pop("extends", None)
    if base_name is None:
        return data
    try:  # a file beside this one, else a shipped machine of that name
        base_path = resolve_machine(str(base_name), base=path.parent)
    except ConfigError as err:
        raise ConfigError(f"{path}: extends: {err}") from None
    return _deep_merge(_read_with_extends(base_path, (*seen, resolved)), data)


def _deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in top.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _normalise_overrides(overrides: dict[str, Any] | list[str] | None) -> dict[str, Any]:
    if overrides is None:
        return {}
    if isinstance(overrides, dict):
        return dict(overrides)
    out = {}
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected key.path=value")
        key, text = item.split("=", 1)
        try:
            out[key.strip()] = yaml.safe_load(text) if text.strip() else ""
        except yaml.YAMLError:
            out[key.strip()] = text
    return out


def _apply_override(raw: dict[str, Any], dotted: str, value: Any, path: Path) -> None:
    parts = dotted.split(".")
    node = raw
    for i, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            if i > 0 or part not in TOP_LEVEL_KEYS:  # only a known top-level section may be created
                where = ".".join(parts[:i + 1])
                raise ConfigError(f"{path}: override {dotted}: no key {where}"
                                  f"{did_you_mean(part, tuple(map(str, node)))}")
            child = node[part] = {}
        if not isinstance(child, dict):
            raise ConfigError(f"{path}: override {dotted}: {'.'.join(parts[:i + 1])} is not a mapping")
        node = child
    node[parts[-1]] = value


def _validate(raw: dict[str, Any], source: str) -> MachineConfig:
    for key in raw:
        if key not in TOP_LEVEL_KEYS:
            raise ConfigError(f"{source}: {key}: unknown key{did_you_mean(str(key), TOP_LEVEL_KEYS)}")
    name = str(raw.get("name") or Path(source).stem)
    if "clock" not in raw:
        raise ConfigError(f"{source}: clock: required key is missing (the reference clock, e.g. '1.98 GHz')")
    clock_hz = parse_quantity(raw["clock"], "frequency", f"{source}: clock")
    if clock_hz <= 0:
        raise ConfigError(f"{source}: clock: must be > 0")
    blocks = raw.get("components") or {}
    if not isinstance(blocks, dict) or not blocks:
        raise ConfigError(f"{source}: components: expected a non-empty mapping of named components")
    specs = []
    for cname, block in blocks.items():
        where = f"{source}: components.{cname}"
        if not isinstance(block, dict) or "kind" not in block:
            raise ConfigError(f"{where}: expected a mapping with a 'kind'")
        body = {k: v for k, v in block.items() if k != "kind"}
        cls = component_class(str(block["kind"]), f"{where}.kind")
        specs.append(ComponentSpec(str(cname), str(block["kind"]), build_config(cls.Config, body, where)))
    machine = MachineConfig(
        name=name, clock_hz=clock_hz, components=tuple(specs),
        placement=_string_map(raw.get("placement"), f"{source}: placement"),
        dispatch=_string_map(raw.get("dispatch"), f"{source}: dispatch"),
        description=str(raw.get("description", "")), source=source)
    _check_wiring(machine, source)
    return machine


def _string_map(value: Any, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected a mapping")
    return {str(k): str(v) for k, v in value.items()}


def _check_wiring(machine: MachineConfig, source: str) -> None:
    classes = {c.name: component_class(c.kind, source) for c in machine.components}
    tiers = [n for n, cls in classes.items() if issubclass(cls, MemoryResource) and not issubclass(cls, Link)]
    units = [n for n, cls in classes.items() if issubclass(cls, ComputeUnit)]
    if not tiers:
        raise ConfigError(f"{source}: components: a machine needs at least one memory tier")
    for spec in machine.components:
        if spec.name in units and spec.config.memory not in tiers:
            raise ConfigError(f"{source}: components.{spec.name}.memory: {spec.config.memory!r} is not a "
                              f"memory tier{did_you_mean(spec.config.memory, tiers)}")
        if issubclass(classes[spec.name], Link):
            for end in spec.config.between:
                if end not in tiers:
                    raise ConfigError(f"{source}: components.{spec.name}.between: {end!r} is not a "
                                      f"memory tier{did_you_mean(str(end), tiers)}")
        spill_to = getattr(spec.config, "spill_to", "")
        if spill_to and (spill_to not in tiers or spill_to == spec.name):
            raise ConfigError(f"{source}: components.{spec.name}.spill_to: {spill_to!r} is not another "
                              f"memory tier{did_you_mean(spill_to, tiers)}")
    for space, tier in machine.placement.items():
        if tier not in tiers:
            raise ConfigError(f"{source}: placement.{space}: {tier!r} is not a memory tier"
                              f"{did_you_mean(tier, tiers)}")
    for kind, unit in machine.dispatch.items():
        if kind not in KINDS:
            raise ConfigError(f"{source}: dispatch.{kind}: unknown op kind{did_you_mean(kind, tuple(KINDS))}")
        if unit not in units:
            raise ConfigError(f"{source}: dispatch.{kind}: {unit!r} is not a compute unit{did_you_mean(unit, units)}")
        if kind not in classes[unit].handles:
            raise ConfigError(f"{source}: dispatch.{kind}: a {classes[unit].kind} cannot run {kind!r} ops "
                              f"(it runs: {', '.join(classes[unit].handles)})")
