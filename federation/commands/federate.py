"""`pulse-twin federate`: run a federation on Flower's real engine on this machine (loopback)."""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from dp_accounting import noise_multiplier
from federation.bundle import code_hash
from federation.config import APP_ROOT, compose, to_container
from federation.dp_sgd import sample_rate, steps_per_round
from federation.engine import LocalEngine, NodeLaunch
from federation.errors import ConfigError, PolicyRefusal, PulseTwinError
from federation.proposal import PrivacyPlan, RunProposal
from federation.site_policy import RECORD_UNIT, ROW_UNIT, append_approval, load_site_policy
from server.run_record import read_status

NOMINAL_ROWS = 1000  # rows a proposal's privacy figures are shown for; each node calibrates for its own


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "federate",
        help="run a federation on Flower's real engine: a SuperLink and one SuperNode per node, on loopback",
        description=(
            "Starts a local SuperLink (TLS, node authentication) and one SuperNode per node of the chosen "
            "federation, each in its own process with its own node directory and port, launches the run with "
            "`flwr run`, shows progress per round, writes the run directory, and stops every process it "
            "started, also on failure and Ctrl-C. Exit code 0: completed; 3: completed but a node refused a "
            "release (see the run's status.json); 1: failed."
        ),
    )
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                   help="Hydra overrides, e.g. federation=cities dp.target_epsilon=8 local.rounds=5 strategy=fedprox")
    p.add_argument("--run-name", default=None, help="name of the run (default: <federation>-<time>)")
    p.add_argument("--insecure", action="store_true",
                   help="no TLS and no node authentication (debugging only; prints a warning)")
    p.add_argument("--auto-approve", action="store_true",
                   help="approve the run's code bundle on every LOCAL node directory, as the operator of all of "
                        "them (demo and tests); otherwise each node must approve with `pulse-twin node approve`")
    p.add_argument("--simulation", action="store_true",
                   help="run the same apps under Flower's simulation engine (Ray; one virtual node per node, one "
                        "CPU each) instead of SuperNodes: for parameter sweeps on one machine")
    p.add_argument("--timeout", type=float, default=3600, help="seconds the whole run may take (default 3600)")
    p.add_argument("--verbose", action="store_true", help="show Flower's own log lines too")
    p.set_defaults(func=run)


def node_launches(fed: dict) -> list[NodeLaunch]:
    """One SuperNode per node (horizontal) or partner (vertical) of the federation config."""
    members = fed.get("nodes") or fed.get("partners") or {}
    launches = []
    for name, spec in members.items():
        node_dir = Path(spec["node_dir"]).resolve()
        if not (node_dir / "site_policy.yaml").is_file():
            raise ConfigError(f"node '{name}': {node_dir} has no site_policy.yaml "
                              f"(set it up with `pulse-twin node init --partner {name} --node-dir {node_dir}`)")
        extra = {"feature-dirs": ",".join(str(Path(d).resolve()) for d in spec["feature_dirs"])} \
            if spec.get("feature_dirs") else {}
        launches.append(NodeLaunch(name, node_dir, extra))
    return launches


def proposed_unit(topology: str) -> str:
    """What the run's guarantee is stated per: an area-period row for DP-SGD (horizontal); one record for
    releases of raw-record aggregates, the guarantee every node gives (a node protecting persons gives more)."""
    return ROW_UNIT if topology == "horizontal" else RECORD_UNIT


def proposal_for(cfg: dict, run_name: str) -> RunProposal:
    """The run as nodes are asked to approve it (privacy figures for a nominal node of 1,000 rows)."""
    dp, local = cfg["dp"], cfg["local"]
    q = sample_rate(NOMINAL_ROWS, int(local["batch_size"]))
    steps = steps_per_round(q, float(local["local_epochs"]))
    rounds = int(local["rounds"])
    sigma = noise_multiplier(float(dp["target_epsilon"]), float(dp["delta"]), q, steps * rounds)
    return RunProposal(run_name=run_name, run_kind=cfg["federation"]["topology"], bundle_hash=code_hash(APP_ROOT),
                       privacy=PrivacyPlan(float(dp["target_epsilon"]), float(dp["delta"]), sigma, q, steps, rounds,
                                           unit=proposed_unit(cfg["federation"]["topology"])),
                       federation={"name": cfg["federation"]["name"], "strategy": cfg["strategy"]["name"],
                                   "note": f"privacy figures for a node of {NOMINAL_ROWS} rows; each node "
                                           "calibrates its own noise for its own rows"})


