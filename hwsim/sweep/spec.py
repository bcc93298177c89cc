"""Sweep file (YAML) → validated :class:`SweepSpec` → the list of design points.

A sweep names a base machine, the traces to replay on every point, and axes over dotted
machine keys, combined as a ``grid`` (every combination), a ``zip`` (the i-th value of every
axis together) or a seeded ``sample`` (``random`` or ``latin_hypercube``)::

    machine: ../../arch_configs/systolic-128.yaml      # relative to this file
    traces: [../../traces/examples/gemm.csv,
             {family: hrm, preset: hrm-text-1b, params: {seq_len: 256}, seed: 0}]
    axes:
      components.hbm.bandwidth: [1 TB/s, 2 TB/s]       # a list of values
      components.sram.capacity: {low: 8 MiB, high: 64 MiB, log: true, num: 4}
    combine: grid
    constraints: ["components.sram.capacity <= 32 MiB"]
    pareto: {maximize: [throughput], minimize: [energy_per_work_unit_j, on_chip_bytes]}
    metrics: [throughput, energy_per_work_unit_j, bytes_hbm]   # drawn against every axis

Constraints are written in a small expression language (see :func:`compile_expression`),
parsed here and never handed to Python's ``eval``. Every error is a ConfigError naming the
sweep file and the key path. ``pareto`` names the objectives of the report's Pareto front
(table columns or axis keys; the default is the one shown) and ``metrics`` the columns drawn
against every axis (default: throughput and energy per work unit).
"""

from __future__ import annotations

import itertools
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hwsim.config.catalog import resolve_machine
from hwsim.config.yaml_file import read_yaml_mapping
from hwsim.errors import ConfigError, did_you_mean
from hwsim.sweep.constraints import (
    Expression,
    compile_expression,
    compile_rule,
    numeric,
    quantity_dimension,
)

TOP_KEYS = ("name", "description", "machine", "overrides", "traces", "axes", "combine", "sample",
            "constraints", "fidelity", "allow_overflow", "pareto", "metrics")
COMBINE = ("grid", "zip", "sample")
SAMPLE_METHODS = ("random", "latin_hypercube")
FIDELITIES = ("event", "roofline")
RANGE_KEYS = ("low", "high", "log", "num", "integer")
TRACE_KEYS = ("label", "family", "preset", "params", "seed", "path")
#: The default Pareto objectives: throughput up, energy per work unit and on-chip storage down.
DEFAULT_PARETO = {"maximize": ("throughput",), "minimize": ("energy_per_work_unit_j", "on_chip_bytes")}
#: The metrics the report draws against every axis unless the sweep file names others.
DEFAULT_METRICS = ("throughput", "energy_per_work_unit_j")
#: Table columns a Pareto objective or a plotted metric may name besides the axes and the per-tier ``bytes_*``
#: and ``peak_bytes_*`` columns (see :mod:`hwsim.sweep.table`).
OBJECTIVE_COLUMNS = ("throughput", "seconds", "total_cycles", "energy_j", "energy_per_work_unit_j",
                     "avg_power_w", "busiest_utilization", "on_chip_bytes")


@dataclass(frozen=True)
class Axis:
    """One swept machine key: explicit ``values``, or a numeric range ``low``..``high``
    (base units; ``log`` spacing; ``num`` values on a grid; ``integer`` rounds)."""

    key: str
    values: tuple[Any, ...] = ()
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    num: int = 0
    integer: bool = False
    dimension: str = ""      # "bytes", "bandwidth", ... when the values are quantities

    @property
    def is_range(self) -> bool:
        return not self.values

    def grid_values(self) -> tuple[Any, ...]:
        """The values a grid or zip takes: the list, or ``num`` evenly (log-)spaced values."""
        if self.values:
            return self.values
        space = np.geomspace if self.log else np.linspace
        return tuple(self._cast(v) for v in space(self.low, self.high, self.num))

    def at(self, u: float) -> Any:
        """The value at quantile ``u`` in [0, 1): a range point or a list choice."""
        if self.values:
            return self.values[min(int(u * len(self.values)), len(self.values) - 1)]
        if self.log:
            return self._cast(math.exp(math.log(self.low) + u * (math.log(self.high) - math.log(self.low))))
        return self._cast(self.low + u * (self.high - self.low))

    def _cast(self, value: float) -> Any:
        return int(round(value)) if self.integer else float(value)


@dataclass(frozen=True)
class TraceSource:
    """A trace file (absolute ``path``) or a workload spec (``family``, ``preset``, ``params``, ``seed``)."""

    label: str
    path: str = ""
    family: str = ""
    preset: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    seed: int = 0

    @property
    def is_workload(self) -> bool:
        return bool(self.family)


