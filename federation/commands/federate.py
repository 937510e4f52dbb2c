"""`pulse-twin federate`: run a federation on Flower's real engine on this machine (loopback)."""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from devtools.launcher import LocalEngine, NodeLaunch
from federation.commands.options import add_data_root, add_overrides, add_runs_dir, run_name, run_overrides
from federation.config import node_dir as member_dir
from federation.errors import ConfigError, PolicyRefusal
from federation import profile
from federation.output import log, progress, result
from federation.proposal import RunProposal
from federation.flower_config import SIM_NODES, encode, feature_dirs, node_config
from clients.site_policy import load_site_policy


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "federate",
        help="run a federation on Flower's real engine: a SuperLink and one SuperNode per node, on loopback",
        description=(
            "Starts a local SuperLink (TLS, node authentication) and one SuperNode per node of the chosen "
            "federation, each in its own process with its own node directory and port, launches the run with "
            "`flwr run`, shows progress per round, writes the run directory, and stops every process it "
            "started, also on failure and Ctrl-C. It is `pulse-twin coordinator start`, `coordinator register`, "
            "`node start` per node and `run start --wait`, composed on loopback. Exit code 0: completed; 3: a node "
            "refused (named; see the run's status.json); 1: failed; 2: a usage or configuration mistake; "
            "130: interrupted."
        ),
    )
    add_overrides(p, "federation=cities dp.target_epsilon=8 local.rounds=5 strategy=fedprox", multirun=True)
    add_data_root(p)
    add_runs_dir(p)
    p.add_argument("--run-name", default=None,
                   help="name of the run (default: <federation>-<time>; with -m, the combination's number is added)")
    p.add_argument("--insecure", action="store_true",
                   help="no TLS and no node authentication (debugging only; prints a warning)")
    p.add_argument("--auto-approve", action="store_true",
                   help="approve the run's code bundle on every LOCAL node directory, as the operator of all of "
                        "them (demo and tests); otherwise each node must approve with `pulse-twin node approve`")
    p.add_argument("--simulation", action="store_true",
                   help="run the same apps under Flower's simulation engine (Ray; one virtual node per node, one "
                        "CPU each) instead of SuperNodes: for parameter sweeps on one machine")
    p.add_argument("--resume", action="store_true",
                   help="start a failed or stopped run of this name again: a horizontal run continues after its "
                        "last completed round (e.g. after the SuperLink was lost)")
    p.add_argument("--dry-run", action="store_true",
                   help="horizontal runs: every node trains and evaluates on a synthetic twin of its rows (same "
                        "schema, made-up values) and nothing is charged on any node's real ledger: for tuning "
                        "(the same as the override dry_run=true; the proposal says it, so nodes approve it as such)")
    p.add_argument("--timeout", type=float, default=3600, help="seconds the whole run may take (default 3600)")
    p.add_argument("--verbose", action="store_true", help="show Flower's own log lines too")
    p.set_defaults(func=run)


def node_launches(fed: dict) -> list[NodeLaunch]:
    """One SuperNode per node (horizontal) or partner (vertical) of the federation config."""
    members = fed.get("nodes") or fed.get("partners") or {}
    launches = []
    for name, spec in members.items():
        node_dir = member_dir(fed, name).resolve()
        if not (node_dir / "site_policy.yaml").is_file():
            raise ConfigError(f"node '{name}': {node_dir} has no site_policy.yaml "
                              f"(set it up with `pulse-twin node init --partner {name} --node-dir {node_dir}`)")
        launches.append(NodeLaunch(name, node_dir, node_config(name, node_dir, spec.get("feature_dirs") or [])))
    return launches


