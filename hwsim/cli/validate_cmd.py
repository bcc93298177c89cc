"""``hwsim validate``: run every numeric check of the reference kernels and print a table."""

from __future__ import annotations

import argparse

from hwsim.cli.trace_cmd import seed_value


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("validate", help="check the workload kernels' numerics",
                       description="Chunked vs recurrent delta rules, exact reductions, WorldKV "
                                   "memory fidelity, HRM determinism, FLOP counts vs traces.")
    p.add_argument("--seed", type=seed_value, default=0, help="seed of the random inputs (0 or more)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from workloads.validate import format_table, run_checks  # the kernels compile on first use

    checks = run_checks(args.seed)
    print(format_table(checks))
    return 0 if all(c.passed for c in checks) else 1
