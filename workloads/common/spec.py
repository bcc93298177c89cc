"""Workload specs: frozen dataclasses built from a preset YAML plus ``key=value`` overrides.

A preset lives in ``workloads/<family>/presets/<name>.yaml``::

    description: LingBot-World-Fast at 480x832 ...
    params:
      d_model: {value: 5120, source: "[C] wan/configs/wan_i2v_A14B.py"}
      sink_frames: {value: 3, source: "[C] WorldKV class default"}
      rollout_frames: 360          # a bare value is allowed; its source is then the field's own

Every ``source`` carries a tag from WORKLOADS.md: [P] paper, [C] released code or config,
[S] secondary source, [D] derived, [A] assumed. Fields a preset leaves out take the
dataclass default and the ``source`` written on the field. ``hwsim trace --list`` prints the
value, source and help of every parameter.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from hwsim.config.fields import build_config, convert_value, param, to_plain
from hwsim.config.issues import Issues
from hwsim.config.yaml_file import load_yaml
from hwsim.errors import ConfigError, did_you_mean, shown
from hwsim.trace import TraceMeta

_PRESET_KEYS = ("description", "params", "parallel")


def spec_param(default: Any, *, help: str, unit: str = "count", source: str = "",
               choices: tuple[str, ...] | None = None, minimum: float | None = None,
               exclusive_minimum: bool = False, maximum: float | None = None) -> Any:
    """Declare a spec field: :func:`hwsim.config.fields.param` (default, unit kind "count",
    "text" or "bool", range, help) plus the ``source`` of the default value."""
    return param(default, unit=unit, help=help, choices=choices, minimum=minimum,
                 exclusive_minimum=exclusive_minimum, maximum=maximum, source=source)


def check(condition: bool, family: str, name: str, message: str) -> None:
    """Raise ConfigError ``"<family>.<name>: <message>"`` unless ``condition`` holds."""
    if not condition:
        raise ConfigError(f"{family}.{name}: {message}")


def validate_fields(spec: Any, family: str) -> None:
    """Check every field of ``spec`` against its declared type, choices and range, by the
    rules :func:`hwsim.config.fields.build_config` applies to files (finite numbers, whole
    numbers that fit, choices with did-you-mean).

    Specs call this from ``__post_init__`` so that one built in code obeys the same rules
    as one loaded from a preset; raises ConfigError naming every bad parameter.
    """
    issues = Issues()
    hints = typing.get_type_hints(type(spec))
    for f in fields(spec):
        value, hint, path = getattr(spec, f.name), hints[f.name], f"{family}.{f.name}"
        if hint is str and not isinstance(value, str):
            issues.add(path, f"expected text, got {shown(value)}")
        elif hint is bool and not isinstance(value, bool):
            issues.add(path, f"expected true or false, got {shown(value)}")
        elif hint in (int, float) and (isinstance(value, bool) or not isinstance(value, int | float)):
            issues.add(path, f"expected a {'whole ' if hint is int else ''}number, got {shown(value)}")
        else:
            convert_value(value, f, hint, path, issues)
    issues.raise_if_any()


def spec_params(spec: Any) -> dict[str, Any]:
    """The resolved spec as a JSON-safe dict (for ``TraceMeta.params``)."""
    return to_plain(spec)


def trace_meta(family: str, spec: Any, *, preset: str, seed: int | None, work_unit: str,
               work_units: float, description: str = "") -> TraceMeta:
    """TraceMeta for a generated trace: generator, preset, resolved spec, seed and work units."""
    return TraceMeta(generator=f"workloads.{family}", preset=preset, params=spec_params(spec),
                     seed=seed, work_unit=work_unit, work_units=float(work_units),
                     description=description)


@dataclass(frozen=True)
class Preset:
    """One preset file: parameter values, their sources and a description."""

    name: str
    path: Path
    description: str
    values: dict[str, Any]
    sources: dict[str, str]
    parallel: dict[str, Any] = field(default_factory=dict)   # dp, fsdp, tp, sp, sp_mode of the run


class PresetLibrary:
    """The presets of one family and the spec class they fill in."""

    def __init__(self, family: str, spec_cls: type, presets_dir: Path) -> None:
        self.family = family
        self.spec_cls = spec_cls
        self.presets_dir = Path(presets_dir)

    def presets(self) -> list[str]:
        """Preset names (file stems), sorted."""
        return sorted(p.stem for p in self.presets_dir.glob("*.yaml"))

    def preset(self, name: str) -> Preset:
        """Read preset ``name``; raises ConfigError naming the file and key of a problem."""
        names = self.presets()
        if name not in names:
            raise ConfigError(f"{self.family}: unknown preset {name!r}{did_you_mean(name, names)}")
        return _read_preset(self.presets_dir / f"{name}.yaml", self.spec_cls)

    def load_spec(self, preset: str, params: Mapping[str, Any] | None = None) -> Any:
        """The spec of ``preset`` with ``params`` overrides applied (strings are read as YAML scalars).

        Raises ConfigError naming the parameter for unknown names and bad values.
        """
        data = dict(self.preset(preset).values)
        known = {f.name: f for f in fields(self.spec_cls)}
        for key, raw in (params or {}).items():
            if key not in known:
                raise ConfigError(f"{self.family}: unknown parameter {key!r}{did_you_mean(key, tuple(known))}")
            data[key] = _parse_override(raw, known[key])
        return build_config(self.spec_cls, data, self.family)

    def describe(self) -> dict[str, Any]:
        """Presets with every parameter's value, source, unit kind and help, for ``--list``."""
        out = {}
        for name in self.presets():
            preset = self.preset(name)
            rows = []
            for f in fields(self.spec_cls):
                default = f.default if f.default is not MISSING else None
                rows.append({
                    "name": f.name,
                    "value": preset.values.get(f.name, default),
                    "source": preset.sources.get(f.name) or f.metadata.get("source", "") or "(default)",
                    "help": f.metadata.get("help", ""),
                    "choices": f.metadata.get("choices"),
                })
            out[name] = {"description": preset.description, "params": rows}
        return out


