"""`pulse-twin`: one command for node set-up, data checks, federation runs and reports."""
from __future__ import annotations

import argparse
import importlib
import sys

from federation.commands import COMMANDS
from federation.errors import PulseTwinError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
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


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except PulseTwinError as err:
        print(f"pulse-twin {args.command}: {err}", file=sys.stderr)
        return err.exit_code
    except OSError as err:
        # A file or directory the user named that cannot be read or written: one line, never a traceback.
        where = f"{err.filename}: " if getattr(err, "filename", None) else ""
        print(f"pulse-twin {args.command}: {where}{err.strerror or err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"pulse-twin {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