@dataclass(frozen=True)
class Point:
    """One design point: its stable id and the value of every axis (``key -> value``)."""

    point_id: str
    values: dict[str, Any]


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep file. ``machine`` and trace paths are absolute."""

    source: str
    name: str
    machine: str
    traces: tuple[TraceSource, ...]
    axes: tuple[Axis, ...]
    combine: str = "grid"
    sample_method: str = "random"
    sample_n: int = 0
    sample_seed: int = 0
    overrides: dict[str, Any] = field(default_factory=dict)
    constraints: tuple[Expression, ...] = ()
    fidelity: str = "event"
    allow_overflow: bool = False
    description: str = ""
    pareto: dict[str, tuple[str, ...]] = field(default_factory=lambda: dict(DEFAULT_PARETO))
    metrics: tuple[str, ...] = DEFAULT_METRICS

    def combinations(self) -> int:
        """How many points the axes give before constraints drop any."""
        if self.combine == "sample":
            return self.sample_n
        lengths = [len(a.grid_values()) for a in self.axes]
        return math.prod(lengths) if self.combine == "grid" else lengths[0]

    def points(self) -> list[Point]:
        """Every point that passes the constraints, in a deterministic order.

        A point's id is its index among all combinations (or samples) before constraints,
        so editing a constraint never renames the points that remain.
        """
        keys = [a.key for a in self.axes]
        if self.combine == "grid":
            combos = itertools.product(*(a.grid_values() for a in self.axes))
        elif self.combine == "zip":
            combos = zip(*(a.grid_values() for a in self.axes), strict=True)
        else:
            combos = self._samples()
        rows = [dict(zip(keys, combo, strict=True)) for combo in combos]
        width = max(4, len(str(len(rows) - 1)))
        points = []
        for index, values in enumerate(rows):
            view = {k: numeric(v) for k, v in values.items()}
            if all(rule.holds(view) for rule in self.constraints):
                points.append(Point(f"p{index:0{width}d}", values))
        return points

    def _samples(self) -> list[tuple[Any, ...]]:
        rng = np.random.default_rng(self.sample_seed)
        n = self.sample_n
        columns = []
        for axis in self.axes:
            if self.sample_method == "latin_hypercube":
                # One sample in each of n equal strata per axis, strata shuffled per axis.
                u = (rng.permutation(n) + rng.random(n)) / n
            else:
                u = rng.random(n)
            columns.append([axis.at(float(x)) for x in u])
        return list(zip(*columns, strict=True))


def load_sweep(path: str | os.PathLike) -> SweepSpec:
    """Read and validate a sweep file; raises ConfigError naming the file and key path."""
    path = Path(path)
    return sweep_from_dict(read_yaml_mapping(path, "sweep file"), path.parent, str(path))


def sweep_from_dict(raw: dict[str, Any], base: str | os.PathLike = ".", source: str = "<dict>") -> SweepSpec:
    """A sweep from a mapping with a sweep file's keys (``{"machine": "h200", "traces":
    [...], "axes": {...}}``), validated like a file. Relative paths resolve against ``base``;
    ``machine`` may also name a shipped machine. Errors name ``source``."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: a sweep must be a mapping, got {type(raw).__name__}")
    path = Path(base) / (Path(source).name if source != "<dict>" else "sweep")
    src = source
    raw = dict(raw)
    _check_keys(raw, TOP_KEYS, f"{src}: ")
    for required in ("machine", "traces", "axes"):
        if required not in raw:
            raise ConfigError(f"{src}: {required}: required key is missing")
    try:  # a file (relative to the sweep), else a shipped machine's name
        machine = resolve_machine(str(raw["machine"]), base=path.parent)
    except ConfigError:
        raise ConfigError(f"{src}: machine: no such file {raw['machine']!r} (looked in {path.parent} "
                          f"and the shipped machines)") from None
    axes = _axes(raw["axes"], src)
    combine = _choice(raw.get("combine", "grid"), COMBINE, f"{src}: combine")
    sample = _sample(raw.get("sample"), combine, src)
    for axis in axes:
        if combine != "sample" and axis.is_range and axis.num < 1:
            raise ConfigError(f"{src}: axes.{axis.key}: a range in a {combine} needs num (values to take)")
    lengths = {a.key: len(a.grid_values()) for a in axes} if combine == "zip" else {}
    if len(set(lengths.values())) > 1:
        listed = ", ".join(f"{k}: {n}" for k, n in lengths.items())
        raise ConfigError(f"{src}: axes: zip needs axes of equal length ({listed})")
    overrides = raw.get("overrides") or {}
    if not isinstance(overrides, dict):
        raise ConfigError(f"{src}: overrides: expected a mapping of key.path: value")
    return SweepSpec(
        source=src, name=str(raw.get("name") or path.stem), machine=str(machine.resolve()),
        traces=_traces(raw["traces"], path.parent, src), axes=axes, combine=combine,
        overrides={str(k): v for k, v in overrides.items()},
        constraints=_constraints(raw.get("constraints") or [], [a.key for a in axes], src),
        fidelity=_choice(raw.get("fidelity", "event"), FIDELITIES, f"{src}: fidelity"),
        allow_overflow=_flag(raw.get("allow_overflow", False), f"{src}: allow_overflow"),
        description=str(raw.get("description", "")),
        pareto=_pareto(raw.get("pareto"), [a.key for a in axes], src),
        metrics=_metrics(raw.get("metrics"), src), **sample)


