"""The sweep file's schema (typed fields, built by :func:`hwsim.config.fields.build_config`)
and :func:`load_sweep`, which turns a file into a validated :class:`~hwsim.sweep.spec.SweepSpec`.

Every problem of a file is reported at once, each as ``file:line: key.path: message``. A
sweep may have at most :data:`MAX_POINTS` combinations, counted before any is built.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from hwsim.config.fields import build_config, param
from hwsim.config.issues import Issues
from hwsim.config.yaml_file import load_yaml
from hwsim.errors import ConfigError, did_you_mean, shown
from hwsim.sweep.constraints import Expression, compile_expression, compile_rule, quantity_dimension

COMBINE = ("grid", "zip", "sample")
SAMPLE_METHODS = ("random", "latin_hypercube")
FIDELITIES = ("event", "roofline")
#: Most design points (combinations before constraints, or samples) one sweep may have.
MAX_POINTS = 100_000
#: Largest seed (numpy takes any non-negative int; a seed travels in JSON as int64).
MAX_SEED = 2**63 - 1
#: The default Pareto objectives: throughput up, energy per work unit and on-chip storage down.
DEFAULT_PARETO = {"maximize": ("throughput",), "minimize": ("energy_per_work_unit_j", "on_chip_bytes")}
#: The metrics the report draws against every axis unless the sweep file names others.
DEFAULT_METRICS = ("throughput", "energy_per_work_unit_j")
#: Table columns a Pareto objective or a plotted metric may name besides the axes and the per-tier ``bytes_*``
#: and ``peak_bytes_*`` columns (see :mod:`hwsim.sweep.table`).
OBJECTIVE_COLUMNS = ("throughput", "seconds", "total_cycles", "energy_j", "energy_per_work_unit_j",
                     "avg_power_w", "busiest_utilization", "on_chip_bytes")


@dataclass(frozen=True, kw_only=True)
class TraceEntry:
    """One entry of ``traces``: a trace file, or a workload spec generated on the workers."""

    SHORTHAND = "path"   # a bare string in the list is a path

    path: str = param("", unit="text", help="trace file (.csv or .parquet), relative to the sweep file")
    label: str = param("", unit="text", max_length=200, help="name of the trace in tables (default: the "
                       "path, or family:preset params seed)")
    family: str = param("", unit="text", help="workload family (see hwsim trace --list)")
    preset: str = param("", unit="text", help="model preset of the family")
    params: dict = param({}, unit="map", help="parameter overrides of the preset")
    seed: int = param(0, unit="count", minimum=0, maximum=MAX_SEED, help="random seed of the workload")

    def problems(self):
        if self.path and (self.family or self.preset or self.params or self.seed):
            yield "path", "give either a path or a workload spec (family, preset, params, seed), not both"
        if not self.path:
            for key in ("family", "preset"):
                if not getattr(self, key):
                    yield key, "required for a workload spec (or give a path)"


@dataclass(frozen=True, kw_only=True)
class RangeSpec:
    """A numeric axis: ``low`` to ``high`` (numbers or quantities of one dimension)."""

    low: Any = param(unit="scalar", help="smallest value, a number or a quantity such as '8 MiB'")
    high: Any = param(unit="scalar", help="largest value, of the same dimension as low")
    log: bool = param(False, unit="bool", help="space values evenly on a log scale")
    num: int = param(0, unit="count", minimum=0, maximum=MAX_POINTS,
                     help="values a grid or zip takes (sampled sweeps draw instead)")
    integer: bool = param(False, unit="bool", help="round every value to a whole number")


@dataclass(frozen=True, kw_only=True)
class SampleSpec:
    """How a ``combine: sample`` sweep draws its points."""

    method: str = param("latin_hypercube", unit="text", choices=SAMPLE_METHODS, help="random or latin_hypercube")
    n: int = param(unit="count", minimum=1, maximum=MAX_POINTS, help="points to draw")
    seed: int = param(0, unit="count", minimum=0, maximum=MAX_SEED, help="seed of the draw")


@dataclass(frozen=True, kw_only=True)
class ParetoSpec:
    """The objectives of the report's Pareto front (result columns or axis keys)."""

    maximize: tuple = param([], unit="list", single=True, items="text", help="columns to maximise, e.g. [throughput]")
    minimize: tuple = param([], unit="list", single=True, items="text", help="columns to minimise, e.g. [energy_j]")


