"""Human-readable run summaries for the terminal."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from hwsim.errors import HwsimError
from hwsim.units import format_quantity


@contextmanager
def input_context(*paths: object) -> Iterator[None]:
    """Name every input file in an error that a computation on them raised without naming
    it (an overflowing time names only the op, a missing peak only the trace row, an
    unplaced space only the machine's name): ``TRACE on MACHINE: problem``."""
    try:
        yield
    except HwsimError as err:
        names = [str(p) for p in paths]

        def located(problem: str) -> str:
            missing = [name for name in names if name not in problem]
            return f"{' on '.join(missing)}: {problem}" if missing else problem

        if all(located(problem) == problem for problem in err.problems):
            raise
        raise type(err)([located(problem) for problem in err.problems]) from None


def summary_lines(summary: dict[str, Any], source: str = "") -> list[str]:
    """A short human summary: cycles, time, throughput, busiest unit, bytes per tier, energy."""
    lines = [f"{summary['machine']}  {source}  ({summary['ops']:,} ops)".rstrip()]
    lines.append(f"  total       {summary['total_cycles']:,} cycles = "
                 f"{format_quantity(summary['seconds'], 'time')} at "
                 f"{format_quantity(summary['clock_hz'], 'frequency')}")
    lines.append(f"  throughput  {summary['throughput']:.4g} {summary['throughput_unit']}")
    lines.append(f"  busiest     {summary['busiest_component']} "
                 f"({100 * summary['busiest_utilization']:.1f}% busy)")
    idle = 0
    for name, tier in summary["tiers"].items():
        if _other_device(name) and not tier["bytes"] and not tier["peak_occupancy_bytes"]:
            idle += 1   # a group's ops are counted on its first device
            continue
        lines.append(f"  {name:<11} {format_quantity(tier['bytes'], 'bytes')} moved, "
                     f"{format_quantity(tier['bandwidth_bytes_per_s'], 'bandwidth')} avg, "
                     f"peak {format_quantity(tier['peak_occupancy_bytes'], 'bytes')} of "
                     f"{format_quantity(tier['capacity_bytes'], 'bytes')}")
    for name, link in summary["links"].items():
        if link["bytes"]:
            lines.append(f"  {name:<11} {format_quantity(link['bytes'], 'bytes')} over the link")
    if idle:
        lines.append(f"  ({idle} tiers of other devices unused: a group's ops count on its first device)")
    comm = summary.get("communication")
    if comm:
        lines.append(f"  comm        {format_quantity(comm['communication_seconds'], 'time')} on the fabric, "
                     f"{format_quantity(comm['exposed_communication_seconds'], 'time')} exposed "
                     f"({100 * comm['exposed_share']:.1f}% of the run); compute "
                     f"{format_quantity(comm['compute_seconds'], 'time')}")
    energy = summary["energy"]
    lines.append(f"  energy      {energy['total_j']:.4g} J (leakage {energy['leakage_pj'] / 1e12:.3g} J), "
                 f"{summary['energy_per_work_unit_j']:.4g} J/{summary['work_unit']}")
    for space, spill in summary.get("spills", {}).items():
        lines.append(f"  SPILL       {space}: {spill['from']} -> {spill['to']} (peak "
                     f"{format_quantity(spill['peak_bytes'], 'bytes')} > free "
                     f"{format_quantity(spill['free_bytes'], 'bytes')})")
    if summary["overflow"]:
        lines.append(f"  OVERFLOW    working set exceeds capacity of: {', '.join(summary['overflow'])}")
    return lines


def _other_device(name: str) -> bool:
    """A component of device 1, 2, ... of a machine of several devices (``d3.hbm``)."""
    head = name.split(".", 1)[0]
    return "." in name and head[:1] == "d" and head[1:].isdigit() and head != "d0"
