"""Running a sweep: plan the runs, execute them on Dask, save each one as it finishes, resume.

A *run* is one design point on one trace. :func:`plan` checks every axis and override key
against the machine in the driver (so a bad key fails before anything runs) and gives each
run a stable hash of (the machine the file resolves to, the point's overrides, trace
identity); the worker that runs a point resolves and builds its machine
(:func:`built_machine`), so the driver does not validate thousands of machine configs while
the workers wait, and a point whose values make an invalid machine is saved as a failed
run. :func:`run_sweep` then executes the runs that are not yet saved:

* no scheduler: a ``distributed.LocalCluster`` of ``workers`` processes (1 thread each) on
  127.0.0.1 with the dashboard off; ``scheduler="tcp://host:8786"``: an existing cluster
  (the workers must be able to read the trace files and import hwsim); ``workers=0``: in
  this process, without Dask (for debugging). Runs travel in tasks of about half a second
  (:mod:`hwsim.sweep.cluster`);
* each finished run is saved, as one line, to the journal ``DIR/runs.jsonl`` by the driver
  as soon as its task returns (:mod:`hwsim.sweep.journal`); a run that raises is saved with
  ``status="failed"`` and its error, and the others go on; a run whose worker dies is rerun
  by Dask on another worker, and one lost for good (its workers keep dying, or the cluster
  goes away) is not saved and is rerun by ``resume``;
* the tidy table ``DIR/results.parquet`` is assembled from the saved runs at the end.

A worker keeps what runs share: the traces it has read or generated, validated and indexed
once (:func:`load_trace`; the engine keeps each in-memory trace's cost signatures and
other trace-only data with it), and the built machine of each point (:func:`built_machine`).
Runs keep no records, only their summary.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import json
import os
import sys
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from hwsim.atomic import atomic_write_text
from hwsim.components.facts import machine_facts
from hwsim.config.machine import MachineConfig, read_arch, resolve_arch
from hwsim.errors import ConfigError, HwsimError, did_you_mean
from hwsim.memo import ByIdentity, remember
from hwsim.results import dumps_json
from hwsim.sweep.cluster import run_on_dask
from hwsim.sweep.journal import RunJournal, has_runs, read_runs
from hwsim.sweep.spec import Point, SweepSpec, TraceSource, numeric
from hwsim.sweep.table import (
    MANIFEST,
    RESULTS,
    build_table,
    metrics_row,
    on_chip_bytes,
    write_table,
)


@dataclass(frozen=True)
class Run:
    """One design point on one trace, ready to execute (picklable, sent to a worker)."""

    point_id: str
    trace_index: int
    trace: TraceSource
    values: dict[str, Any]
    machine_file: str          # the sweep's machine file (names it in errors)
    base: dict[str, Any]       # that file, parsed once (``read_arch``): shared by every run
    overrides: dict[str, Any]  # the sweep's overrides, then this point's values
    run_hash: str
    fidelity: str
    allow_overflow: bool
    machine_hash: str = ""     # hash of (resolved machine file, overrides): runs of one point share it

    @property
    def name(self) -> str:
        """File stem of the run's result: ``<point_id>-t<trace index>``."""
        return f"{self.point_id}-t{self.trace_index}"

    @cached_property
    def key(self) -> str:
        """What a saved result must match to be reused: the run hash and the run settings."""
        return _digest({"run": self.run_hash, "fidelity": self.fidelity, "overflow": self.allow_overflow})

    def resolve(self) -> MachineConfig:
        """This point's machine config; ConfigError naming the machine file and key when
        the point's values make an invalid machine."""
        return resolve_arch(self.base, self.machine_file, self.overrides)


@dataclass
class SweepOutcome:
    """What :func:`run_sweep` did: run counts and where the table is."""

    table: Path
    runs: int
    reused: int
    ran: int
    failed: int
    missing: int
    wall_s: dict[str, float] = field(default_factory=dict)   # run name -> seconds (this session)