def _parse_override(raw: Any, f: dataclasses.Field) -> Any:
    if not isinstance(raw, str):
        return raw
    if f.metadata.get("unit") == "text":
        return raw.strip()
    try:
        value = yaml.safe_load(raw)
    except (yaml.YAMLError, RecursionError):
        return raw
    return raw if value is None else value


@lru_cache(maxsize=64)
def _read_preset_cached(path: Path, mtime_ns: int, spec_cls: type) -> Preset:
    document = load_yaml(path, "preset (a mapping with 'description' and 'params')")
    data = document.data
    issues = Issues(str(path), document.marks)
    for key in data:
        if key not in _PRESET_KEYS:
            issues.add(str(key), f"unknown key{did_you_mean(str(key), _PRESET_KEYS)}")
    known = tuple(f.name for f in fields(spec_cls))
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    params = data.get("params") or {}
    if not isinstance(params, dict):
        issues.add("params", "expected a mapping of parameter: value or {value, source}")
        params = {}
    for key, entry in params.items():
        if key not in known:
            issues.add(f"params.{key}", f"unknown parameter{did_you_mean(str(key), known)}")
        elif isinstance(entry, dict):
            extra = set(entry) - {"value", "source"}
            if extra or "value" not in entry:
                issues.add(f"params.{key}", "expected {value: ..., source: ...}")
                continue
            values[key] = entry["value"]
            sources[key] = str(entry.get("source", ""))
        else:
            values[key] = entry
    parallel = data.get("parallel") or {}
    if not isinstance(parallel, dict):
        issues.add("parallel", "expected a mapping of dp, fsdp, tp, sp, sp_mode: value or {value, source}")
        parallel = {}
    plain = {}
    for key, entry in parallel.items():
        value = entry.get("value") if isinstance(entry, dict) else entry
        if key not in ("dp", "fsdp", "tp", "sp", "sp_mode"):
            issues.add(f"parallel.{key}", "unknown key (one of dp, fsdp, tp, sp, sp_mode)")
        plain[key] = value
        if isinstance(entry, dict):
            sources[f"parallel.{key}"] = str(entry.get("source", ""))
    issues.raise_if_any()
    return Preset(path.stem, path, str(data.get("description", "")).strip(), values, sources, plain)


def _read_preset(path: Path, spec_cls: type) -> Preset:
    return _read_preset_cached(path, path.stat().st_mtime_ns, spec_cls)
