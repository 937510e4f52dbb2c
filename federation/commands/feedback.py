"""`pulse-twin feedback`: public pages per buurt on what residents reported and what the city did."""
from __future__ import annotations

import argparse
from pathlib import Path

from federation.commands.options import add_overrides
from federation.config import compose, configs_dir, to_container
from federation.output import result


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "feedback",
        help="write public pages per buurt: residents' reports (DP), handling, satisfaction, the city's actions",
        description=(
            "Writes OUT/index.html and OUT/<buurt>.html in Dutch, and the same in English under OUT/en/ (static, "
            "offline, readable on a phone): what residents and frontliners reported (the community node's DP "
            "release kept in RUN_DIR/releases/, with its uncertainty in words), the share handled within the "
            "norm, how satisfied reporters were, how much the community block weighs in the buurt's forecast, "
            "a warning where residents report less than other signals predict, and the municipality's action "
            "log as a timeline. No figures for buurten below the minimum population; every number on a page "
            "names its release, public figure or action-log entry. Settings: configs/feedback/default.yaml "
            "(KEY=VALUE). Post-processing only: charges no budget."
        ),
    )
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a completed vertical run with the community node")
    p.add_argument("--out", type=Path, default=None, help="output directory (default RUN_DIR/feedback)")
    p.add_argument("--actions", type=Path, default=None,
                   help="the municipality's action log (YAML; default configs/feedback/heerlen_actions.yaml)")
    add_overrides(p, "months=6 (settings of configs/feedback/default.yaml)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from server.feedback.pages import build_feedback
    from server.feedback.trace import untraceable

    settings = to_container(compose("default", args.overrides, group="feedback"))
    actions = args.actions or configs_dir() / "feedback" / str(settings["actions"])
    out = args.out or args.run_dir / "feedback"
    written = build_feedback(args.run_dir, out, actions, settings)
    bad = [(p, t) for p in written for t in untraceable(p.read_text(encoding="utf-8"))]
    if bad:
        raise ValueError(f"{bad[0][0]}: untraceable number {bad[0][1]!r}")   # a bug, never a user mistake
    buurten = (len(written) - 2) // 2
    result(f"feedback: {buurten} buurt pages and an index, Dutch: {(out / 'index.html').resolve()}, "
           f"English: {(out / 'en' / 'index.html').resolve()}")
    return 0
