"""``hwsim`` entry point: parses the subcommand and turns user errors into one line + exit 2."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback

from hwsim import __version__
from hwsim.errors import HwsimError

#: Subcommand modules, each exposing ``add_parser(subparsers)`` and ``run(args) -> int``.
SUBCOMMANDS = (
    "hwsim.cli.run_cmd", "hwsim.cli.trace_cmd", "hwsim.cli.validate_cmd", "hwsim.cli.energy_cmd",
    "hwsim.cli.compare_cmd", "hwsim.cli.report_cmd", "hwsim.cli.sweep_cmd", "hwsim.cli.regress_cmd",
    "hwsim.cli.demo_cmd", "hwsim.cli.machines_cmd", "hwsim.cli.calibrate_cmd",
)

EXIT_USER_ERROR = 2


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line and exit status 2, like every other error."""

    def error(self, message: str):
        where = self.prog.removeprefix("hwsim").strip()   # the subcommand, if any
        self.exit(EXIT_USER_ERROR, f"hwsim: error: {where + ': ' if where else ''}{message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="hwsim", description="Cycle-approximate simulator of hardware accelerators.")
    parser.add_argument("--debug", action="store_true",
                        help="show tracebacks for errors (anywhere on the command line)")
    parser.add_argument("--version", action="version", version=f"hwsim {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in SUBCOMMANDS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name == name:
                continue  # an optional subcommand that this installation does not ship
            raise
        module.add_parser(sub)
    return parser


def split_debug(argv: list[str]) -> tuple[list[str], bool]:
    """``argv`` without its ``--debug`` flags (before a ``--``), and whether there was one,
    so that ``--debug`` works before or after the subcommand."""
    end = argv.index("--") if "--" in argv else len(argv)
    kept = [a for a in argv[:end] if a != "--debug"] + argv[end:]
    return kept, len(kept) != len(argv)


def main(argv: list[str] | None = None) -> int:
    """Run ``hwsim``; returns the exit status (0 ok, 1 check failed, 2 user error)."""
    parser = build_parser()
    argv, debug = split_debug(list(sys.argv[1:] if argv is None else argv))
    args = parser.parse_args(argv)
    args.debug = debug or args.debug
    try:
        return int(args.handler(args) or 0)
    except HwsimError as err:
        if args.debug:
            traceback.print_exc()  # the traceback, and still the exit status of a user error
        print(f"hwsim: error: {err}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("hwsim: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (``hwsim ... | head``): stop quietly, as other tools do, and
        # point stdout at /dev/null so that the interpreter's final flush does not fail too.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