def ensure_approved(launches: list[NodeLaunch], proposal: RunProposal, proposal_file: Path, auto: bool) -> None:
    missing = [n for n in launches if proposal.bundle_hash not in load_site_policy(n.node_dir).approved_bundles]
    if not missing:
        return
    if auto:
        for n in missing:
            append_approval(n.node_dir, {"bundle_hash": proposal.bundle_hash, "proposal_sha256": proposal.sha256(),
                                         "run_name": proposal.run_name, "by": "pulse-twin federate --auto-approve",
                                         "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
        print(f"approved code bundle {proposal.bundle_hash[:12]}... on {len(missing)} local node(s) (--auto-approve)")
        return
    steps = "\n".join(f"  pulse-twin node approve --node-dir {n.node_dir} --proposal {proposal_file}" for n in missing)
    raise PolicyRefusal(f"code bundle {proposal.bundle_hash[:12]}... is not approved on node(s) "
                        f"{', '.join(n.name for n in missing)}; each site approves it with:\n{steps}")


def run(args: argparse.Namespace) -> int:
    overrides = list(args.overrides)
    cfg = to_container(compose("config", overrides))
    fed = cfg["federation"]
    run_name = args.run_name or f"{fed['name']}-{time.strftime('%Y%m%d-%H%M%S')}"
    run_dir = (Path(cfg["runs_dir"]) / run_name).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    launches = node_launches(fed)
    proposal = proposal_for(cfg, run_name)
    proposal.save(run_dir / "proposal.json")
    ensure_approved(launches, proposal, run_dir / "proposal.json", args.auto_approve)
    if args.insecure:
        print("WARNING: --insecure: no TLS and no node authentication; anyone on this host can join or listen.")
    # The ServerApp runs in Flower's own process: every path it reads must be absolute.
    absolute = [f"federation.data_root={Path(fed['data_root']).resolve()}", f"runs_dir={Path(cfg['runs_dir']).resolve()}"]
    show = (lambda line: print(line, flush=True)) if args.verbose else _show
    print(f"run '{run_name}': {fed['topology']} federation '{fed['name']}' with {len(launches)} nodes -> {run_dir}")
    run_config = {"overrides": " ".join(overrides + absolute), "run-name": run_name, "run-dir": str(run_dir)}
    if args.simulation:
        run_config["sim-nodes"] = ";".join(
            f"{n.name}={n.node_dir}|{n.node_config.get('feature-dirs', '')}" for n in launches)
    started = time.time()
    try:
        with LocalEngine(run_dir / "engine", launches, insecure=args.insecure, simulation=args.simulation) as engine:
            engine.run_app(APP_ROOT, run_config, args.timeout, show)
    except KeyboardInterrupt:
        print("interrupted: every process this run started has been stopped")
        return 130
    status = read_status(run_dir)
    print(f"run {status['state']} in {time.time() - started:.0f} s; results in {run_dir}")
    if status["state"] == "completed":
        return 0
    if status["state"] == "completed-with-refusals":
        for r in status.get("refusals", []):
            print(f"  round {r['round']}: node {r['node']} refused: {r['reason']}")
        return PolicyRefusal.exit_code
    raise PulseTwinError(f"run failed: {status.get('error', 'no status written; see ' + str(run_dir / 'engine' / 'logs'))}") \
        if status["state"] != "missing" else PulseTwinError(f"run produced no status; see {run_dir / 'engine' / 'logs'}")


def _show(line: str) -> None:
    """Progress lines of the run (and errors) without Flower's own chatter."""
    if "[pulse-twin]" in line:
        print(line.split("[pulse-twin]", 1)[1].strip(), flush=True)
    elif "ERROR" in line or "Traceback" in line:
        print(line, flush=True)