def ensure_approved(launches: list[NodeLaunch], proposal: RunProposal, proposal_file: Path, auto: bool) -> None:
    """Every local node has approved this run's proposal (with --auto-approve: approve it now, after the same
    site-policy checks as `pulse-twin node approve`)."""
    from clients.admission import approved_proposal, check_proposal, planned_for_node, record_approval, training_rows

    missing = [n for n in launches if approved_proposal(n.node_dir, proposal.sha256()) is None]
    if not missing:
        return
    if auto:
        for n in missing:
            policy = load_site_policy(n.node_dir)
            check_proposal(policy, proposal, n.node_dir)
            dirs = feature_dirs(n.node_config)
            _, note = planned_for_node(policy, proposal, n.node_dir, training_rows(n.node_dir, proposal, dirs))
            if note is not None:   # said once, at approval
                progress(note)
            record_approval(n.node_dir, proposal, policy, "pulse-twin federate --auto-approve", note=note)
        progress(f"approved run '{proposal.run_name}' (proposal {proposal.sha256()[:12]}..., code bundle "
              f"{proposal.bundle_hash[:12]}...) on {len(missing)} local node(s) (--auto-approve)")
        return
    steps = "\n".join(f"  pulse-twin node approve --node-dir {n.node_dir} --proposal {proposal_file}" for n in missing)
    raise PolicyRefusal(f"run '{proposal.run_name}' (code bundle {proposal.bundle_hash[:12]}...) is not approved on "
                        f"node(s) {', '.join(n.name for n in missing)}; each site approves it with:\n{steps}")


def run(args: argparse.Namespace) -> int:
    from server.runs import compose_run

    overrides = run_overrides(args) + (["dry_run=true"] if args.dry_run else [])
    rd, cfg = compose_run(overrides, run_name(args))
    launches = node_launches(cfg["federation"])
    with profile.collect(rd.path / profile.FILE, party="federate", process_started=profile.process_started()):
        return launch(args, overrides, (rd, cfg), launches)


def launch(args: argparse.Namespace, overrides: list[str], composed: tuple, launches: list[NodeLaunch]) -> int:
    """Start the engine, propose, approve and run; every step that waits on another process overlaps another:
    the SuperLink starts while the run is proposed and approved, the run is submitted while the nodes connect."""
    from server.runs import RunFailed, outcome_lines, propose, start, wait

    started = time.time()
    try:
        with LocalEngine(composed[0].path / "engine", launches, insecure=args.insecure, simulation=args.simulation,
                         staged=True) as engine:
            with profile.span("propose"):
                rd, proposal, cfg = propose(overrides, None, composed)
            if proposal.privacy.dry_run:
                progress("DRY RUN: the nodes train on synthetic twins of their data; nothing is charged on any real "
                         "ledger")
            fed = cfg["federation"]
            with profile.span("approve"):
                ensure_approved(launches, proposal, rd.proposal_file, args.auto_approve)
            if args.insecure:
                log.warning("WARNING: --insecure: no TLS and no node authentication; anyone on this host can join or "
                            "listen.")
            result(f"run '{rd.path.name}': {fed['topology']} federation '{fed['name']}' with {len(launches)} nodes -> "
                   f"{rd.path}")
            extra = {}
            if args.simulation:
                extra[SIM_NODES] = encode([dict(n.node_config) for n in launches])
            with profile.span("superlink_ready"):
                engine.ready()
            with profile.span("nodes_registered"):
                engine.connect_nodes()
            if not engine.fresh:   # a re-launch: the SuperLink may still list the nodes' earlier sessions
                with profile.span("nodes_connected"):
                    engine.wait_nodes()
            with profile.span("flwr_run"):   # the ServerApp starts while the nodes connect; it waits for them
                start(engine.coordinator, rd, extra=extra, resume=args.resume)
            with profile.span("nodes_connected"):
                engine.wait_nodes()
            with profile.span("run"):
                now = wait(engine.coordinator, rd, args.timeout, progress, superlink_lost=engine.superlink_lost)
            if args.verbose:
                from server.runs import logs

                result(logs(engine.coordinator, rd, follow=False, timeout=60).rstrip("\n"))
            profile.note(stopping=time.time())
    except KeyboardInterrupt:
        log.warning("interrupted: every process this run started has been stopped")
        return 130
    result(f"run {now['state']} in {time.time() - started:.0f} s; results in {rd.path}")
    for line in outcome_lines(now):
        result(line)
    if now["state"] in ("completed", "completed-with-refusals", "refused"):
        return int(now["exit_code"])
    raise RunFailed(f"run {now['state']}: {now['error'] or 'no status written; see ' + str(rd.path / 'engine' / 'logs')}")


