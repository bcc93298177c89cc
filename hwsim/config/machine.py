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

The dependency between configs and components runs one way: component modules import
:mod:`hwsim.config.fields` to declare their configs, and this module looks component kinds
up only when it validates a file (:func:`_component_class`), never when it is imported.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from hwsim.config.catalog import resolve_machine
from hwsim.config.fields import build_config, param, to_plain
from hwsim.config.issues import Issues, Marks
from hwsim.config.yaml_file import SAFE_LOADER, load_yaml
from hwsim.errors import ConfigError, did_you_mean, shown
from hwsim.memo import ByIdentity, remember
from hwsim.trace.schema import KINDS

#: Most ops one compute unit may run at once (``count``, ``queue_depth``): the engine keeps a
#: timeline per instance.
MAX_INSTANCES = 65_536
#: What a machine name may look like: it names folders, labels and report titles.
NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._+-]{0,99}"


@dataclass(frozen=True, kw_only=True)
class MachineFile:
    """The top level of a machine file; each entry of ``components`` is then built as its
    kind's config class."""

    name: str = param("", unit="text", pattern=NAME_PATTERN,
                      pattern_help="letters, digits and . _ + -, at most 100 characters",
                      help="machine name (default: the file name)")
    description: str = param("", unit="text", help="one line saying what the machine is")
    clock: float = param(unit="frequency", minimum=1e3,
                         help="reference clock every cycle count is in, e.g. '1.98 GHz'")
    extends: str = param("", unit="text", help="machine file this one starts from (relative to this "
                         "file); this file is deep-merged on top, a null value removes a key")
    components: dict = param(unit="map", help="named component blocks, each with a 'kind' and that "
                             "kind's parameters (see hwsim describe KIND)")
    placement: dict = param({}, unit="map:text", help="logical memory space -> memory tier "
                            "('default' for every space not named)")
    dispatch: dict = param({}, unit="map:text", help="op kind -> the compute unit that runs it "
                           "(default: the unit that prefers the kind)")
    devices: int = param(1, unit="count", minimum=1, maximum=4096,
                         help="devices per node, each with every component but fabrics (a 'fabric' "
                              "component joins them)")
    nodes: int = param(1, unit="count", minimum=1, maximum=4096,
                       help="nodes of `devices` devices (a 'network' component joins them)")
    device_kinds: dict = param({}, unit="map", help="devices of another kind: name -> {machine: a "
                               "single-device machine file (relative to this file) or shipped name, "
                               "devices: the devices of that kind, e.g. '4-7'}; the other devices "
                               "have this file's components")


TOP_LEVEL_KEYS = tuple(f.name for f in fields(MachineFile))


class RawMachine(dict):
    """A machine file's merged mapping before validation, with the line of every key."""

    marks: Marks = Marks()


@dataclass(frozen=True)
class ComponentSpec:
    """One component block: its name, kind and typed config."""

    name: str
    kind: str
    config: Any


@dataclass(frozen=True)
class DeviceKind:
    """Devices of a machine that are of another machine file's kind (``device_kinds``)."""

    name: str
    devices: tuple[int, ...]
    machine: MachineConfig


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
    devices: int = 1   # per node
    nodes: int = 1
    device_kinds: tuple[DeviceKind, ...] = ()   # devices not of this file's own components

    @property
    def device_count(self) -> int:
        """Devices of the whole machine (``devices x nodes``)."""
        return self.devices * self.nodes

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
            "components": {c.name: {"kind": c.kind, **_plain(c.config)} for c in self.components},
            "placement": dict(self.placement),
            "dispatch": dict(self.dispatch),
            **({"devices": self.devices, "nodes": self.nodes} if self.device_count > 1 else {}),
            **({"device_kinds": {k.name: {"devices": list(k.devices), "machine": k.machine.to_dict()}
                                 for k in self.device_kinds}} if self.device_kinds else {}),
        }


#: ``to_plain`` of built component configs (shared between the points of a sweep, see
#: :data:`_BUILT` and :mod:`hwsim.memo`).
_PLAIN = ByIdentity()


