"""``hwsim`` entry point: parses the subcommand and turns user errors into lines + exit 2.

Exit status: 0 success, 1 a check failed (``regress``, ``validate``, lost sweep runs), 2 bad
input (one ``hwsim: error:`` line per problem, each naming the file and the key path, row
or option), 70 an internal error (a bug: ``--debug`` shows the traceback), 130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback
import warnings

from hwsim import __version__
from hwsim.errors import HwsimError

#: Subcommand modules, each exposing ``add_parser(subparsers)`` and ``run(args) -> int``.
SUBCOMMANDS = (
    "hwsim.cli.run_cmd", "hwsim.cli.trace_cmd", "hwsim.cli.validate_cmd", "hwsim.cli.energy_cmd",
    "hwsim.cli.compare_cmd", "hwsim.cli.report_cmd", "hwsim.cli.sweep_cmd", "hwsim.cli.regress_cmd",
    "hwsim.cli.demo_cmd", "hwsim.cli.machines_cmd", "hwsim.cli.calibrate_cmd", "hwsim.cli.describe_cmd",
)

EXIT_CHECK_FAILED = 1
EXIT_USER_ERROR = 2
EXIT_INTERNAL_ERROR = 70
EXIT_INTERRUPTED = 130


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line and exit status 2, like every other error."""

    def error(self, message: str):
        where = self.prog.removeprefix("hwsim").strip()   # the subcommand, if any
        self.exit(EXIT_USER_ERROR, f"hwsim: error: {where + ': ' if where else ''}{' '.join(message.split())}\n")


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


def error_lines(err: BaseException) -> list[str]:
    """The ``hwsim: error:`` lines of an error: one per problem."""
    if isinstance(err, HwsimError):
        return [f"hwsim: error: {problem}" for problem in err.problems]
    if isinstance(err, OSError):
        name = err.filename if err.filename is not None else ""
        reason = err.strerror or str(err)
        return [f"hwsim: error: {name}{': ' if name else ''}{' '.join(str(reason).split())}"]
    return [f"hwsim: internal error: {type(err).__name__}: {' '.join(str(err).split())[:300]} "
            "(this is a bug; --debug shows the traceback)"]


def main(argv: list[str] | None = None) -> int:
    """Run ``hwsim``; returns the exit status (see the module docstring)."""
    parser = build_parser()
    argv, debug = split_debug(list(sys.argv[1:] if argv is None else argv))
    args = parser.parse_args(argv)
    debug = args.debug = debug or args.debug
    try:
        with warnings.catch_warnings():
            # Overflow and invalid-value warnings are reported as errors that name the input;
            # the raw NumPy warning before them would only confuse.
            warnings.simplefilter("ignore", RuntimeWarning)
            return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        print("hwsim: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (``hwsim ... | head``): stop quietly, as other tools do, and
        # point stdout at /dev/null so that the interpreter's final flush does not fail too.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (HwsimError, OSError, MemoryError, RecursionError) as err:
        if debug:
            traceback.print_exc()
        if isinstance(err, MemoryError | RecursionError):
            print(f"hwsim: error: the input needs more {'memory' if isinstance(err, MemoryError) else 'nesting'} "
                  "than this process has", file=sys.stderr)
        else:
            print("\n".join(error_lines(err)), file=sys.stderr)
        return EXIT_USER_ERROR
    except Exception as err:  # noqa: BLE001 - a bug: one line, not a traceback (--debug shows it)
        if debug:
            traceback.print_exc()
        print("\n".join(error_lines(err)), file=sys.stderr)
        return EXIT_INTERNAL_ERROR


if __name__ == "__main__":
    sys.exit(main())
