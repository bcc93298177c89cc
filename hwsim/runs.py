"""Several runs at once: each machine and trace loaded once, every run simulated and written.

This is where runs are orchestrated for ``hwsim compare`` and the demo; reports only read
the results. A run pairs a machine YAML (with overrides) with a trace file or a workload
spec; :func:`run_all` loads each machine once, keeps the current trace in memory while
consecutive runs use it (a trace is read or generated once for them), simulates, and writes
each run folder as soon as the run finishes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hwsim.config.machine import MachineConfig, load_arch
from hwsim.errors import HwsimError
from hwsim.reports.compare import RunData, unique_labels
from hwsim.results import RunResult, simulate, write_run
from hwsim.trace.trace import Trace


@dataclass(frozen=True)
class Workload:
    """A generated trace: a workload family's preset with parameter overrides and a seed."""

    family: str
    preset: str
    params: Mapping[str, Any] = field(default_factory=dict)
    seed: int = 0

    @property
    def key(self) -> tuple:
        return (self.family, self.preset, json.dumps(dict(self.params), sort_keys=True, default=str), self.seed)


@dataclass(frozen=True)
class RunSpec:
    """One run: ``machine`` (a YAML path) with ``overrides``, on ``trace`` (a file path, a
    :class:`Workload`, or a Trace), written to ``<out>/<label>/``."""

    label: str
    machine: str | os.PathLike
    trace: str | os.PathLike | Workload | Trace
    overrides: Mapping[str, Any] | Sequence[str] = field(default_factory=dict)


@dataclass
class CompletedRun:
    """A finished run: its spec, result, folder (None when not written) and trace label."""

    spec: RunSpec
    result: RunResult
    folder: Path | None
    trace: str


def run_all(specs: Sequence[RunSpec], out: str | os.PathLike | None = None, *, fidelity: str = "event",
            allow_overflow: bool = False, csv: bool = False, quiet: bool = True, what: str = "runs",
            on_result: Callable[[CompletedRun], None] | None = None) -> list[CompletedRun]:
    """Simulate every run of ``specs`` in order; write each into ``out/<label>/`` (if
    ``out``) and pass it to ``on_result``. Raises HwsimError naming the run that failed."""
    from hwsim.progress import Progress

    machines: dict[tuple, MachineConfig] = {}
    current: tuple[Any, Trace] | None = None
    done: list[CompletedRun] = []
    with Progress(len(specs), what, quiet=quiet) as bar:
        for spec in specs:
            try:
                key = (str(spec.machine), _overrides_key(spec.overrides))
                if key not in machines:
                    machines[key] = load_arch(spec.machine, overrides=spec.overrides)
                trace_key = _trace_key(spec.trace)
                if current is None or current[0] != trace_key:
                    current = None   # one trace in memory at a time
                    current = (trace_key, _load_trace(spec.trace))
                result = simulate(machines[key], current[1], fidelity=fidelity, allow_overflow=allow_overflow)
            except HwsimError as err:
                bar.advance(failed=True)
                raise HwsimError(f"run {spec.label!r}: {err}") from None
            folder = write_run(result, Path(out) / spec.label, csv=csv) if out is not None else None
            completed = CompletedRun(spec, result, folder, _trace_label(spec.trace, result))
            if on_result is not None:
                on_result(completed)
            done.append(completed)
            bar.advance()
    return done


def simulate_runs(traces: Sequence[str | os.PathLike], archs: Sequence[str | os.PathLike],
                  out: str | os.PathLike, *, overrides: Sequence[str] | Mapping[str, Any] = (),
                  allow_overflow: bool = False, csv: bool = False, quiet: bool = True,
                  labels: Sequence[str] | None = None) -> list[RunData]:
    """Simulate every (trace, machine) pair and write each run into ``out/<label>/``.

    Labels are the machine names (one trace), the trace file stems (one machine), or
    ``<machine>-<trace>``; ``overrides`` apply to every machine. Raises HwsimError (a bad
    file, an overflow without ``allow_overflow``) naming the run.
    """
    if not traces or not archs:
        raise HwsimError("compare: give at least one --trace and one --arch (or existing --run folders)")
    names = [load_arch(a, overrides=overrides).name for a in archs]
    pairs = [(str(t), a, name) for t in traces for a, name in zip(archs, names, strict=True)]
    if labels is None:
        if len(traces) == 1:
            wanted = [name for _, _, name in pairs]
        elif len(archs) == 1:
            wanted = [Path(t).stem for t, _, _ in pairs]
        else:
            wanted = [f"{name}-{Path(t).stem}" for t, _, name in pairs]
        labels = unique_labels(wanted)
    elif len(labels) != len(pairs):
        raise HwsimError(f"compare: {len(labels)} labels for {len(pairs)} runs")
    specs = [RunSpec(label, a, t, overrides) for label, (t, a, _) in zip(labels, pairs, strict=True)]
    done = run_all(specs, out, allow_overflow=allow_overflow, csv=csv, quiet=quiet, what="compare")
    return [RunData.from_result(run.spec.label, run.result, run.folder, trace=run.trace) for run in done]


def _overrides_key(overrides: Mapping[str, Any] | Sequence[str]) -> str:
    if isinstance(overrides, Mapping):
        return json.dumps(dict(overrides), sort_keys=True, default=str)
    return json.dumps(list(overrides))


def _trace_key(trace: str | os.PathLike | Workload | Trace) -> Any:
    if isinstance(trace, Workload):
        return ("workload", *trace.key)
    if isinstance(trace, Trace):
        return ("trace", id(trace))
    return ("file", str(trace))


def _load_trace(trace: str | os.PathLike | Workload | Trace) -> Trace:
    if isinstance(trace, Trace):
        return trace
    if isinstance(trace, Workload):
        from workloads.registry import generate_trace  # only runs of generated traces need it

        return generate_trace(trace.family, trace.preset, dict(trace.params), seed=trace.seed)
    from hwsim.trace.io import read_trace

    return read_trace(trace)


def _trace_label(trace: str | os.PathLike | Workload | Trace, result: RunResult) -> str:
    if isinstance(trace, str | os.PathLike):
        return str(trace)
    meta = result.trace_meta
    return "/".join(str(meta.get(k)) for k in ("generator", "preset") if meta.get(k))
