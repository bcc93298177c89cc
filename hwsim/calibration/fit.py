"""Fit a machine's constants to measurements: bounded coordinate search on the log error.

The fitted constants are the *fractions and overheads* of a machine (sustained efficiency
per dtype, attention kernel constants, bandwidth fractions, launch costs), never its
datasheet figures. Each is searched within its bounds, one at a time, by golden-section
search, for a few rounds; the loss is the mean absolute log speed plus a penalty on the
mean (bias)::

    loss = mean |log speed| + BIAS_WEIGHT * |mean log speed|

which treats predicting 2x too fast and 2x too slow alike and keeps a category from
drifting to one side. The search is deterministic: the same measurements, machine and
parameters give the same constants.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hwsim.config.machine import read_arch, resolve_arch
from hwsim.engine.machine import Machine
from hwsim.errors import ConfigError

BIAS_WEIGHT = 0.5
GOLDEN = (math.sqrt(5) - 1) / 2


@dataclass(frozen=True)
class Parameter:
    """One constant to fit: its dotted machine key, bounds in base units, and YAML unit."""

    key: str
    low: float
    high: float
    unit: str = ""   # how to write it: "" (a plain number), "us", "ns", "GB/s"

    def format(self, value: float) -> Any:
        scale = {"": 1.0, "us": 1e-6, "ns": 1e-9, "GB/s": 1e9}[self.unit]
        number = float(f"{value / scale:.3g}")
        return number if not self.unit else f"{number:g} {self.unit}"


@dataclass
class FitResult:
    """The fitted values (base units), the loss before and after, and evaluations spent."""

    values: dict[str, float]
    loss_before: float
    loss_after: float
    evaluations: int


def loss(speeds: np.ndarray) -> float:
    """The fit's loss for predicted / measured speeds (see the module docstring)."""
    logs = np.log(np.asarray(speeds, dtype=np.float64))
    return float(np.mean(np.abs(logs)) + BIAS_WEIGHT * abs(np.mean(logs)))


def fit(machine_path: str | Path, parameters: Sequence[Parameter],
        speeds_of: Callable[[Machine], np.ndarray], *, rounds: int = 3, steps: int = 14,
        start: dict[str, float] | None = None, overrides: Sequence[str] = ()) -> FitResult:
    """Fit ``parameters`` of the machine at ``machine_path`` so that ``speeds_of(machine)``
    (predicted / measured speed of each measurement) is as close to 1 as the loss says.

    ``overrides`` (``key.path=value``) apply to every trial before the fitted values;
    ``start`` gives initial values (default: the machine's own, clipped into the bounds).
    Raises ConfigError for a key the machine does not have or empty bounds.
    """
    raw = read_arch(machine_path)
    fixed = list(overrides)
    for p in parameters:
        if not p.low < p.high:
            raise ConfigError(f"fit: {p.key}: bounds must satisfy low < high, got [{p.low}, {p.high}]")
    values = {p.key: float(np.clip((start or {}).get(p.key, _current(raw, machine_path, p, fixed)), p.low, p.high))
              for p in parameters}
    evaluations = 0

    def evaluate(trial: dict[str, float]) -> float:
        nonlocal evaluations
        evaluations += 1
        machine = Machine(resolve_arch(raw, machine_path, fixed + [f"{k}={v!r}" for k, v in trial.items()]))
        return loss(speeds_of(machine))

    best = before = evaluate(values)
    for _ in range(rounds):
        improved = False
        for p in parameters:
            value, score = _golden(lambda x, p=p: evaluate({**values, p.key: x}), p.low, p.high, steps)
            if score < best - 1e-12:
                values[p.key], best, improved = value, score, True
        if not improved:
            break
    return FitResult(values=values, loss_before=before, loss_after=best, evaluations=evaluations)


def _golden(f: Callable[[float], float], low: float, high: float, steps: int) -> tuple[float, float]:
    """Golden-section search of ``f`` on [low, high]; the best point seen and its value."""
    a, b = low, high
    c, d = b - GOLDEN * (b - a), a + GOLDEN * (b - a)
    fc, fd = f(c), f(d)
    best = min((fc, c), (fd, d))
    for _ in range(steps):
        if fc <= fd:
            b, d, fd = d, c, fc
            c = b - GOLDEN * (b - a)
            fc = f(c)
        else:
            a, c, fc = c, d, fd
            d = a + GOLDEN * (b - a)
            fd = f(d)
        best = min(best, (fc, c), (fd, d))
    return best[1], best[0]


def _current(raw: dict, path: str | Path, p: Parameter, overrides: list[str]) -> float:
    """The machine's value of ``p.key`` in base units (the midpoint when it has none)."""
    config = resolve_arch(raw, path, overrides).to_dict()
    parts = p.key.split(".")
    node: Any = config
    if parts[0] == "components" and len(parts) > 2:
        node = config["components"].get(parts[1])
        parts = parts[2:]
        if node is None:
            raise ConfigError(f"fit: {p.key}: the machine has no component {p.key.split('.')[1]!r}")
    for part in parts:
        if not isinstance(node, dict) or part not in node:
            return (p.low + p.high) / 2
        node = node[part]
    return float(node)


def overlay(base: str, values: dict[str, float], parameters: Sequence[Parameter], header: str) -> str:
    """An overlay machine file: ``extends: base`` and the fitted values, with a header."""
    tree: dict[str, Any] = {}
    units = {p.key: p for p in parameters}
    for key, value in values.items():
        node = tree
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = units[key].format(value)
    import yaml  # only writing an overlay needs it

    comment = "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines())
    return comment + yaml.safe_dump({"extends": base, **tree}, sort_keys=False)
