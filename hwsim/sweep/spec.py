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
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hwsim.sweep.constraints import (  # noqa: F401 - compile_expression is part of this module's API
    Expression,
    compile_expression,
    numeric,
)
from hwsim.sweep.sweep_file import (  # noqa: F401 - the file schema and its loader
    COMBINE,
    DEFAULT_METRICS,
    DEFAULT_PARETO,
    FIDELITIES,
    MAX_POINTS,
    OBJECTIVE_COLUMNS,
    SAMPLE_METHODS,
    TOP_KEYS,
    load_sweep,
    sweep_from_dict,
)


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