def _plain(config: Any) -> dict[str, Any]:
    """``to_plain(config)`` (a new top-level dict each call; nested values are shared:
    treat them as read-only)."""
    return dict(_PLAIN.get(config, to_plain))


def _component_class(kind: str, where: str) -> type:
    """The implementation of component ``kind`` (ConfigError naming ``where`` if unknown).

    Imported here, when a file is validated, so that importing the config package never
    imports the components (which import it).
    """
    from hwsim.components.base import component_class

    return component_class(kind, where)


def load_arch(path: str | os.PathLike, overrides: dict[str, Any] | list[str] | None = None) -> MachineConfig:
    """Load, merge (``extends``), override and validate a machine YAML.

    ``overrides`` is a mapping ``{"components.hbm.bandwidth": "4 TB/s"}`` or a list of
    ``"key.path=value"`` strings (values are read as YAML scalars). Raises ConfigError
    naming the file, line and key path of every problem. ``path`` may also name a shipped
    machine (``"h200"``, see :mod:`hwsim.config.catalog`).
    """
    path = resolve_machine(path)
    return resolve_arch(read_arch(path), path, overrides)


def read_arch(path: str | os.PathLike) -> RawMachine:
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
    file_marks = getattr(raw, "marks", Marks())
    marks = Marks(file_marks.entries)
    overrides = _normalise_overrides(overrides)
    raw = _copy_paths(raw, overrides)
    issues = Issues(str(path), marks)
    for key, value in overrides.items():
        if _apply_override(raw, key, value, path, issues):
            # The value now comes from the override, not from the line the file had.
            for written in _written_under(file_marks, key):
                marks.entries.pop(written, None)
            marks.entries[key] = (f"{path}: --set", -1)
    issues.raise_if_any()
    return _validate(raw, str(path), issues)


def _written_under(marks: Marks, key: str) -> list[str]:
    """The key paths of ``marks`` at or below ``key``, looked up once per file and key (the
    points of a sweep override the same keys of one file)."""
    found = marks.__dict__.setdefault("_under", {})
    if key not in found:
        found[key] = [p for p in marks.entries if p == key or p.startswith(key + ".")]
    return found[key]


