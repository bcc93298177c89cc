"""Regression cases: the cases file (YAML) → :class:`Case` list → pinned metrics per case.

A cases file lists single cases and ``matrix`` blocks whose globs pick up every machine and
trace, so a new machine file becomes a new case (which then fails as "extra" until its
numbers are pinned with ``--update``). Paths are relative to the cases file::

    cases:
      - name: tiny/gemm-fast-hbm
        machine: ../../arch_configs/tiny.yaml
        trace: ../../traces/examples/gemm.csv
        overrides: {components.hbm.bandwidth: 128 GB/s}
      - name: h200/hrm-small
        machine: ../../arch_configs/h200.yaml
        workload: {family: hrm, preset: hrm-text-1b, params: {seq_len: 64}, seed: 0}
    matrix:
      - machines: ../../arch_configs/*.yaml
        traces: ../../traces/examples/*.csv     # or workloads: [{name, family, preset, ...}]
        name: "{machine}/{trace}"               # default; stems of the two files
        exclude: [systolic-128/offload]

Each case pins ``total_cycles`` (reference-clock cycles), ``energy_j`` (J) and
``bytes_<tier>`` (bytes moved through each memory tier).
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from hwsim.errors import ConfigError, HwsimError, did_you_mean

CASE_KEYS = ("name", "machine", "trace", "workload", "overrides", "allow_overflow")
MATRIX_KEYS = ("machines", "traces", "workloads", "name", "overrides", "exclude", "allow_overflow")
WORKLOAD_KEYS = ("name", "family", "preset", "params", "seed")


@dataclass(frozen=True)
class Case:
    """One pinned run: a machine (absolute path) with overrides, on a trace file or a workload."""

    name: str
    machine: str
    trace: str = ""
    workload: dict[str, Any] = field(default_factory=dict)
    overrides: dict[str, Any] = field(default_factory=dict)
    allow_overflow: bool = False


def load_cases(*paths: str | os.PathLike) -> list[Case]:
    """All cases of one or more cases files, sorted by name; ConfigError names file and key."""
    cases: dict[str, Case] = {}
    for path in paths:
        for case in _load_file(Path(path)):
            if case.name in cases:
                raise ConfigError(f"{path}: case {case.name!r} is defined twice")
            cases[case.name] = case
    return [cases[name] for name in sorted(cases)]


def _load_file(path: Path) -> list[Case]:
    src = str(path)
    if not path.exists():
        raise ConfigError(f"{src}: no such cases file")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{src}: invalid YAML ({getattr(err, 'problem', err)})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{src}: a cases file must be a mapping with cases: and/or matrix:")
    _check(raw, ("cases", "matrix"), f"{src}: ")
    base = path.parent
    out = []
    for i, item in enumerate(_list(raw.get("cases"), f"{src}: cases")):
        where = f"{src}: cases[{i}]"
        _check(item, CASE_KEYS, f"{where}.")
        if not item.get("name"):
            raise ConfigError(f"{where}.name: required")
        if ("trace" in item) == ("workload" in item):
            raise ConfigError(f"{where}: give exactly one of trace (a file) or workload (a spec)")
        machine = _file(base, item.get("machine"), f"{where}.machine")
        trace = _file(base, item["trace"], f"{where}.trace") if "trace" in item else ""
        workload = _workload(item.get("workload"), f"{where}.workload") if "workload" in item else {}
        out.append(Case(str(item["name"]), machine, trace, workload, _overrides(item, where),
                        bool(item.get("allow_overflow", False))))
    for i, block in enumerate(_list(raw.get("matrix"), f"{src}: matrix")):
        out.extend(_matrix(block, base, f"{src}: matrix[{i}]"))
    return out


def _matrix(block: dict[str, Any], base: Path, where: str) -> list[Case]:
    _check(block, MATRIX_KEYS, f"{where}.")
    machines = _glob(base, block.get("machines"), f"{where}.machines")
    if ("traces" in block) == ("workloads" in block):
        raise ConfigError(f"{where}: give exactly one of traces (globs) or workloads (specs)")
    if "traces" in block:
        inputs = [(Path(t).stem, t, {}) for t in _glob(base, block["traces"], f"{where}.traces")]
    else:
        specs = [_workload(w, f"{where}.workloads[{j}]", named=True)
                 for j, w in enumerate(_list(block["workloads"], f"{where}.workloads"))]
        inputs = [(spec.pop("name"), "", spec) for spec in specs]
    template = str(block.get("name", "{machine}/{trace}"))
    exclude = {str(x) for x in _list(block.get("exclude"), f"{where}.exclude")}
    cases = []
    for machine in machines:
        for label, trace, workload in inputs:
            try:
                name = template.format(machine=Path(machine).stem, trace=label)
            except (KeyError, IndexError) as err:
                raise ConfigError(f"{where}.name: unknown field {err} (use {{machine}} and {{trace}})") from None
            if name not in exclude:
                cases.append(Case(name, machine, trace, dict(workload), _overrides(block, where),
                                  bool(block.get("allow_overflow", False))))
    return cases


def _check(block: Any, allowed: tuple[str, ...], prefix: str) -> None:
    if not isinstance(block, dict):
        raise ConfigError(f"{prefix.rstrip('. ')}: expected a mapping")
    for key in block:
        if key not in allowed:
            raise ConfigError(f"{prefix}{key}: unknown key{did_you_mean(str(key), allowed)}")


def _list(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ConfigError(f"{where}: expected a list")
    return value


def _file(base: Path, value: Any, where: str) -> str:
    if not value:
        raise ConfigError(f"{where}: required")
    path = base / str(value)
    if not path.exists():
        raise ConfigError(f"{where}: no such file {value!r} (looked in {base})")
    return str(path.resolve())


def _glob(base: Path, patterns: Any, where: str) -> list[str]:
    patterns = [patterns] if isinstance(patterns, str) else _list(patterns, where)
    found = sorted({str(Path(p).resolve()) for pattern in patterns
                    for p in glob.glob(os.path.join(base, str(pattern)))})  # absolute patterns too
    if not found:
        raise ConfigError(f"{where}: {patterns!r} matches no file (looked in {base})")
    return found


def _overrides(block: dict[str, Any], where: str) -> dict[str, Any]:
    value = block.get("overrides") or {}
    if not isinstance(value, dict):
        raise ConfigError(f"{where}.overrides: expected a mapping of key.path: value")
    return {str(k): v for k, v in value.items()}


def _workload(value: Any, where: str, named: bool = False) -> dict[str, Any]:
    _check(value, WORKLOAD_KEYS if named else WORKLOAD_KEYS[1:], f"{where}.")
    for key in ("name", "family", "preset") if named else ("family", "preset"):
        if not value.get(key):
            raise ConfigError(f"{where}.{key}: required")
    params = value.get("params") or {}
    if not isinstance(params, dict):
        raise ConfigError(f"{where}.params: expected a mapping")
    out = {"family": str(value["family"]), "preset": str(value["preset"]),
           "params": {str(k): v for k, v in params.items()}, "seed": int(value.get("seed", 0))}
    if named:
        out["name"] = str(value["name"])
    return out


def case_metrics(case: Case) -> dict[str, int | float]:
    """Run ``case`` (event engine) and return its pinned metrics.

    Raises HwsimError (a bad machine, trace or workload) with the case name in front.
    """
    from hwsim.config.machine import load_arch
    from hwsim.engine.simulate import simulate

    try:
        machine = load_arch(case.machine, overrides=case.overrides)
        if case.workload:
            from workloads.registry import generate_trace  # only cases with a workload need it
            trace = generate_trace(case.workload["family"], case.workload["preset"],
                                   case.workload["params"], case.workload["seed"])
        else:
            from hwsim.trace.io import read_trace
            trace = read_trace(case.trace)
        summary = simulate(machine, trace, allow_overflow=case.allow_overflow).summary
    except HwsimError as err:
        raise HwsimError(f"case {case.name}: {err}") from None
    metrics: dict[str, int | float] = {"total_cycles": int(summary["total_cycles"]),
                                       "energy_j": float(summary["energy"]["total_j"])}
    for tier, values in sorted(summary["tiers"].items()):
        metrics[f"bytes_{tier}"] = int(values["bytes"])
    return metrics