@dataclass(frozen=True, kw_only=True)
class SweepFile:
    """A sweep file: a base machine, traces, axes over its keys, and how to combine them."""

    name: str = param("", unit="text", max_length=100, help="sweep name (default: the file name)")
    description: str = param("", unit="text", help="one line saying what the sweep asks")
    machine: str = param(unit="text", help="base machine file, relative to the sweep file")
    overrides: dict = param({}, unit="map", help="machine key.path: value edits applied to every point")
    traces: tuple = param(unit="list", single=True, items=TraceEntry, help="trace files or workload specs; every "
                          "point runs on each")
    axes: dict = param(unit="map", help="dotted machine key: a list of values or a range {low, high, log, num}")
    combine: str = param("grid", unit="text", choices=COMBINE, help="grid (every combination), zip "
                         "(i-th values together) or sample")
    sample: SampleSpec | None = param(None, unit="config", config=SampleSpec, help="with combine: sample")
    constraints: tuple = param([], unit="list", single=True, help="expressions over axis values, or {key, op, value} "
                               "rules; points that break one are skipped")
    fidelity: str = param("event", unit="text", choices=FIDELITIES, help="event (SimPy replay) or roofline")
    allow_overflow: bool = param(False, unit="bool", help="record points whose working set exceeds a tier")
    pareto: ParetoSpec | None = param(None, unit="config", config=ParetoSpec,
                                      help="objectives of the Pareto front (default: throughput up, energy "
                                           "per work unit and on-chip bytes down)")
    metrics: tuple = param(list(DEFAULT_METRICS), unit="list", single=True, items="text",
                           help="result columns the report draws against every axis")


TOP_KEYS = tuple(f.name for f in fields(SweepFile))


def load_sweep(path: str | os.PathLike):
    """Read and validate a sweep file; raises ConfigError with every problem, each naming
    the file, line and key path."""
    path = Path(path)
    document = load_yaml(path, "sweep file")
    return _build_sweep(document.data, path.parent, str(path), path.stem, Issues(str(path), document.marks))