def _check_keys(block: dict, allowed: tuple[str, ...], prefix: str) -> None:
    for key in block:
        if key not in allowed:
            raise ConfigError(f"{prefix}{key}: unknown key{did_you_mean(str(key), allowed)}")


def _choice(value: Any, choices: tuple[str, ...], where: str) -> str:
    if str(value) not in choices:
        raise ConfigError(f"{where}: {value!r} is not one of {', '.join(choices)}{did_you_mean(str(value), choices)}")
    return str(value)


def _whole(value: Any, where: str, minimum: int | None = None) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or (minimum is not None and value < minimum):
        bound = f" >= {minimum}" if minimum is not None else ""
        raise ConfigError(f"{where}: expected a whole number{bound}, got {value!r}")
    return value


def _flag(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    return value


def _traces(value: Any, base: Path, src: str) -> tuple[TraceSource, ...]:
    items = value if isinstance(value, list) else [value]
    if not items:
        raise ConfigError(f"{src}: traces: expected at least one trace path or workload spec")
    out = []
    for i, item in enumerate(items):
        where = f"{src}: traces[{i}]"
        item = {"path": item} if isinstance(item, str) else item
        if not isinstance(item, dict):
            raise ConfigError(f"{where}: expected a path or a mapping {{family, preset, params, seed}}")
        _check_keys(item, ("path", "label") if "path" in item else TRACE_KEYS, f"{where}.")
        if "path" in item:
            file = base / str(item["path"])
            if not file.exists():
                raise ConfigError(f"{where}: no such trace file {item['path']!r} (looked in {base})")
            out.append(TraceSource(label=str(item.get("label") or item["path"]), path=str(file.resolve())))
            continue
        for key in ("family", "preset"):
            if not item.get(key):
                raise ConfigError(f"{where}.{key}: required for a workload spec (or give a path)")
        params = item.get("params") or {}
        if not isinstance(params, dict):
            raise ConfigError(f"{where}.params: expected a mapping of parameter: value")
        seed = _whole(item.get("seed", 0), f"{where}.seed")
        params = {str(k): v for k, v in sorted(params.items())}
        shown = "".join(f" {k}={v}" for k, v in params.items())
        label = item.get("label") or f"{item['family']}:{item['preset']}{shown} seed={seed}"
        out.append(TraceSource(label=str(label), family=str(item["family"]), preset=str(item["preset"]),
                               params=params, seed=seed))
    labels = [t.label for t in out]
    for label in labels:
        if labels.count(label) > 1:
            raise ConfigError(f"{src}: traces: {label!r} appears twice (give one a label)")
    return tuple(out)


def _axes(value: Any, src: str) -> tuple[Axis, ...]:
    if not isinstance(value, dict) or not value:
        raise ConfigError(f"{src}: axes: expected a mapping of dotted machine key: values")
    out = []
    for key, spec in value.items():
        key, where = str(key), f"{src}: axes.{key}"
        if isinstance(spec, list) and spec:
            out.append(Axis(key, values=tuple(spec), dimension=_common_dimension(spec)))
            continue
        if not isinstance(spec, dict):
            raise ConfigError(f"{where}: expected a non-empty list of values or a range {{low, high, log, num}}")
        _check_keys(spec, RANGE_KEYS, f"{where}.")
        if "low" not in spec or "high" not in spec:
            raise ConfigError(f"{where}: a range needs low and high")
        (low, low_dim), (high, high_dim) = _quantity(spec["low"], f"{where}.low"), _quantity(spec["high"], f"{where}.high")
        if low_dim != high_dim and "count" not in (low_dim, high_dim):
            raise ConfigError(f"{where}: low is a {low_dim} and high a {high_dim} quantity")
        log = _flag(spec.get("log", False), f"{where}.log")
        if not low < high or (log and low <= 0):
            raise ConfigError(f"{where}: need 0 < low < high for a log range, low < high otherwise "
                              f"(got {spec['low']!r} and {spec['high']!r})")
        out.append(Axis(key, low=low, high=high, log=log, num=_whole(spec.get("num", 0), f"{where}.num", 0),
                        integer=_flag(spec.get("integer", False), f"{where}.integer"),
                        dimension=next((d for d in (low_dim, high_dim) if d != "count"), "")))
    return tuple(out)


def _common_dimension(values: list[Any]) -> str:
    """The dimension all of a list axis's values share when they are quantity strings, else ""."""
    parsed = [quantity_dimension(v) if isinstance(v, str) else None for v in values]
    dimensions = {p[1] if p else None for p in parsed}
    dimension = dimensions.pop() if len(dimensions) == 1 else None
    return dimension if dimension not in (None, "count") else ""


def _quantity(value: Any, where: str) -> tuple[float, str]:
    """A number or a quantity string ("8 MiB") as a base-unit float and its dimension."""
    parsed = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        parsed = float(value), "count"
    elif isinstance(value, str):
        parsed = quantity_dimension(value)
    if parsed is None:
        raise ConfigError(f"{where}: cannot read {value!r} as a number or a quantity (e.g. '8 MiB', '2 TB/s')")
    return parsed


def _sample(value: Any, combine: str, src: str) -> dict[str, Any]:
    if combine != "sample":
        if value is not None:
            raise ConfigError(f"{src}: sample: only used with combine: sample (combine is {combine!r})")
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{src}: sample: combine: sample needs sample: {{method, n, seed}}")
    _check_keys(value, ("method", "n", "seed"), f"{src}: sample.")
    return {"sample_method": _choice(value.get("method", "latin_hypercube"), SAMPLE_METHODS, f"{src}: sample.method"),
            "sample_n": _whole(value.get("n"), f"{src}: sample.n", 1),
            "sample_seed": _whole(value.get("seed", 0), f"{src}: sample.seed")}


def _column(name: str, known: tuple[str, ...], where: str) -> str:
    """``name`` if the results table will have it (a known column, or bytes_<tier or link>)."""
    if name not in known and not name.startswith(("bytes_", "peak_bytes_")):
        raise ConfigError(f"{where}: unknown column {name!r}{did_you_mean(name, known)} "
                          f"(one of {', '.join(OBJECTIVE_COLUMNS)}, an axis, or bytes_<tier>)")
    return name


def _metrics(value: Any, src: str) -> tuple[str, ...]:
    """The metrics drawn against every axis: a list of result columns."""
    if value is None:
        return DEFAULT_METRICS
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not names:
        raise ConfigError(f"{src}: metrics: expected a list of result columns, e.g. [throughput, bytes_hbm]")
    return tuple(_column(str(name), OBJECTIVE_COLUMNS, f"{src}: metrics") for name in names)


def _pareto(value: Any, keys: list[str], src: str) -> dict[str, tuple[str, ...]]:
    """The Pareto objectives: ``{maximize: [...], minimize: [...]}`` of table columns or axes."""
    if value is None:
        return dict(DEFAULT_PARETO)
    if not isinstance(value, dict) or not value:
        raise ConfigError(f"{src}: pareto: expected {{maximize: [columns], minimize: [columns]}}")
    _check_keys(value, ("maximize", "minimize"), f"{src}: pareto.")
    known = (*OBJECTIVE_COLUMNS, *keys)
    out: dict[str, tuple[str, ...]] = {}
    for sense in ("maximize", "minimize"):
        names = value.get(sense) or []
        names = [names] if isinstance(names, str) else names
        if not isinstance(names, list):
            raise ConfigError(f"{src}: pareto.{sense}: expected a list of column names")
        out[sense] = tuple(_column(str(name), known, f"{src}: pareto.{sense}") for name in names)
    chosen = [*out["maximize"], *out["minimize"]]
    if not chosen or len(set(chosen)) < len(chosen):
        raise ConfigError(f"{src}: pareto: name each objective once, at least one in all (got {chosen})")
    return out


def _constraints(value: Any, keys: list[str], src: str) -> tuple[Expression, ...]:
    if not isinstance(value, list):
        value = [value]
    out = []
    for i, item in enumerate(value):
        where = f"{src}: constraints[{i}]"
        if isinstance(item, str):
            out.append(compile_expression(item, keys, where))
        elif isinstance(item, dict):
            out.append(compile_rule(item, keys, where))
        else:
            raise ConfigError(f"{where}: expected an expression string or {{key, op, value}}")
    return tuple(out)


# -- constraints: a small expression language ---------------------------------------------
#
# A constraint is one expression over axis values: comparisons (chains allowed: "1 <= a < 8"),
# ``and``/``or``/``not``, ``in``/``not in`` a list, + - * / %, numbers, quantities ("16 MiB",
# "2 TB/s", compared in base units), quoted text, true/false, and min/max/abs/log2. An axis
# key may be shortened to any unique dotted suffix ("sram.capacity"). The text is parsed with
# Python's own grammar (``ast.parse``) and the tree is walked here, node type by node type:
# names resolve only to axes and calls only to the four functions, so nothing is executed.

