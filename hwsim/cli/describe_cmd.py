"""``hwsim describe [KIND]`` and ``hwsim schema machine|sweep|regress``: the files a user
writes, documented from the same typed fields that validate them; ``hwsim describe
MACHINE`` (a shipped machine's name or a machine file) prints its components' facts."""

from __future__ import annotations

import argparse
import json
from typing import Any

from hwsim.errors import HwsimError, did_you_mean

#: File kinds ``describe`` knows besides the component kinds: name -> (summary, classes).
FILE_KINDS = ("machine", "sweep", "regress", "trace-meta")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("describe", help="every parameter of a component kind or file, with unit, default and range",
                       description="Without KIND, list the component kinds and file kinds. With a component "
                                   "kind (sram, matrix_engine, ...) or a file kind (machine, sweep, regress, "
                                   "trace-meta), print every parameter with its unit, default, range and help. "
                                   "With a machine (a shipped machine's name or a machine file), print each "
                                   "component's facts: role, instances, peaks, bandwidth, capacity, energy.")
    p.add_argument("kind", nargs="?", help="component kind, file kind, or machine")
    p.set_defaults(handler=run_describe)
    s = sub.add_parser("schema", help="write the JSON Schema of machine, sweep or regress files",
                       description="Print (or write with -o) a JSON Schema for editors: start a YAML file "
                                   "with '# yaml-language-server: $schema=PATH' to get completion and checks.")
    s.add_argument("file_kind", choices=("machine", "sweep", "regress"))
    s.add_argument("-o", "--out", metavar="FILE", help="write the schema to FILE instead of printing it")
    s.set_defaults(handler=run_schema)


def _sections(kind: str) -> list[tuple[str, type]]:
    """(heading, config class) of each part of ``kind``."""
    from hwsim.components.base import REGISTRY, _load_builtin_components

    _load_builtin_components()
    if kind in REGISTRY:
        return [(f"components.<name> (kind: {kind})", REGISTRY[kind].Config)]
    if kind == "machine":
        from hwsim.config.machine import MachineFile

        return [("machine file (top level)", MachineFile)]
    if kind == "sweep":
        from hwsim.sweep.sweep_file import ParetoSpec, RangeSpec, SampleSpec, SweepFile, TraceEntry

        return [("sweep file (top level)", SweepFile), ("traces[i]", TraceEntry),
                ("axes.<key> as a range", RangeSpec), ("sample", SampleSpec), ("pareto", ParetoSpec)]
    if kind == "regress":
        from hwsim.regress.cases import CaseEntry, CasesFile, MatrixEntry, WorkloadEntry

        return [("cases file (top level)", CasesFile), ("cases[i]", CaseEntry), ("matrix[i]", MatrixEntry),
                ("workload / workloads[i]", WorkloadEntry)]
    if kind == "trace-meta":
        from hwsim.trace.trace import TraceMeta

        return [("trace metadata (CSV '# hwsim-trace {...}' line, Parquet key hwsim.trace)", TraceMeta)]
    from hwsim.config.catalog import machine_names

    known = (*FILE_KINDS, *sorted(REGISTRY), *machine_names())
    raise HwsimError(f"describe: unknown kind {kind!r}{did_you_mean(kind, known)}")


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value == "" or value == () or value == {} or value == []:
        return '""' if value == "" else "[]" if isinstance(value, tuple | list) else "{}"
    if dataclass_like(value):
        return "{...}"
    return str(value)


def _summary(cls: type) -> str:
    """The first paragraph of a class docstring, on one line."""
    return " ".join((cls.__doc__ or "").strip().split("\n\n")[0].split())


def dataclass_like(value: Any) -> bool:
    return hasattr(value, "__dataclass_fields__")


def describe_lines(kind: str) -> list[str]:
    """People-readable lines documenting every parameter of ``kind`` (or, for a machine
    name or file, its components' facts)."""
    from hwsim.config.fields import describe_fields

    machine = _machine_file(kind)
    if machine is not None:
        return machine_facts_lines(machine)
    lines = []
    for heading, cls in _sections(kind):
        doc = _summary(cls)
        lines.append(f"{heading}: {doc}" if doc and not doc.startswith(cls.__name__ + "(") else heading)
        rows = describe_fields(cls)
        width = max(len(r["name"]) for r in rows)
        for row in rows:
            unit = row["unit"] if row["unit"] not in ("count", "") else ""
            extra = f"  [{'|'.join(row['choices'])}]" if row["choices"] else ""
            lines.append(f"  {row['name']:<{width}}  {unit:<14} default {_cell(row['default']):<12} "
                         f"{row['range']:<16} {row['help']}{extra}".rstrip())
        lines.append("")
    return lines[:-1]