def sweep_from_dict(raw: dict[str, Any], base: str | os.PathLike = ".", source: str = "<dict>"):
    """A sweep from a mapping with a sweep file's keys (``{"machine": "h200", "traces":
    [...], "axes": {...}}``), validated like a file. Relative paths resolve against ``base``;
    ``machine`` may also name a shipped machine. Errors name ``source``."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: a sweep must be a mapping, got {type(raw).__name__}")
    name = Path(source).stem if source != "<dict>" else "sweep"
    return _build_sweep(raw, Path(base), source, name, Issues(source))


def _build_sweep(raw: dict[str, Any], base: Path, src: str, default_name: str, issues: Issues):
    from hwsim.config.catalog import resolve_machine
    from hwsim.sweep.spec import Axis, SweepSpec

    raw = dict(raw)
    top = build_config(SweepFile, raw, "", issues)
    if top is None:
        issues.raise_if_any()
    try:  # a file (relative to the sweep), else a shipped machine's name
        machine = resolve_machine(top.machine, base=base)
    except ConfigError:
        issues.add("machine", f"no such file {top.machine!r} (looked in {base} and the shipped machines)")
        machine = base / top.machine
    axes = _axes(top.axes, issues)
    keys = [a.key for a in axes]
    if top.combine == "sample" and top.sample is None:
        issues.add("sample", "combine: sample needs sample: {method, n, seed}")
    if top.combine != "sample" and top.sample is not None:
        issues.add("sample", f"only used with combine: sample (combine is {top.combine!r})")
    for axis in axes:
        if top.combine != "sample" and axis.is_range and axis.num < 1:
            issues.add(f"axes.{axis.key}", f"a range in a {top.combine} needs num (values to take)")
    traces = _traces(top.traces, base, issues)
    constraints = _constraints(top.constraints, keys, issues)
    pareto = _pareto(top.pareto, keys, issues)
    metrics = tuple(_column(str(name), OBJECTIVE_COLUMNS, "metrics", issues) for name in top.metrics)
    if not top.metrics:
        issues.add("metrics", "expected a list of result columns, e.g. [throughput, bytes_hbm]")
    issues.raise_if_any()
    sample = ({"sample_method": top.sample.method, "sample_n": top.sample.n, "sample_seed": top.sample.seed}
              if top.sample is not None else {})
    spec = SweepSpec(
        source=src, name=top.name or default_name, machine=str(machine.resolve()), traces=traces,
        axes=tuple(Axis(**a.__dict__) for a in axes), combine=top.combine,
        overrides={str(k): v for k, v in top.overrides.items()}, constraints=constraints,
        fidelity=top.fidelity, allow_overflow=top.allow_overflow, description=top.description,
        pareto=pareto, metrics=metrics, **sample)
    _check_size(spec, issues)
    _check_machine(spec, issues)
    issues.raise_if_any()
    return spec


@dataclass
class _AxisDraft:
    key: str
    values: tuple = ()
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    num: int = 0
    integer: bool = False
    dimension: str = ""

    @property
    def is_range(self) -> bool:
        return not self.values


def _axes(value: dict, issues: Issues) -> list[_AxisDraft]:
    if not value:
        issues.add("axes", "expected a mapping of dotted machine key: values")
    out = []
    for key, spec in value.items():
        key, where = str(key), f"axes.{key}"
        if isinstance(spec, list):
            if not spec:
                issues.add(where, "expected a non-empty list of values")
            elif len(spec) > MAX_POINTS:
                issues.add(where, f"{len(spec):,} values, more than the {MAX_POINTS:,} a sweep may have")
            else:
                out.append(_AxisDraft(key, values=tuple(spec), dimension=_common_dimension(spec)))
            continue
        if not isinstance(spec, dict):
            issues.add(where, "expected a non-empty list of values or a range {low, high, log, num}")
            continue
        rng = build_config(RangeSpec, spec, where, issues)
        if rng is None:
            continue
        low, high = _quantity(rng.low, f"{where}.low", issues), _quantity(rng.high, f"{where}.high", issues)
        if low is None or high is None:
            continue
        (low_v, low_dim), (high_v, high_dim) = low, high
        if low_dim != high_dim and "count" not in (low_dim, high_dim):
            issues.add(where, f"low is a {low_dim} and high a {high_dim} quantity")
        elif not low_v < high_v or (rng.log and low_v <= 0):
            issues.add(where, "need 0 < low < high for a log range, low < high otherwise "
                       f"(got {shown(rng.low)} and {shown(rng.high)})")
        else:
            out.append(_AxisDraft(key, low=low_v, high=high_v, log=rng.log, num=rng.num, integer=rng.integer,
                                  dimension=next((d for d in (low_dim, high_dim) if d != "count"), "")))
    return out


def _common_dimension(values: list[Any]) -> str:
    """The dimension all of a list axis's values share when they are quantity strings, else ""."""
    parsed = [quantity_dimension(v) if isinstance(v, str) else None for v in values]
    dimensions = {p[1] if p else None for p in parsed}
    dimension = dimensions.pop() if len(dimensions) == 1 else None
    return dimension if dimension not in (None, "count") else ""


def _quantity(value: Any, where: str, issues: Issues) -> tuple[float, str] | None:
    """A number or a quantity string ("8 MiB") as a finite base-unit float and its dimension."""
    parsed = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        parsed = float(value), "count"
    elif isinstance(value, str):
        parsed = quantity_dimension(value)
    if parsed is None or not math.isfinite(parsed[0]) or abs(parsed[0]) > 1e30:
        issues.add(where, f"cannot read {shown(value)} as a finite number or a quantity (e.g. '8 MiB', '2 TB/s')")
        return None
    return parsed