def plan(spec: SweepSpec, fidelity: str | None = None, only: Collection[str] | None = None) -> list[Run]:
    """Every run of ``spec`` (points × traces), hashed; ``only`` keeps the points with these
    ids (e.g. a coarser sweep's Pareto front). Points are resolved where they run.

    Raises ConfigError naming the sweep file and the axis (or ``overrides``) when a key
    does not exist in the machine; a point whose values are invalid becomes a failed run.
    """
    fidelity = fidelity or spec.fidelity
    base = read_arch(spec.machine)   # parsed once; every point resolves its own copy
    resolved = _check_keys(spec, base)
    _check_workloads(spec)
    identities = [_trace_identity(t) for t in spec.traces]
    points = spec.points()
    if not points:
        raise ConfigError(f"{spec.source}: constraints: all {spec.combinations()} combinations of the axes "
                          "break a constraint; nothing to run")
    if only is not None:
        points = _select(points, only, spec.source)
    # Hashed from the machine the file resolves to (its ``extends`` and the machine files of
    # its ``device_kinds`` included), not from its path: a moved copy of a sweep reuses its
    # runs, and an edit to any of those files reruns them.
    base_digest = _digest({k: v for k, v in resolved.to_dict().items() if k != "source"})
    runs = []
    for point in points:
        overrides = {**spec.overrides, **point.values}
        machine_hash = _digest({"machine": base_digest, "overrides": overrides})
        for index, (trace, identity) in enumerate(zip(spec.traces, identities, strict=True)):
            runs.append(Run(point.point_id, index, trace, dict(point.values), spec.machine, base, overrides,
                            _digest({"machine": machine_hash, "trace": identity}), fidelity,
                            spec.allow_overflow, machine_hash))
    return runs


def _select(points: list[Point], only: Collection[str], source: str) -> list[Point]:
    """The points whose ids are in ``only``; an id the sweep does not have is an error."""
    if not only:
        raise ConfigError("--points: no point ids given")
    ids = [p.point_id for p in points]
    for point_id in only:
        if point_id not in ids:
            raise ConfigError(f"--points: {source} has no point {point_id!r} after its constraints"
                              f"{did_you_mean(point_id, tuple(ids))}")
    wanted = set(only)
    return [p for p in points if p.point_id in wanted]


def _check_keys(spec: SweepSpec, base: dict[str, Any]) -> MachineConfig:
    """Fail on an override or axis key the machine (``base``, parsed) does not have, and on
    a ``bytes_<name>`` metric or objective naming none of its tiers or links; returns the
    machine with the sweep's overrides."""
    try:
        machine = resolve_arch(base, spec.machine, spec.overrides)
    except ConfigError as err:
        raise ConfigError(f"{spec.source}: overrides: {err}") from None
    roles = {name: record.role for name, record in machine_facts(machine).items()}
    columns = [f"bytes_{n}" for n, role in roles.items() if role in ("tier", "link")]
    columns += [f"peak_bytes_{n}" for n, role in roles.items() if role == "tier"]
    chosen = [("metrics", spec.metrics), *((f"pareto.{k}", v) for k, v in spec.pareto.items())]
    for where, names in chosen:
        for name in names:
            if name.startswith(("bytes_", "peak_bytes_")) and name not in columns:
                raise ConfigError(f"{spec.source}: {where}: {machine.name} has no tier or link for "
                                  f"{name!r}{did_you_mean(name, tuple(columns))}")
    for axis in spec.axes:
        value = axis.grid_values()[0] if axis.values or axis.num else axis.at(0.0)
        try:
            resolve_arch(base, spec.machine, {**spec.overrides, axis.key: value})
        except ConfigError as err:
            raise ConfigError(f"{spec.source}: axes.{axis.key}: {err}") from None
    return machine


