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
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from hwsim.config.fields import build_config, param
from hwsim.config.issues import Issues
from hwsim.config.yaml_file import load_yaml
from hwsim.errors import ConfigError, HwsimError, shown

#: Largest seed of a workload case.
MAX_SEED = 2**63 - 1
#: Most cases one cases file may expand to (a matrix of globs multiplies quickly).
MAX_CASES = 10_000


@dataclass(frozen=True, kw_only=True)
class WorkloadEntry:
    """A workload spec: a trace generated from a family's preset."""

    name: str = param("", unit="text", max_length=200, help="case label of the workload (in a matrix)")
    family: str = param(unit="text", help="workload family (see hwsim trace --list)")
    preset: str = param(unit="text", help="model preset of the family")
    params: dict = param({}, unit="map", help="parameter overrides of the preset")
    seed: int = param(0, unit="count", minimum=0, maximum=MAX_SEED, help="random seed")


@dataclass(frozen=True, kw_only=True)
class CaseEntry:
    """One pinned case: a machine on a trace file or on a workload."""

    name: str = param(unit="text", max_length=200, help="case name, unique across the cases files")
    machine: str = param(unit="text", help="machine file, relative to the cases file")
    trace: str = param("", unit="text", help="trace file, relative to the cases file")
    workload: WorkloadEntry | None = param(None, unit="config", config=WorkloadEntry,
                                           help="a workload spec instead of a trace file")
    overrides: dict = param({}, unit="map", help="machine key.path: value edits")
    allow_overflow: bool = param(False, unit="bool", help="pin a run whose working set exceeds a tier")

    def problems(self):
        if bool(self.trace) == (self.workload is not None):
            yield "trace", "give exactly one of trace (a file) or workload (a spec)"


@dataclass(frozen=True, kw_only=True)
class MatrixEntry:
    """Every machine matched by ``machines`` on every trace of ``traces`` (or workload)."""

    machines: tuple = param(unit="list", single=True, items="text", help="machine file globs, relative to the cases file")
    traces: tuple = param((), unit="list", single=True, items="text", help="trace file globs")
    workloads: tuple = param((), unit="list", single=True, items=WorkloadEntry, help="named workload specs")
    name: str = param("{machine}/{trace}", unit="text", max_length=200,
                      help="case name template with {machine} and {trace} (the files' stems)")
    overrides: dict = param({}, unit="map", help="machine key.path: value edits for every case")
    exclude: tuple = param((), unit="list", single=True, items="text", help="case names to leave out")
    allow_overflow: bool = param(False, unit="bool", help="pin runs whose working set exceeds a tier")

    def problems(self):
        if bool(self.traces) == bool(self.workloads):
            yield "traces", "give exactly one of traces (globs) or workloads (specs)"
        for i, spec in enumerate(self.workloads):
            if not spec.name:
                yield f"workloads[{i}].name", "required key is missing (the case label of the workload)"
        try:
            self.name.format(machine="m", trace="t")
        except (KeyError, IndexError, ValueError, AttributeError) as err:
            yield "name", f"not a name template ({shown(str(err))}); use {{machine}} and {{trace}}"


@dataclass(frozen=True, kw_only=True)
class CasesFile:
    """A regress cases file: single cases and matrix blocks."""

    cases: tuple = param((), unit="list", single=True, items=CaseEntry, help="single cases")
    matrix: tuple = param((), unit="list", single=True, items=MatrixEntry, help="matrix blocks of machine and trace globs")


CASE_KEYS = tuple(f.name for f in fields(CaseEntry))
MATRIX_KEYS = tuple(f.name for f in fields(MatrixEntry))


@dataclass(frozen=True)
class Case:
    """One pinned run: a machine (absolute path) with overrides, on a trace file or a workload."""

    name: str
    machine: str
    trace: str = ""
    workload: dict[str, Any] = field(default_factory=dict)
    overrides: dict[str, Any] = field(default_factory=dict)
    allow_overflow: bool = False
    where: str = ""      # "file:line: cases[i]" of the entry that made the case


def check_inputs(cases: list[Case]) -> None:
    """Raise ConfigError naming the cases file and case for every case whose machine (with
    its overrides) or workload spec is invalid: bad input, found before any case runs."""
    from hwsim.config.machine import load_arch

    problems: list[str] = []
    for case in cases:
        try:
            load_arch(case.machine, overrides=case.overrides)
            if case.workload:
                from workloads.registry import check_params  # only cases with a workload need it

                check_params(case.workload["family"], case.workload["preset"], case.workload["params"])
        except ConfigError as err:
            problems.extend(f"{case.where}: case {case.name}: {problem}" for problem in err.problems)
    if problems:
        raise ConfigError(problems[:50])