def _machine_file(name: str):
    """The machine file ``name`` names when it is no component or file kind, else None."""
    from hwsim.components.base import REGISTRY, _load_builtin_components
    from hwsim.config.catalog import resolve_machine
    from hwsim.errors import ConfigError

    _load_builtin_components()
    if name in REGISTRY or name in FILE_KINDS:
        return None
    try:
        return resolve_machine(name)
    except ConfigError:
        return None


def machine_facts_lines(path) -> list[str]:
    """Each component's facts record of the machine at ``path``, for people: role, kind,
    instances, clock, peaks per dtype, bandwidth per direction (sustained of datasheet),
    capacity and on-chip bytes, then its energy constants with units and sources."""
    from hwsim.components.facts import machine_facts
    from hwsim.config.machine import load_arch
    from hwsim.units import format_quantity as q

    machine = load_arch(path)
    lines = [f"{machine.name}: {machine.description}".rstrip(": "),
             f"  reference clock {q(machine.clock_hz, 'frequency')}; every number below is the component's facts "
             "record, which the run summary and reports read"]
    if machine.device_count > 1:
        lines.append(f"  {machine.nodes} node{'s' if machine.nodes > 1 else ''} of {machine.devices} devices: every "
                     f"component but the fabrics once per device (d0.<name> ... d{machine.device_count - 1}.<name>)")
    for kind in machine.device_kinds:
        devices = ", ".join(str(d) for d in kind.devices)
        lines.append(f"  device{'s' if len(kind.devices) > 1 else ''} {devices}: kind {kind.name!r}, the components of "
                     f"{kind.machine.source} (hwsim describe {kind.machine.source}); the rest are this file's, below")
    for name, record in machine_facts(machine).items():
        head = f"{name} ({record.kind}, {record.role}"
        if record.role == "compute":
            head += f", {record.instances} at once, {q(record.clock_hz, 'frequency')}"
        lines.append(head + ")")
        if record.peaks:
            lines.append("  peak        " + ", ".join(f"{p.dtype} {q(p.flops_per_s, 'flops')}" for p in record.peaks))
        for b in record.bandwidth:
            sustained = q(b.sustained_bytes_per_s, "bandwidth")
            of = "" if b.sustained_bytes_per_s == b.peak_bytes_per_s else f" of {q(b.peak_bytes_per_s, 'bandwidth')}"
            lines.append(f"  bandwidth   {b.direction:<18} {sustained}{of}")
        if record.capacity_bytes:
            lines.append(f"  capacity    {q(record.capacity_bytes, 'bytes')}"
                         + (f" (on chip: {q(record.on_chip_bytes, 'bytes')})" if record.on_chip_bytes else ""))
        elif record.on_chip_bytes:
            lines.append(f"  on chip     {q(record.on_chip_bytes, 'bytes')}")
        for c in record.energy:
            lines.append(f"  energy      {c.name:<22} {f'{c.value:.4g} {c.unit}':<18} {c.source}")
    return lines


def run_describe(args: argparse.Namespace) -> int:
    from hwsim.components.base import REGISTRY, _load_builtin_components

    if args.kind:
        print("\n".join(describe_lines(args.kind)))
        return 0
    _load_builtin_components()
    print("file kinds (hwsim describe KIND; hwsim schema KIND for a JSON Schema):")
    print("  machine     a machine YAML: clock, components, placement, dispatch")
    print("  sweep       a sweep file: machine, traces, axes, constraints")
    print("  regress     a regress cases file: cases and matrix blocks")
    print("  trace-meta  the metadata of a trace")
    print("component kinds:")
    width = max(map(len, REGISTRY))
    for kind in sorted(REGISTRY):
        print(f"  {kind:<{width}}  {_summary(REGISTRY[kind])}")
    return 0


def schema_text(file_kind: str) -> str:
    """The JSON Schema of ``file_kind`` as deterministic JSON text."""
    from hwsim.config.json_schema import SCHEMAS

    return json.dumps(SCHEMAS[file_kind](), indent=2, sort_keys=False) + "\n"


def run_schema(args: argparse.Namespace) -> int:
    text = schema_text(args.file_kind)
    if args.out:
        from hwsim.atomic import atomic_write_text, check_output_file

        print(f"schema   -> {atomic_write_text(check_output_file(args.out, 'schema file'), text)}")
        return 0
    print(text, end="")
    return 0
