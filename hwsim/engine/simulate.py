"""`simulate(machine, trace) -> RunResult`: the one call that replays a trace on a machine."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from hwsim.config.machine import MachineConfig
from hwsim.engine.machine import Machine
from hwsim.engine.placement import plan_spills
from hwsim.engine.records import finish_records
from hwsim.engine.replay import Replay
from hwsim.errors import CapacityError
from hwsim.metrics.summary import summarize
from hwsim.trace.trace import Trace
from hwsim.units import format_quantity


@dataclass
class RunResult:
    """Everything a run produced: one record per op, the summary, and its inputs."""

    records: pd.DataFrame
    summary: dict[str, Any]
    machine: dict[str, Any]
    trace_meta: dict[str, Any]

    def _repr_html_(self) -> str:
        """The run's headline and resources as HTML tables, for notebooks."""
        from hwsim.reports.notebook import result_html

        return result_html(self)


def simulate(machine: MachineConfig | Machine, trace: Trace, *, allow_overflow: bool = False,
             batch_rows: int = 65536, on_batch: Callable[[int], None] | None = None) -> RunResult:
    """Replay ``trace`` on ``machine`` and summarise it.

    Raises CapacityError when the peak allocation of a tier exceeds its capacity, unless
    ``allow_overflow`` (then ``summary["overflow"]`` lists the tiers that did not fit).
    ``on_batch(rows)`` is called as each batch of trace rows is loaded (progress display).
    """
    built = machine if isinstance(machine, Machine) else Machine(machine)
    spills = plan_spills(built, trace)
    if spills:
        built = built.with_moved_spaces({s.space: s.to_tier for s in spills})
    replay = Replay(built, trace, batch_rows=batch_rows, on_batch=on_batch)
    replay.run()
    records = finish_records(replay.records, replay.times, built.clock_hz)
    config = built.config.to_dict()
    config["spills"] = {s.space: s.to_dict() for s in spills}
    names = [ch.name for ch in built.channels]
    summary = summarize(records, config, trace.meta.to_dict(), {
        "busy": dict(zip(names, replay.channel_busy.tolist(), strict=True)),
        "bytes": dict(zip(names, replay.channel_bytes.tolist(), strict=True)),
        "energy_pj": dict(zip(names, replay.channel_energy.tolist(), strict=True)),
    })
    if summary["overflow"] and not allow_overflow:
        details = "; ".join(
            f"{name}: peak {format_quantity(summary['tiers'][name]['peak_occupancy_bytes'], 'bytes')} "
            f"> capacity {format_quantity(summary['tiers'][name]['capacity_bytes'], 'bytes')}"
            for name in summary["overflow"])
        raise CapacityError(f"{trace.source} on {built.config.source}: the working set does not fit "
                            f"({details}); place the spaces elsewhere or pass --allow-overflow")
    return RunResult(records=records, summary=summary, machine=config, trace_meta=trace.meta.to_dict())
