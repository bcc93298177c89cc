"""``hwsim energy``: the energy constants of a machine (or the library) with provenance."""

from __future__ import annotations

import argparse

from hwsim.config.machine import load_arch
from hwsim.energy.library import LIBRARY
from hwsim.engine.machine import Machine
from hwsim.reports.energy import provenance_table


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("energy", help="list energy constants and where each comes from",
                       description="Print every energy constant of a machine with its source.")
    p.add_argument("--arch", help="machine YAML")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE")
    p.add_argument("--library", action="store_true", help="list the published constants machines can reference")
    p.set_defaults(handler=run)


def machine_constants(machine: Machine) -> list[dict]:
    """Rows (component, kind, constant, value, unit, source) for every component: the energy
    report's provenance table, from the machine's component facts."""
    return provenance_table(machine.config_dict).to_dict("records")


def run(args: argparse.Namespace) -> int:
    if args.library or not args.arch:
        print(f"{'constant':<24} {'value':>10}  unit     node     source")
        for c in LIBRARY.values():
            unit = {"energy": "pJ", "energy_bit": "pJ/bit", "power": "W"}[c.dimension]
            node = f"{c.node_nm:g} nm" if c.node_nm else "device"
            print(f"{c.name:<24} {c.value:>10.4g}  {unit:<8} {node:<8} {c.source}"
                  + (f" [{c.note}]" if c.note else ""))
        if not args.arch:
            return 0
        print()
    machine = Machine(load_arch(args.arch, overrides=args.overrides))
    print(f"energy constants of {machine.config.name} ({machine.config.source})")
    print(f"{'component':<12} {'constant':<22} {'value':>10}  {'unit':<9} source")
    for row in machine_constants(machine):
        print(f"{row['component']:<12} {row['constant']:<22} {row['value']:>10.4g}  {row['unit']:<9} {row['source']}")
    return 0
