"""Subcommands of `pulse-twin`, one module each.

Each module defines `register(subparsers)` which adds its parser and sets `func` to a callable
taking the parsed `argparse.Namespace` and returning an exit code. `COMMANDS` fixes their order in
`pulse-twin --help`.
"""
from __future__ import annotations

COMMANDS: tuple[str, ...] = (
    "demo",
    "generate",
    "features",
    "contract",
    "partition",
    "baseline",
    "federate",
    "node",
    "coordinator",
    "run",
    "pki",
    "privacy",
    "analytics",
    "report",
    "ask",
    "twin",
    "feedback",
)
