"""`pulse-twin ask "..."`: ask the twin a question in Dutch or English, answered from a run's artefacts."""
from __future__ import annotations

import argparse
from pathlib import Path

from federation.commands.options import add_json, add_overrides, add_runs_dir
from federation.output import emit_json, result

NOT_ANSWERED = 3


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "ask",
        help="ask the twin a question (Dutch or English): forecasts, changes, comparisons, drivers, privacy, actions",
        description=(
            "Answers a question from the released artefacts of a completed run (predictions with intervals, the "
            "label as released per area and month, drivers, skill, the nodes' privacy reports, the municipality's "
            "action log): which areas are expected to worsen and why; what changed in a buurt or wijk since a date "
            "or season; compare two areas; a figure for an area, wijk or the city over a period; the drivers of an "
            "area's forecast; what left which node at what privacy cost; what the city did. Every number comes "
            "from an artefact and every sentence names its source; a change inside its interval is no change "
            "beyond the noise; drivers are associations, never causes. Questions about persons, addresses, "
            "households, groups defined by protected attributes, or differences of areas are refused, with the "
            "reason. Relative dates count from the run's latest released month. Post-processing only: no privacy "
            f"cost. Exit code 0: answered; {NOT_ANSWERED}: refused, asked back or no data; 2: no run to read."
        ),
    )
    p.add_argument("question", metavar="QUESTION", help="the question, in quotes")
    p.add_argument("--run", type=Path, default=None, metavar="RUN_DIR",
                   help="the run directory to answer from (default: the latest completed run in --runs-dir)")
    add_runs_dir(p)
    add_overrides(p, "action_log=/srv/heerlen/actions.yaml interval_level=0.8 (configs/ask/default.yaml)")
    add_json(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from server.ask import Colleague, latest_run
    from server.ask.settings import load_settings

    settings = load_settings(args.overrides)
    run_dir = args.run
    if run_dir is None:
        if args.runs_dir is not None:
            runs_dir = args.runs_dir
        else:
            from federation.config import compose

            runs_dir = Path(compose("config").runs_dir)
        run_dir = latest_run(runs_dir)
    answer = Colleague(run_dir, settings).ask(args.question)
    if args.json:
        emit_json(answer.to_dict())
    else:
        result(answer.text)
    return 0 if answer.status == "answer" else NOT_ANSWERED