def _check_workloads(spec: SweepSpec) -> None:
    """Validate workload specs in the driver (family, preset and parameters), before any run."""
    for i, trace in enumerate(spec.traces):
        if not trace.is_workload:
            continue
        try:
            from workloads.registry import check_params  # imported only for workload specs
        except ImportError as err:
            raise ConfigError(f"{spec.source}: traces[{i}]: workload specs need the workloads package "
                              f"({err})") from None
        try:
            check_params(trace.family, trace.preset, trace.params)
        except ConfigError as err:
            raise ConfigError(f"{spec.source}: traces[{i}]: {err}") from None


def _trace_identity(trace: TraceSource) -> dict[str, Any]:
    if trace.is_workload:
        return {"family": trace.family, "preset": trace.preset, "params": trace.params, "seed": trace.seed}
    return {"file_sha256": hashlib.sha256(Path(trace.path).read_bytes()).hexdigest()}


def _digest(data: Any) -> str:
    text = json.dumps(data, sort_keys=True, default=repr, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# -- one run (executes on a worker) ------------------------------------------------------

_TRACE_CACHE: dict[tuple, Any] = {}
#: Cache keys of workload sources (the runs of a task share their source object).
_WORKLOAD_KEYS = ByIdentity(64)
_TRACE_CACHE_SIZE = 4
#: Parquet traces up to this many ops are held in memory by a worker between points.
IN_MEMORY_MAX_OPS = 2_000_000


def load_trace(source: TraceSource) -> tuple[Any, bool]:
    """The trace of ``source`` (a file, or a workload generated on the worker), cached
    per process for the few most recently used sources, so that the points sharing a
    trace read or generate it once per worker; and whether it was read or generated now."""
    if source.is_workload:
        key = _WORKLOAD_KEYS.get(source, lambda s: ("workload", s.family, s.preset,
                                                    json.dumps(s.params, sort_keys=True), s.seed))
    else:
        stat = os.stat(source.path)
        key = ("file", source.path, stat.st_mtime_ns, stat.st_size)
    if key in _TRACE_CACHE:
        _TRACE_CACHE[key] = _TRACE_CACHE.pop(key)   # most recently used last
        return _TRACE_CACHE[key], False
    if source.is_workload:
        from workloads.registry import generate_trace  # imported only for workload specs
        trace = generate_trace(source.family, source.preset, source.params, source.seed)
    else:
        from hwsim.trace.io import read_trace
        trace = read_trace(source.path)
        if not trace.in_memory and trace.num_ops <= IN_MEMORY_MAX_OPS:
            # Validate a Parquet trace once per worker, not once per point.
            trace = trace.loaded()
    remember(_TRACE_CACHE, key, trace, _TRACE_CACHE_SIZE)
    return trace, True


_MACHINE_CACHE: dict[str, Any] = {}
#: Built machines a worker keeps (a point's machine serves each of its traces).
_MACHINE_CACHE_SIZE = 256


def built_machine(run: Run):
    """The built machine of ``run``'s point, resolved and built once per worker and machine
    hash (ConfigError when the point's values make an invalid machine)."""
    from hwsim.engine.machine import Machine

    key = run.machine_hash
    if key and key in _MACHINE_CACHE:
        return _MACHINE_CACHE[key]
    machine = Machine(run.resolve())
    if key:
        remember(_MACHINE_CACHE, key, machine, _MACHINE_CACHE_SIZE)
    return machine


def design_metrics(machine) -> dict[str, Any]:
    """The table's columns that come from a point's machine (built), not from its run."""
    return {"on_chip_bytes": on_chip_bytes(machine.config_dict)}


def execute_run(run: Run) -> dict[str, Any]:
    """Run one point on one trace; never raises for a bad point: a failure is a result.

    Returns ``{"key": ..., "row": {...table columns...}, "timing": {"wall_s": seconds}}``;
    ``timing`` also holds ``"cold": true`` when the run had to read or generate its trace
    (a worker's first run of it, which also loads compiled code).
    """
    start = time.perf_counter()
    cold = False
    row: dict[str, Any] = {"point_id": run.point_id, "trace": run.trace.label, "trace_index": run.trace_index,
                           **{k: numeric(v) for k, v in run.values.items()},
                           "fidelity": run.fidelity, "run_hash": run.run_hash}
    machine = None
    try:
        machine = built_machine(run)
        row.update(design_metrics(machine))
        trace, cold = load_trace(run.trace)
        from hwsim.results import simulate

        summary = simulate(machine, trace, fidelity=run.fidelity, allow_overflow=run.allow_overflow,
                           records=False).summary
        row.update(machine=summary["machine"], status="ok", error="", **metrics_row(summary))
    except Exception as err:  # noqa: BLE001 - a failing point is recorded and the sweep goes on
        text = str(err) if isinstance(err, HwsimError) else f"{type(err).__name__}: {err}"
        row.update(machine=machine.config.name if machine is not None else "", status="failed",
                   error=" ".join(text.split()))
    timing = {"wall_s": time.perf_counter() - start, **({"cold": True} if cold else {})}
    return {"key": run.key, "row": row, "timing": timing}


def execute_runs(runs: list[Run]) -> list[dict[str, Any]]:
    """:func:`execute_run` over a group of runs (one Dask task); results in the same order.

    In a worker process, what a first run of a trace leaves alive (the trace, its index,
    the compiled code and every module imported for them) is moved out of the garbage
    collector's reach once, after a collection, so that a worker's full collections no
    longer walk it: each took 60-100 ms, a few times per thousand short runs.
    """
    results = []
    for run in runs:
        results.append(execute_run(run))
        if results[-1]["timing"].get("cold") and _in_worker():
            gc.collect()
            gc.freeze()
    return results


def _in_worker() -> bool:
    """True in a Dask worker process (freezing its heap touches nobody else's objects)."""
    try:
        from distributed import get_worker

        get_worker()
    except (ImportError, ValueError):
        return False
    return True


# -- the sweep ---------------------------------------------------------------------------

def run_sweep(spec: SweepSpec, out: str | os.PathLike, *, workers: int | None = None,
              scheduler: str | None = None, fidelity: str | None = None, resume: bool = False,
              retry_failed: bool = False, quiet: bool = False,
              only: Collection[str] | None = None) -> SweepOutcome:
    """Run every point of ``spec`` (or the points ``only`` names) on every trace and write
    ``out/results.parquet``.

    ``resume`` reuses saved runs whose hash and settings still match (``retry_failed``
    also reruns saved failures). Raises HwsimError when ``out`` already holds runs and
    ``resume`` is not set.
    """
    from hwsim.progress import Progress

    out = Path(out)
    runs = plan(spec, fidelity, only)
    if not resume and has_runs(out):
        raise HwsimError(f"{out}: already holds sweep results; pass --resume to continue that sweep "
                         "or choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    axes = [a.key for a in spec.axes]
    atomic_write_text(out / MANIFEST, dumps_json({
        "name": spec.name, "sweep_file": spec.source, "description": spec.description,
        "fidelity": runs[0].fidelity, "axes": axes,
        "axis_dimensions": {a.key: a.dimension for a in spec.axes if a.dimension},
        "traces": [t.label for t in spec.traces], "runs": len(runs),
        "pareto": {sense: list(names) for sense, names in spec.pareto.items()}, "metrics": list(spec.metrics),
        "only_points": sorted(only) if only is not None else None}))
    found = read_runs(out) if resume else {}
    saved = {run.name: _current(found.get(run.name), run, retry_failed) for run in runs}
    # Trace-major order: a worker then replays one trace on many points in a row, and
    # keeps it in its trace cache.
    todo = sorted((run for run in runs if saved[run.name] is None), key=lambda r: (r.trace_index, r.point_id))
    outcome = SweepOutcome(table=out / RESULTS, runs=len(runs), reused=len(runs) - len(todo), ran=0,
                           failed=0, missing=0)
    if not quiet:
        print(f"sweep {spec.name}: {len(runs) // max(len(spec.traces), 1)} points x {len(spec.traces)} "
              f"traces = {len(runs)} runs, {outcome.reused} already saved, {len(todo)} to run "
              f"({runs[0].fidelity})")

    journal = RunJournal(out)
    # Every run read is kept, also those of points this sweep leaves out (``only``) or whose
    # key changed: a line of this session's run of the same name comes later and wins.
    journal.start(found.items())

    def save(pairs: list[tuple[dict[str, Any], Run]]) -> None:
        journal.append_all((run.name, result) for result, run in pairs)
        for result, run in pairs:
            saved[run.name] = result
            outcome.ran += 1
            outcome.wall_s[run.name] = result["timing"]["wall_s"]
            bar.advance(failed=result["row"]["status"] != "ok")

    with journal, Progress(len(todo), "sweep", quiet=quiet) as bar, _heap_frozen():
        try:
            if todo and workers == 0:
                for run in todo:
                    save([(execute_run(run), run)])
            elif todo:
                _run_on_dask(todo, save, bar, workers, scheduler)
        except KeyboardInterrupt:
            print(f"hwsim: sweep interrupted; {sum(r is not None for r in saved.values())} of {len(runs)} "
                  f"runs are saved in {journal.path}; rerun with --resume to finish", file=sys.stderr)
            raise
    rows = []
    for run in runs:
        result = saved[run.name]
        if result is None:
            outcome.missing += 1
            rows.append({"point_id": run.point_id, "trace": run.trace.label, "trace_index": run.trace_index,
                         **{k: numeric(v) for k, v in run.values.items()}, "fidelity": run.fidelity,
                         "status": "missing", "error": "not run (worker lost); rerun with --resume",
                         "run_hash": run.run_hash, **_design_of(run)})
        else:
            outcome.failed += result["row"]["status"] != "ok"
            rows.append(result["row"])
    write_table(build_table(rows, axes), outcome.table, axes)
    return outcome


@contextlib.contextmanager
def _heap_frozen():
    """Leave the objects alive now (the plan: a machine config per point) out of the garbage
    collector's passes for the block, unless the process froze objects of its own. Every
    full pass walked all of them: 0.1-0.15 s of a 1,000-point sweep's driver, on cores its
    workers need."""
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _design_of(run: Run) -> dict[str, Any]:
    """:func:`design_metrics` of a run that did not run (none for an invalid machine)."""
    try:
        return design_metrics(built_machine(run))
    except ConfigError:
        return {}


def point_error(run: Run) -> str:
    """Why ``run``'s point has no valid machine, or ``""`` when it has one."""
    try:
        run.resolve()
    except ConfigError as err:
        return str(err)
    return ""


def _current(result: dict[str, Any] | None, run: Run, retry_failed: bool) -> dict[str, Any] | None:
    """``result`` (a saved run of ``run``'s name) if it is complete, current and not a
    failure to retry, else None."""
    if result is None or result.get("key") != run.key or not isinstance(result.get("row"), dict):
        return None
    if retry_failed and result["row"].get("status") != "ok":
        return None
    return result


def _run_on_dask(todo: list[Run], save: Callable[[list[tuple[dict, Run]]], None], bar, workers: int | None,
                 scheduler: str | None) -> None:
    """Run ``todo`` on a local or remote Dask cluster (see :mod:`hwsim.sweep.cluster`)."""
    def lose(run: Run, err: BaseException) -> None:
        print(f"hwsim: {run.name}: lost ({type(err).__name__}: {err}); rerun with --resume", file=sys.stderr)
        bar.advance(failed=True)

    run_on_dask(todo, execute_runs, save, lose, workers=workers, scheduler=scheduler,
                before_start=lambda: _import_engines(todo))


def _import_engines(todo: list[Run]) -> None:
    """Import what :func:`execute_run` will need in this process, before local workers fork
    from it (see :func:`hwsim.sweep.cluster.local_worker_config`)."""
    import hwsim.engine.simulate  # noqa: F401
    import hwsim.results  # noqa: F401
    if any(run.trace.is_workload for run in todo):
        import workloads.registry  # noqa: F401
