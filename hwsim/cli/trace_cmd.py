"""``hwsim trace``: generate a workload trace from a model preset and a scenario.

::

    hwsim trace worldkv --preset lingbot-world-fast --param keep_ratio=0.25 --seed 1 -o wkv.parquet
    hwsim trace --list                # families, presets and every parameter with its source
    hwsim trace deltanet2 --list      # one family
"""

from __future__ import annotations

import argparse
from typing import Any

from hwsim.errors import ConfigError

#: Where the math, dimensions and sources behind every preset are written down.
WORKLOADS_DOC = "docs/WORKLOADS.md"
WORKLOADS_NOTE = (f"Each parameter's source tag: [P] paper, [C] released code or config, [S] secondary, "
                  f"[D] derived, [A] assumed.\nThe math, dimensions and sources ('WORKLOADS §n' below) "
                  f"are in {WORKLOADS_DOC} of the hwsim repository.\nEvery family also takes dp, fsdp, tp "
                  f"and sp (devices of each kind of parallelism) and sp_mode (ulysses or ring).\n")


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``hwsim trace`` on the main parser's subcommands."""
    p = sub.add_parser("trace", help="generate a workload trace from a preset",
                       description="Generate an operation trace for a workload family from a "
                                   "model preset, parameter overrides and a seed.")
    p.add_argument("family", nargs="?", help="workload family (see --list)")
    p.add_argument("--preset", help="model preset of the family (see --list)")
    p.add_argument("--param", dest="params", action="append", default=[], metavar="KEY=VALUE",
                   help="override a parameter; the value is read as a YAML scalar (repeatable)")
    p.add_argument("--seed", type=seed_value, default=0, help="random seed, 0 or more (default 0)")
    p.add_argument("-o", "--out", help="output trace file (.parquet or .csv; NAME.et: Chakra execution "
                                         "traces NAME.<rank>.et, one per device)")
    p.add_argument("--quiet", action="store_true", help="no elapsed-time line while generating")
    p.add_argument("--list", action="store_true",
                   help="list families, presets and parameters (with sources) and exit")
    p.set_defaults(handler=run)


def seed_value(text: str) -> int:
    """A ``--seed`` value: a whole number from 0 to 2**63 - 1 (argparse reports others)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 0 <= value < 2**63:
        raise argparse.ArgumentTypeError(f"{value} is not between 0 and 2**63 - 1")
    return value


def parse_params(items: list[str]) -> dict[str, str]:
    """``["a=1", "b=x"]`` -> ``{"a": "1", "b": "x"}``; raises ConfigError on a malformed item."""
    params: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--param {item!r}: expected KEY=VALUE")
        params[key.strip()] = value.strip()
    return params


def run(args: argparse.Namespace) -> int:
    """List families or generate one trace and write it; raises ConfigError on bad input."""
    from hwsim.atomic import check_output_file
    from hwsim.progress import Working
    from hwsim.trace import write_trace
    from workloads.registry import FAMILIES, generate_trace, get_family

    if args.list:
        names = [args.family] if args.family else list(FAMILIES)
        print(WORKLOADS_NOTE)
        print("\n".join(describe_lines([get_family(name).describe() for name in names])))
        return 0
    if not args.family:
        raise ConfigError(f"trace: name a workload family ({', '.join(FAMILIES)}) or use --list")
    family = get_family(args.family)
    if not args.preset:
        raise ConfigError(f"trace {family.name}: --preset is required "
                          f"(one of: {', '.join(family.presets())})")
    if not args.out:
        raise ConfigError(f"trace {family.name}: -o/--out is required (a .parquet or .csv file)")
    params = parse_params(args.params)
    out = check_output_file(args.out, "trace file")
    if out.suffix.lower() not in (".csv", ".parquet", ".pq", ".et"):
        raise ConfigError(f"{out}: unknown trace format {out.suffix!r} (use .csv, .parquet or .et)")
    with Working(f"{family.name}/{args.preset}: generating", quiet=args.quiet):
        trace = generate_trace(family.name, args.preset, params, seed=args.seed)
        if out.suffix.lower() == ".et":
            from hwsim.trace.chakra import write_chakra

            paths = write_chakra(trace, out.with_suffix(""))
            path = f"{paths[0]} .. {paths[-1].name}" if len(paths) > 1 else paths[0]
        else:
            path = write_trace(trace, args.out)
    meta = trace.meta
    print(f"{family.name}/{args.preset}: {trace.num_ops:,} ops, {meta.work_units:g} "
          f"{meta.work_unit}s -> {path}")
    return 0


def describe_lines(families: list[dict[str, Any]]) -> list[str]:
    """People-readable lines for ``--list``: family, presets, then each parameter's value and source."""
    lines: list[str] = []
    for fam in families:
        lines.append(f"{fam['family']}: {fam['summary']} (work unit: {fam['work_unit']})")
        for preset, info in fam["presets"].items():
            lines.append(f"  preset {preset}")
            if info["description"]:
                lines.append(f"    {info['description']}")
            width = max(len(row["name"]) for row in info["params"])
            for row in info["params"]:
                value = _format_value(row["value"])
                choices = f" [{'|'.join(row['choices'])}]" if row.get("choices") else ""
                lines.append(f"    {row['name']:<{width}}  {value:<10}  {row['source']}")
                lines.append(f"    {'':<{width}}  {'':<10}  {row['help']}{choices}")
        lines.append("")
    return lines[:-1] if lines else lines


def _format_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value == "":
        return '""'
    return str(value)
