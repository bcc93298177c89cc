"""``hwsim machines``: the machines that ship with hwsim, usable by name (``--arch h200``)."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("machines", help="list the shipped machines (usable by name: --arch h200)",
                       description="List the machine files that ship with hwsim, with their "
                                   "descriptions. Any of these names works wherever a machine "
                                   "file is expected (--arch, extends:).")
    p.add_argument("--paths", action="store_true",
                   help="also print each machine's file and the folders of the example traces and sweeps")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from hwsim.config.catalog import machines, shipped_root

    shipped = machines()
    width = max(len(m.name) for m in shipped)
    for machine in shipped:
        print(f"{machine.name:<{width}}  {machine.description}")
        if args.paths:
            print(f"{'':<{width}}  {machine.path}")
    if args.paths:
        print(f"  example traces  {shipped_root() / 'traces' / 'examples'}")
        print(f"  example sweeps  {shipped_root() / 'examples' / 'sweeps'}")
    return 0
