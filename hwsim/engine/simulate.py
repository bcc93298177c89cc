"""The run pipeline: one path from a trace to timed records, with two timing strategies.

::

    trace batches (validated) -> placement and spill plan -> per-op costs (per signature)
        -> timing: EventReplay (SimPy) | RooflinePass (contention-free)
        -> records (in memory, to Parquet, or none) and the run's totals

Everything but the timing is shared, so spills, overflow, records and totals have the same
form at both fidelity levels. :func:`run_trace` returns an :class:`EngineRun`; the summary
is a separate step (:func:`hwsim.metrics.summary.summarize`), and :func:`hwsim.simulate`
chains the two into a :class:`hwsim.results.RunResult`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from hwsim.config.machine import MachineConfig
from hwsim.engine.analytic import RooflinePass
from hwsim.engine.feed import BatchFeed
from hwsim.engine.heap import keep_freed_memory
from hwsim.engine.machine import Machine, build_machine
from hwsim.engine.placement import plan_spills
from hwsim.engine.records import MemoryRecords, ParquetRecords, RecordBuilder
from hwsim.engine.replay import EventReplay
from hwsim.errors import ConfigError
from hwsim.metrics.totals import RunTotals
from hwsim.trace.trace import Trace

#: Timing strategies by fidelity level.
STRATEGIES = {"event": EventReplay, "roofline": RooflinePass}
FIDELITIES = tuple(STRATEGIES)


@dataclass
class EngineRun:
    """What the engine produced for one run: timed records and the totals of the run.

    ``records`` is the DataFrame (records kept in memory), ``records_file`` the Parquet
    file they were written to, or neither (``records=False``). ``machine`` is the resolved
    machine config with the run's ``spills``; ``summary_blocks`` are the fidelity level's
    own summary entries (the roofline's bounds).
    """

    fidelity: str
    totals: RunTotals
    machine: dict[str, Any]
    trace_meta: dict[str, Any]
    records_file: Path | None = None
    summary_blocks: dict[str, Any] = field(default_factory=dict)
    kept: MemoryRecords | None = None   # records in memory, joined into a DataFrame when first read

    @property
    def records(self) -> pd.DataFrame | None:
        """The records DataFrame (in memory), None when the run kept none or wrote a file."""
        if self.kept is not None:
            self._frame, self.kept = self.kept.frame(), None
        return getattr(self, "_frame", None)


def run_trace(machine: MachineConfig | Machine, trace: Trace, *, fidelity: str = "event",
              batch_rows: int = 65536, on_batch: Callable[[int], None] | None = None,
              records: bool | str | os.PathLike = True) -> EngineRun:
    """Time ``trace`` on ``machine`` at ``fidelity`` (``"event"`` or ``"roofline"``).

    ``records``: True keeps them in memory, a path writes them to that Parquet file as the
    run goes, False keeps none (only the totals). ``on_batch(rows)`` is called as each
    batch of trace rows is loaded. Raises TraceError for a bad trace, ConfigError for a
    machine that cannot run it or an unknown fidelity.
    """
    if fidelity not in STRATEGIES:
        raise ConfigError(f"fidelity {fidelity!r}: expected one of {', '.join(FIDELITIES)}")
    keep_freed_memory()
    built = build_machine(machine)
    spills = plan_spills(built, trace)
    if spills:
        built = built.with_moved_spaces({(built.kind_of[s.device], s.space): built.file_name(s.to_tier)
                                         for s in spills})
    if records is True:
        sink = MemoryRecords()
    elif records is False or records is None:
        sink = None
    else:
        sink = ParquetRecords(records)
    builder = RecordBuilder(built, sink)
    builder.spans_are_durations = fidelity == "roofline"
    feed = BatchFeed(built, trace, batch_rows=batch_rows, on_batch=on_batch)
    strategy = STRATEGIES[fidelity](feed, trace)
    try:
        strategy.run(builder.add)
    except BaseException:
        if isinstance(sink, ParquetRecords):
            sink.abort()
        raise
    config = dict(built.config_dict)
    config["spills"] = {built.spill_key(s.device, s.space): s.to_dict() for s in spills}
    run = EngineRun(fidelity, builder.totals, config, trace.meta_dict())
    if isinstance(sink, MemoryRecords):
        run.kept = sink
    elif isinstance(sink, ParquetRecords):
        run.records_file = sink.close()
    if fidelity == "roofline":
        run.summary_blocks = strategy.summary_blocks(builder.totals)
    return run
