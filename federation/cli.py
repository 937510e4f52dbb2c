"""`pulse-twin`: one command for node set-up, data checks, federation runs and reports."""
from __future__ import annotations

import argparse
import copy
import importlib
import os
import sys
from typing import NoReturn

from federation.commands import COMMANDS
from federation.errors import PulseTwinError
from federation.output import log, progress, result, setup_logging


class _Parser(argparse.ArgumentParser):
    """A usage mistake in one line naming the command, as every other mistake is (not argparse's usage block)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="pulse-twin",
        description=(
            "PULSE-TWIN: federated, privacy-preserving analytics of neighbourhood liveability. "
            "Area-level data only; nothing raw leaves a node."
        ),
    )
    parser.add_argument("--version", action="version", version=f"pulse-twin {_version()}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"federation.commands.{name}").register(subparsers)
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pulse-twin")
    except PackageNotFoundError:
        return "(not installed)"


def parse(argv: list[str] | None) -> argparse.Namespace:
    """The command line; `KEY=VALUE` overrides may come before, between or after options (argparse alone
    takes one run of positionals, so `federate A --data-root X B` would refuse B)."""
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if rest and hasattr(args, "overrides") and not any(r.startswith("-") for r in rest):
        args.overrides = [*(args.overrides or []), *rest]
    elif rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    setup_logging()
    try:
        return _multirun(args) if getattr(args, "multirun", False) else int(args.func(args) or 0)
    except PulseTwinError as err:
        log.error(f"pulse-twin {args.command}: {err}")
        return err.exit_code
    except OSError as err:
        # A file or directory the user named that cannot be read or written: one line, never a traceback.
        where = f"{err.filename}: " if getattr(err, "filename", None) else ""
        log.error(f"pulse-twin {args.command}: {where}{err.strerror or err}")
        return 2
    except KeyboardInterrupt:
        log.error(f"pulse-twin {args.command}: interrupted")
        return 130
    except Exception as err:   # a bug, not a user's mistake: still one line, the traceback on request
        if os.environ.get("PULSE_TWIN_DEBUG"):
            raise
        log.error(f"pulse-twin {args.command}: unexpected error ({type(err).__name__}: {err}); "
                  "PULSE_TWIN_DEBUG=1 shows the traceback")
        return 1


def _multirun(args: argparse.Namespace) -> int:
    """`-m`: the command once per combination of the swept overrides, each told which one it is (`sweep`:
    its number and overrides, for the names of what it writes), then one line per combination."""
    from federation.config import sweep

    combinations = sweep(args.overrides)
    outcomes = []
    for number, overrides in enumerate(combinations, 1):
        label = " ".join(overrides)
        progress(f"== multirun {number}/{len(combinations)}: {label}")
        one = copy.copy(args)
        one.overrides, one.sweep = overrides, (number, label)
        outcomes.append(int(one.func(one) or 0))
    result(f"multirun of {len(combinations)}:")
    for number, (overrides, code) in enumerate(zip(combinations, outcomes), 1):
        result(f"  {number}: {' '.join(overrides)}: {'ok' if code == 0 else f'exit {code}'}")
    return max(outcomes, key=lambda code: code != 0)


if __name__ == "__main__":
    sys.exit(main())