def _traces(entries: tuple, base: Path, issues: Issues):
    from hwsim.sweep.spec import TraceSource

    if not entries:
        issues.add("traces", "expected at least one trace path or workload spec")
    out = []
    for i, item in enumerate(entries):
        where = f"traces[{i}]"
        if item.path:
            file = base / item.path
            if not file.is_file():
                issues.add(where, f"no such trace file {item.path!r} (looked in {base})")
                continue
            out.append(TraceSource(label=item.label or item.path, path=str(file.resolve())))
            continue
        params = {str(k): v for k, v in sorted(item.params.items())}
        shown_params = "".join(f" {k}={v}" for k, v in params.items())
        label = item.label or f"{item.family}:{item.preset}{shown_params} seed={item.seed}"
        out.append(TraceSource(label=label[:200], family=item.family, preset=item.preset, params=params,
                               seed=item.seed))
    labels = [t.label for t in out]
    for label in sorted(set(labels)):
        if labels.count(label) > 1:
            issues.add("traces", f"{label!r} appears twice (give one a label)")
    return tuple(out)


def _column(name: str, known: tuple[str, ...], where: str, issues: Issues) -> str:
    """``name`` if the results table will have it (a known column, or bytes_<tier or link>)."""
    if name not in known and not name.startswith(("bytes_", "peak_bytes_")):
        issues.add(where, f"unknown column {name!r}{did_you_mean(name, known)} "
                   f"(one of {', '.join(OBJECTIVE_COLUMNS)}, an axis, or bytes_<tier>)")
    return name


def _pareto(value, keys: list[str], issues: Issues) -> dict[str, tuple[str, ...]]:
    """The Pareto objectives: ``{maximize: [...], minimize: [...]}`` of table columns or axes."""
    if value is None:
        return dict(DEFAULT_PARETO)
    known = (*OBJECTIVE_COLUMNS, *keys)
    out = {sense: tuple(_column(name, known, f"pareto.{sense}", issues) for name in getattr(value, sense))
           for sense in ("maximize", "minimize")}
    chosen = [*out["maximize"], *out["minimize"]]
    if not chosen or len(set(chosen)) < len(chosen):
        issues.add("pareto", f"name each objective once, at least one in all (got {chosen})")
    return out


def _constraints(items: tuple, keys: list[str], issues: Issues) -> tuple[Expression, ...]:
    out = []
    for i, item in enumerate(items):
        where = f"constraints[{i}]"
        location = issues.marks.locate(where)
        label = f"{location[0]}:{location[1]}: {where}" if location else f"{issues.source}: {where}"
        try:
            if isinstance(item, str):
                out.append(compile_expression(item, keys, label))
            elif isinstance(item, dict):
                out.append(compile_rule(item, keys, label))
            else:
                issues.add(where, "expected an expression string or {key, op, value}")
        except ConfigError as err:
            issues.extend(err)
    return tuple(out)


def _check_size(spec, issues: Issues) -> None:
    """Refuse more than :data:`MAX_POINTS` combinations before any point is built."""
    if spec.combine == "sample":
        return
    lengths = {a.key: (len(a.values) if a.values else a.num) for a in spec.axes}
    if spec.combine == "zip" and len(set(lengths.values())) > 1:
        listed = ", ".join(f"{k}: {n}" for k, n in lengths.items())
        issues.add("axes", f"zip needs axes of equal length ({listed})")
        return
    total = math.prod(lengths.values()) if spec.combine == "grid" else max(lengths.values(), default=0)
    if total > MAX_POINTS:
        issues.add("axes", f"the {spec.combine} has {total:,} combinations, more than the {MAX_POINTS:,} a "
                   "sweep may have (use combine: sample, or split the sweep)")


def _check_machine(spec, issues: Issues) -> None:
    """The base machine with the sweep's overrides, and with each axis's first value, must
    load; the machine's problems are named under the sweep file's ``machine``, ``overrides``
    or ``axes.<key>`` line, so the sweep file is named too."""
    if issues:
        return
    from hwsim.config.machine import read_arch, resolve_arch

    try:
        raw = read_arch(spec.machine)
        resolve_arch(raw, spec.machine, spec.overrides)
    except ConfigError as err:
        for problem in err.problems:
            issues.add("machine" if not spec.overrides else "overrides", problem)
        return
    for axis in spec.axes:
        value = axis.grid_values()[0] if axis.values or axis.num else axis.at(0.0)
        try:
            resolve_arch(raw, spec.machine, {**spec.overrides, axis.key: value})
        except ConfigError as err:
            for problem in err.problems:
                issues.add(f"axes.{axis.key}", problem)
