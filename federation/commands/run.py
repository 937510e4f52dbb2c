"""`pulse-twin run`: propose, start, follow and stop runs on the lab's SuperLink.

Exit codes: 0 completed; 1 failed or stopped (or the SuperLink could not be asked); 2 a usage or
configuration mistake; 3 a node refused (named); 6 (`status`) not finished yet; 130 interrupted.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from federation.commands.options import add_data_root, add_json, add_overrides, add_runs_dir, run_name, run_overrides
from federation.output import emit_json, progress, result

EXIT_CODES = ("Exit codes: 0 completed; 1 failed or stopped; 2 usage or configuration mistake; 3 a node refused "
              "(named in the output); 6 (status) not finished yet; 130 interrupted.")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run", help="coordinator: propose, start, follow and stop runs on the SuperLink",
        description="Runs on the SuperLink that `pulse-twin coordinator start` runs. " + EXIT_CODES,
    )
    sub = parser.add_subparsers(dest="run_command", metavar="ACTION", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        add_overrides(p, "federation=cities dp.target_epsilon=8 local.rounds=5", multirun=True)
        p.add_argument("--run-name", default=None,
                       help="the run's name (its directory under runs_dir; with -m, the combination's number is added)")
        add_data_root(p)
        add_runs_dir(p)

    propose = sub.add_parser("propose", help="write the run's proposal for the nodes to approve",
                             description="Compose the configuration and write <runs_dir>/<run>/proposal.json: the code "
                                         "hash and the exact privacy parameters every node approves with `pulse-twin "
                                         "node approve`. " + EXIT_CODES)
    common(propose)
    propose.set_defaults(func=run_propose)

    start = sub.add_parser("start", help="start a proposed run on the SuperLink",
                           description="Start the run on the SuperLink (proposing it first if it was not). Each node "
                                       "checks the run's bundle and privacy parameters against its own approvals "
                                       "before anything runs. " + EXIT_CODES)
    common(start)
    start.add_argument("--coordinator-dir", required=True, type=Path, help="the coordinator's directory")
    start.add_argument("--wait", action="store_true", help="follow the run's progress until it ends")
    start.add_argument("--resume", action="store_true",
                       help="start a failed or stopped run again: a horizontal run continues after its last completed "
                            "round; nodes re-send an update they already released at no charge")
    start.add_argument("--timeout", type=float, default=3600, help="seconds --wait follows the run (default 3600)")
    add_json(start)
    start.set_defaults(func=run_start)

    for action, text in (("status", "the run's state: its own status file and Flower's"),
                         ("log", "the run's log on the SuperLink"), ("stop", "stop the run on the SuperLink")):
        p = sub.add_parser(action, help=text, description=f"{text[0].upper()}{text[1:]}. " + EXIT_CODES)
        p.add_argument("run", metavar="RUN", help="the run's name")
        add_runs_dir(p)
        p.add_argument("--coordinator-dir", required=True, type=Path, help="the coordinator's directory")
        if action == "log":
            p.add_argument("--follow", action="store_true", help="keep following until the run ends")
            p.add_argument("--timeout", type=float, default=3600, help="seconds to follow (default 3600)")
        else:
            add_json(p)
        p.set_defaults(func={"status": run_status, "log": run_log, "stop": run_stop}[action])


def run_propose(args: argparse.Namespace) -> int:
    from server.runs import propose

    rd, proposal, _ = propose(run_overrides(args), run_name(args))
    result(f"run '{rd.path.name}': proposal {rd.proposal_file} (sha256 {proposal.sha256()})")
    result(f"each node approves it with: pulse-twin node approve --node-dir NODE_DIR --proposal {rd.proposal_file}")
    return 0


def _print_status(now: dict, as_json: bool) -> int:
    from server.runs import outcome_lines

    if as_json:
        emit_json(now)
        return int(now["exit_code"])
    result(f"run '{now['run']}': {now['state']} (SuperLink run {now['flower_run_id']}, Flower: {now['flower_status']})"
           + (f" after {now['elapsed_s']:.0f} s" if isinstance(now.get("elapsed_s"), (int, float)) else ""))
    for line in outcome_lines(now):
        result(line)
    if now["error"] and now["state"] not in ("completed", "completed-with-refusals"):
        result(f"  {now['error']}")
    result(f"  results and logs: {now['run_dir']}")
    return int(now["exit_code"])


def run_start(args: argparse.Namespace) -> int:
    from server.coordinator import Coordinator
    from server.runs import propose, start, wait

    coordinator = Coordinator(args.coordinator_dir.resolve())
    rd, proposal, _ = propose(run_overrides(args), run_name(args))
    run_id = start(coordinator, rd, resume=args.resume)
    if not args.json:
        result(f"run '{rd.path.name}' started on the SuperLink (run {run_id}); proposal {proposal.sha256()[:12]}...")
    if not args.wait:
        if args.json:
            emit_json({"run": rd.path.name, "flower_run_id": run_id, "run_dir": str(rd.path)})
        return 0
    now = wait(coordinator, rd, args.timeout, (lambda _: None) if args.json else progress)
    return _print_status(now, args.json)


def _run_dir(args: argparse.Namespace):
    from federation.config import compose
    from server.runs import run_dir

    return run_dir(args.runs_dir or Path(compose("config").runs_dir), args.run)


def run_status(args: argparse.Namespace) -> int:
    from server.coordinator import Coordinator
    from server.runs import status

    return _print_status(status(Coordinator(args.coordinator_dir.resolve()), _run_dir(args)), args.json)


def run_log(args: argparse.Namespace) -> int:
    from server.coordinator import Coordinator
    from server.runs import logs

    result(logs(Coordinator(args.coordinator_dir.resolve()), _run_dir(args), args.follow, args.timeout).rstrip("\n"))
    return 0


def run_stop(args: argparse.Namespace) -> int:
    from server.coordinator import Coordinator
    from server.runs import stop

    answer = stop(Coordinator(args.coordinator_dir.resolve()), _run_dir(args))
    result(json.dumps({"run": args.run, "stopped": True, "flower": answer}) if args.json else
           f"run '{args.run}': stop requested ({answer or 'ok'}); `pulse-twin run status {args.run}` shows its state")
    return 0