def _copy_paths(raw: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``raw`` in which the mappings on each override's key path are new (the
    overrides write into those); the rest is shared with ``raw``, which nothing writes."""
    out = dict(raw)
    for key in overrides:
        node = out
        for part in key.split(".")[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                break
            node[part] = child = dict(child)
            node = child
    return out


def _read_with_extends(path: Path, seen: tuple[Path, ...]) -> RawMachine:
    resolved = path.resolve()
    if resolved in seen:
        raise ConfigError(f"{path}: extends cycle ({' -> '.join(str(p) for p in (*seen, resolved))})")
    if len(seen) > 16:
        raise ConfigError(f"{path}: extends chain longer than 16 files")
    document = load_yaml(path, "machine file")
    data = dict(document.data)
    base_name = data.pop("extends", None)
    if base_name is None:
        return _raw(data, document.marks)
    line = document.marks.locate("extends")
    where = f"{line[0]}:{line[1]}" if line else str(path)
    if not isinstance(base_name, str) or not base_name.strip():
        raise ConfigError(f"{where}: extends: expected the path of a machine file, got {shown(base_name)}")
    try:  # a file beside this one, else a shipped machine of that name
        base_path = resolve_machine(base_name, base=path.parent)
    except ConfigError as err:
        raise ConfigError(f"{where}: extends: {err}") from None
    base = _read_with_extends(base_path, (*seen, resolved))
    return _raw(_deep_merge(base, data), base.marks.overlay(document.marks))


def _raw(data: dict[str, Any], marks: Marks) -> RawMachine:
    raw = RawMachine(data)
    raw.marks = marks
    return raw


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
        return {str(k): v for k, v in overrides.items()}
    out = {}
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected key.path=value")
        key, text = item.split("=", 1)
        out[key.strip()] = parse_override_value(text)
    return out


def parse_override_value(text: str) -> Any:
    """A ``--set`` value read as a YAML scalar (``4`` a number, ``true`` a flag, ``[a, b]`` a
    list); text that is not YAML stays text."""
    if not text.strip():
        return ""
    try:
        return yaml.load(text, Loader=SAFE_LOADER)  # noqa: S506 - a safe loader
    except (yaml.YAMLError, RecursionError):
        return text


def _apply_override(raw: dict[str, Any], dotted: str, value: Any, path: Path, issues: Issues) -> bool:
    """Set ``raw[dotted]``; False (and a problem) when the key path cannot be set."""
    parts = dotted.split(".")
    if not all(part.strip() for part in parts):
        issues.add_unplaced(f"override {dotted!r}: expected a dotted key path such as components.hbm.bandwidth")
        return False
    if parts[0] == "extends":
        issues.add_unplaced(f"override {dotted}: extends is read before overrides apply; write a machine "
                   "file that extends the other one instead")
        return False
    node = raw
    for i, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            if i > 0 or part not in TOP_LEVEL_KEYS:  # only a known top-level section may be created
                where = ".".join(parts[:i + 1])
                issues.add_unplaced(f"override {dotted}: no key {where}{did_you_mean(part, tuple(map(str, node)))}")
                return False
            child = node[part] = {}
        if not isinstance(child, dict):
            issues.add_unplaced(f"override {dotted}: {'.'.join(parts[:i + 1])} is not a mapping")
            return False
        node = child
    node[parts[-1]] = value
    return True


def _validate(raw: dict[str, Any], source: str, issues: Issues) -> MachineConfig:
    top = _top_level(raw, issues)
    blocks = raw.get("components")
    specs = []
    if isinstance(blocks, dict):
        if not blocks:
            issues.add("components", "expected a non-empty mapping of named components")
        for cname, block in blocks.items():
            where = f"components.{cname}"
            if not isinstance(block, dict) or "kind" not in block:
                issues.add(where, "expected a mapping with a 'kind'")
                continue
            if not isinstance(block["kind"], str):
                issues.add(f"{where}.kind", f"expected the name of a component kind, got {shown(block['kind'])}")
                continue
            try:
                cls = _component_class(block["kind"], f"{where}.kind")
            except ConfigError as err:
                issues.add_located(err, f"{where}.kind")
                continue
            config = _component_config(cls, block, where, issues)
            if config is not None:
                specs.append(ComponentSpec(str(cname), block["kind"], config))
    if top is None or len(specs) != len(blocks or {}):
        _check_wiring_partial(raw, specs, issues)
        issues.raise_if_any()
    machine = MachineConfig(
        name=top.name or Path(source).stem, clock_hz=top.clock, components=tuple(specs),
        placement=dict(top.placement), dispatch=dict(top.dispatch),
        description=top.description, source=source, devices=top.devices, nodes=top.nodes,
        device_kinds=_device_kinds(top.device_kinds, source, top.devices * top.nodes, issues))
    _checked_wiring(machine, issues)
    issues.raise_if_any()
    return machine


#: The top level of machine files built, and machines whose wiring was checked, by the
#: identity of what they were built from (sweep points share every value they do not
#: change; nothing writes into a parsed file's values). Each entry keeps those alive.
_TOP_LEVELS: dict[tuple, tuple[tuple, Any]] = {}
_WIRED: dict[tuple, tuple[tuple, MachineConfig]] = {}


def _top_level(raw: dict[str, Any], issues: Issues) -> Any:
    """``build_config(MachineFile, raw)``, once per set of top-level values (``components``,
    whose blocks are built one by one, is only checked to be present)."""
    values = tuple((k, v) for k, v in raw.items() if k != "components")
    key = (tuple((k, id(v)) for k, v in values), "components" in raw)
    hit = _TOP_LEVELS.get(key)
    if hit is not None and all(a is b for (_, a), (_, b) in zip(hit[0], values, strict=True)):
        return hit[1]
    top = build_config(MachineFile, raw, "", issues)
    if top is not None:
        _keep(_TOP_LEVELS, key, (values, top))
    return top


def _checked_wiring(machine: MachineConfig, issues: Issues) -> None:
    """:func:`_check_wiring`, skipped for a machine wired like one that passed: the same
    components (names and kinds), the same tiers each references (``memory``, ``between``,
    ``spill_to``), placement, dispatch and device counts, and the very config objects of
    its compute units (their instance counts are checked; configs are frozen)."""
    if machine.device_kinds:   # each kind's machine is loaded anew: nothing to know it by
        _check_wiring(machine, issues)
        return
    units = tuple(c.config for c in machine.components if _component_class(c.kind, c.kind).role == "compute")
    key = (machine.clock_hz, machine.devices, machine.nodes, tuple(sorted(machine.placement.items())),
           tuple(sorted(machine.dispatch.items())), tuple(map(id, units)),
           *((c.name, c.kind, getattr(c.config, "memory", None), tuple(getattr(c.config, "between", ())),
              getattr(c.config, "spill_to", None)) for c in machine.components))
    hit = _WIRED.get(key)
    if hit is not None and all(a is b for a, b in zip(hit[0], units, strict=True)):
        return
    before = len(issues)
    _check_wiring(machine, issues)
    if len(issues) == before:
        _keep(_WIRED, key, (units, machine))


#: Built component configs by (class, key path, block as canonical JSON). Building is pure
#: and configs are frozen, so the points of a sweep, which change one or two components,
#: build the others once.
_BUILT: dict[tuple[type, str, str], Any] = {}
#: The same by the identity of the block (sweep points share the blocks they do not change,
#: see :func:`_copy_paths`; nothing writes into a block): no JSON to write for those.
_BUILT_BLOCKS: dict[tuple[type, str, int], tuple[dict, Any]] = {}
_BUILT_SIZE = 1024


def _device_kinds(entries: dict[str, Any], source: str, devices: int, issues: Issues) -> tuple[DeviceKind, ...]:
    """The ``device_kinds`` of a machine of ``devices`` devices: each a single-device machine
    file without fabrics, for a set of devices no other kind has."""
    from hwsim.trace.device_sets import parse_device_set

    kinds, taken = [], {}
    for name, entry in entries.items():
        where = f"device_kinds.{name}"
        if not isinstance(entry, dict) or set(entry) != {"machine", "devices"}:
            issues.add(where, "expected a mapping with 'machine' (a machine file or shipped name) and "
                       f"'devices' (e.g. '4-7'), got {shown(entry)}")
            continue
        try:
            members = parse_device_set(str(entry["devices"]), devices)
        except ValueError as err:
            issues.add(f"{where}.devices", f"{err} (the machine has {devices} devices)")
            continue
        for d in members:
            if d in taken:
                issues.add(f"{where}.devices", f"device {d} is already of kind {taken[d]!r}")
                break
            taken[d] = name
        if not isinstance(entry["machine"], str) or not entry["machine"]:
            issues.add(f"{where}.machine", f"expected a machine file or shipped name, got {shown(entry['machine'])}")
            continue
        try:
            machine = load_arch(resolve_machine(entry["machine"], Path(source).parent))
        except ConfigError as err:
            issues.add(f"{where}.machine", str(err))
            continue
        fabrics = [c.name for c in machine.components if c.kind in ("fabric", "network")]
        if machine.device_count > 1 or fabrics:
            issues.add(f"{where}.machine", f"{machine.source}: a device kind is one device without fabrics "
                       f"(this file has {machine.device_count} devices{', and ' + ', '.join(fabrics) if fabrics else ''})")
            continue
        kinds.append(DeviceKind(str(name), members, machine))
    return tuple(kinds)


def _component_config(cls: type, block: dict[str, Any], where: str, issues: Issues) -> Any:
    """The built config of component ``block`` (its ``kind`` key is left out)."""
    same = _BUILT_BLOCKS.get((cls, where, id(block)))
    if same is not None and same[0] is block:
        return same[1]
    body = {k: v for k, v in block.items() if k != "kind"}
    try:
        key = (cls, where, json.dumps(body, sort_keys=True, allow_nan=True))
    except (TypeError, ValueError):   # a value JSON cannot write (its problem is reported below)
        key = None
    config = _BUILT.get(key) if key is not None else None
    if config is None:
        config = build_config(cls.Config, body, where, issues)
        if key is not None and config is not None:
            _keep(_BUILT, key, config)
    if config is not None:
        _keep(_BUILT_BLOCKS, (cls, where, id(block)), (block, config))
    return config


def _keep(cache: dict, key: tuple, value: Any) -> None:
    remember(cache, key, value, _BUILT_SIZE)


def _check_wiring_partial(raw: dict[str, Any], specs: list[ComponentSpec], issues: Issues) -> None:
    """Wiring checks that need only the components that did build (others are reported)."""
    if not specs or not isinstance(raw.get("components"), dict):
        return
    machine = MachineConfig(name="", clock_hz=1.0, components=tuple(specs))
    _check_wiring(machine, issues, complete=False, names=tuple(map(str, raw["components"])))


def _check_wiring(machine: MachineConfig, issues: Issues, complete: bool = True,
                  names: tuple[str, ...] = ()) -> None:
    """Every reference between components, placement and dispatch names a component of the
    right role; ``complete`` False skips rules about the machine as a whole (some
    components of ``names`` did not build)."""
    classes = {c.name: _component_class(c.kind, c.kind) for c in machine.components}
    tiers = [n for n, cls in classes.items() if cls.role == "tier"]
    units = [n for n, cls in classes.items() if cls.role == "compute"]
    unknown = set(names) - set(classes)   # failed to build: their role is not known
    if complete and not tiers:
        issues.add("components", "a machine needs at least one memory tier")
    for spec in machine.components:
        where = f"components.{spec.name}"
        if spec.name in units:
            instances = classes[spec.name](spec.name, spec.config, machine.clock_hz).instances
            if instances > MAX_INSTANCES:
                issues.add(f"{where}.count", f"{instances:,} instances that run ops at once; at most "
                           f"{MAX_INSTANCES:,}")
        if spec.name in units and spec.config.memory not in tiers and spec.config.memory not in unknown:
            issues.add(f"{where}.memory", f"{spec.config.memory!r} is not a memory tier"
                       f"{did_you_mean(spec.config.memory, tiers)}")
        if classes[spec.name].role == "link" and hasattr(spec.config, "between"):   # not a fabric
            for end in spec.config.between:
                if end not in tiers and end not in unknown:
                    issues.add(f"{where}.between", f"{shown(end)} is not a memory tier"
                               f"{did_you_mean(str(end), tiers)}")
        spill_to = getattr(spec.config, "spill_to", "")
        if spill_to and spill_to not in unknown and (spill_to not in tiers or spill_to == spec.name):
            issues.add(f"{where}.spill_to", f"{spill_to!r} is not another memory tier"
                       f"{did_you_mean(spill_to, tiers)}")
    if complete:
        _check_fabrics(machine, issues)
    for space, tier in machine.placement.items():
        if tier not in tiers and tier not in unknown:
            issues.add(f"placement.{space}", f"{tier!r} is not a memory tier{did_you_mean(tier, tiers)}")
    for kind, unit in machine.dispatch.items():
        if kind not in KINDS:
            issues.add(f"dispatch.{kind}", f"unknown op kind{did_you_mean(kind, tuple(KINDS))}")
        elif unit in unknown:
            continue
        elif unit not in units:
            issues.add(f"dispatch.{kind}", f"{unit!r} is not a compute unit{did_you_mean(unit, units)}")
        elif kind not in classes[unit].handles:
            issues.add(f"dispatch.{kind}", f"a {classes[unit].kind} cannot run {kind!r} ops "
                       f"(it runs: {', '.join(classes[unit].handles)})")


def _check_fabrics(machine: MachineConfig, issues: Issues) -> None:
    """A machine of several devices has one fabric; of several nodes, one network too."""
    fabrics = [c.name for c in machine.components if c.kind == "fabric"]
    networks = [c.name for c in machine.components if c.kind == "network"]
    for names, kind, count, key in ((fabrics, "fabric", machine.devices, "devices"),
                                    (networks, "network", machine.nodes, "nodes")):
        if len(names) > 1:
            issues.add(f"components.{names[1]}", f"at most one {kind} component, got {', '.join(names)}")
        if count > 1 and not names:
            issues.add(key, f"{count} {key} need a component of kind {kind!r} to join them")