def load_cases(*paths: str | os.PathLike) -> list[Case]:
    """All cases of one or more cases files, sorted by name; ConfigError names every problem
    with its file, line and key path."""
    cases: dict[str, Case] = {}
    for path in paths:
        issues = Issues(str(path))
        for where, case in _load_file(Path(path)):
            if case.name in cases:
                issues.add(where, f"case {case.name!r} is defined twice")
            cases[case.name] = case
        issues.raise_if_any()
    if len(cases) > MAX_CASES:
        raise ConfigError(f"{paths[0]}: {len(cases):,} cases, more than the {MAX_CASES:,} a run may have")
    return [cases[name] for name in sorted(cases)]


def _load_file(path: Path) -> list[tuple[str, Case]]:
    document = load_yaml(path, "cases file")
    issues = Issues(str(path), document.marks)
    top = build_config(CasesFile, document.data, "", issues)
    if top is not None and not top.cases and not top.matrix:
        issues.add("", "a cases file needs cases: and/or matrix:")
    issues.raise_if_any()
    base = path.parent
    out = []
    for i, item in enumerate(top.cases):
        where = f"cases[{i}]"
        machine = _file(base, item.machine, f"{where}.machine", issues)
        trace = _file(base, item.trace, f"{where}.trace", issues) if item.trace else ""
        workload = _workload(item.workload) if item.workload is not None else {}
        out.append((where, Case(item.name, machine, trace, workload, dict(item.overrides), item.allow_overflow,
                                _located(issues, where))))
    for i, block in enumerate(top.matrix):
        out.extend(_matrix(block, base, f"matrix[{i}]", issues))
    issues.raise_if_any()
    return out


def _matrix(block: MatrixEntry, base: Path, where: str, issues: Issues) -> list[tuple[str, Case]]:
    machines = _glob(base, block.machines, f"{where}.machines", issues)
    if block.traces:
        inputs = [(Path(t).stem, t, {}) for t in _glob(base, block.traces, f"{where}.traces", issues)]
    else:
        inputs = [(spec.name, "", _workload(spec)) for spec in block.workloads]
    exclude = set(block.exclude)
    cases = []
    if len(machines) * len(inputs) > MAX_CASES:
        issues.add(where, f"{len(machines) * len(inputs):,} cases, more than the {MAX_CASES:,} a run may have")
        return []
    for machine in machines:
        for label, trace, workload in inputs:
            name = block.name.format(machine=Path(machine).stem, trace=label)
            if name not in exclude:
                cases.append((where, Case(name, machine, trace, dict(workload), dict(block.overrides),
                                          block.allow_overflow, _located(issues, where))))
    return cases


def _located(issues: Issues, where: str) -> str:
    """``file:line: key.path`` of an entry of a cases file."""
    mark = issues.marks.locate(where)
    return f"{mark[0]}:{mark[1]}: {where}" if mark else f"{issues.source}: {where}"


def _file(base: Path, value: str, where: str, issues: Issues) -> str:
    path = base / value
    if not path.is_file():
        issues.add(where, f"no such file {value!r} (looked in {base})")
    return str(path.resolve())


def _glob(base: Path, patterns: tuple[str, ...], where: str, issues: Issues) -> list[str]:
    found = sorted({str(Path(p).resolve()) for pattern in patterns
                    for p in glob.glob(os.path.join(base, pattern)) if Path(p).is_file()})  # absolute patterns too
    if not found:
        issues.add(where, f"{list(patterns)!r} matches no file (looked in {base})")
    return found


def _workload(spec: WorkloadEntry) -> dict[str, Any]:
    return {"family": spec.family, "preset": spec.preset, "params": {str(k): v for k, v in spec.params.items()},
            "seed": spec.seed}


def case_metrics(case: Case) -> dict[str, int | float]:
    """Run ``case`` (event engine) and return its pinned metrics.

    Raises HwsimError (a bad machine, trace or workload) with the case name in front.
    """
    from hwsim.config.machine import load_arch
    from hwsim.results import check_result, simulate

    try:
        machine = load_arch(case.machine, overrides=case.overrides)
        if case.workload:
            from workloads.registry import generate_trace  # only cases with a workload need it
            trace = generate_trace(case.workload["family"], case.workload["preset"],
                                   case.workload["params"], case.workload["seed"])
        else:
            from hwsim.trace.io import read_trace
            trace = read_trace(case.trace)
        result = simulate(machine, trace, allow_overflow=case.allow_overflow)
        check_result(result, case.machine)
        summary = result.summary
    except HwsimError as err:
        raise HwsimError(f"case {case.name}: {err}") from None
    metrics: dict[str, int | float] = {"total_cycles": int(summary["total_cycles"]),
                                       "energy_j": float(summary["energy"]["total_j"])}
    for tier, values in sorted(summary["tiers"].items()):
        metrics[f"bytes_{tier}"] = int(values["bytes"])
    return metrics
