"""Options that mean the same thing in every command, declared once so they are spelled and explained alike.

`--node-dir` one node's directory, `--data-root` the folder holding one directory per node, `--runs-dir` the
folder of run directories, `--out` where a command writes what it makes, `--json` its output as JSON, and
`KEY=VALUE` overrides as positional arguments (Hydra overrides of the run configuration, or of the file the
command reads), with `-m/--multirun` where a sweep makes sense.
"""
from __future__ import annotations

import argparse
from pathlib import Path


def add_overrides(p: argparse.ArgumentParser, example: str, multirun: bool = False) -> None:
    """Positional `KEY=VALUE` overrides (and, for the run configuration, `-m` to sweep `KEY=A,B`)."""
    # default=[]: argparse otherwise names an optional `*` positional among the missing required arguments
    p.add_argument("overrides", nargs="*", default=[], metavar="KEY=VALUE", help=f"overrides, e.g. {example}")
    if multirun:
        p.add_argument("-m", "--multirun", action="store_true",
                       help="sweep: run once per combination of comma-separated values (e.g. train.lr=0.01,0.03), "
                            "each named by its overrides in the output")


def add_data_root(p: argparse.ArgumentParser) -> None:
    """`--data-root`: the same as the override `federation.data_root=DIR`."""
    p.add_argument("--data-root", type=Path, default=None, metavar="DIR",
                   help="the folder of node directories (default: the federation's data_root; the same as "
                        "federation.data_root=DIR)")


def add_runs_dir(p: argparse.ArgumentParser) -> None:
    """`--runs-dir`: the same as the override `runs_dir=DIR`."""
    p.add_argument("--runs-dir", type=Path, default=None, metavar="DIR",
                   help="the folder of run directories (default: runs_dir of the configuration; the same as "
                        "runs_dir=DIR)")


def add_json(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout instead of a table")


def configured_data_root() -> Path:
    """The default federation's `data_root`: where a command that takes no overrides writes node directories, so
    that `generate` writes where `baseline` and `federate` read."""
    from federation.config import compose

    return Path(compose("config").federation.data_root)


def run_name(args: argparse.Namespace) -> str | None:
    """`--run-name`, or under `-m` that name (or `multirun-<time>`) with the combination's number: each
    combination is a run of its own, named so that the sweep's output says which is which."""
    sweep = getattr(args, "sweep", None)
    if sweep is None:
        return args.run_name
    import time

    return f"{args.run_name or 'multirun-' + time.strftime('%Y%m%d-%H%M%S')}-{sweep[0]}"


def run_overrides(args: argparse.Namespace) -> list[str]:
    """The command's overrides with `--data-root` and `--runs-dir` folded in (absolute, from the working
    directory they were typed in)."""
    from federation.config import value_override

    extra = []
    if getattr(args, "data_root", None) is not None:
        extra.append(value_override("federation.data_root", args.data_root.resolve()))
    if getattr(args, "runs_dir", None) is not None:
        extra.append(value_override("runs_dir", args.runs_dir.resolve()))
    return list(getattr(args, "overrides", []) or []) + extra
