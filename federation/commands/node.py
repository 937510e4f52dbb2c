"""`pulse-twin node`: what a partner's IT team runs on its own node.

`init` sets up a node directory (layout, key pair, site policy, data contract), `approve` reviews a
run proposal and records an approval of its code, `audit` shows what left the node and what it cost,
`policy` shows the node's rules and how much of its budget is spent.
"""
from __future__ import annotations

import argparse
import getpass
import json
import os
import re
import sys
from collections import Counter
from pathlib import Path

from federation.config import configs_dir
from federation.errors import ConfigError
from federation.output import emit_json, log, progress, result
from federation.pki import create_node_keypair
from clients.site_policy import (
    POLICY_FILE,
    SitePolicy,
    load_site_policy,
    parse_site_policy,
    read_approvals,
)

NODE_DIRS: tuple[str, ...] = ("public", "raw", "features", "state", "keys")
CONTRACT_FILE = "contract.yaml"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "node",
        help="node: set up, approve runs, audit what left the node",
        description=(
            "Commands for a partner's own node. The node decides what it releases: its site policy, "
            "its approvals and its egress log live in the node directory and nowhere else."
        ),
    )
    sub = parser.add_subparsers(dest="node_command", metavar="ACTION", required=True)

    init = sub.add_parser(
        "init",
        help="create a new node directory with key pair, site policy and data contract",
        description=(
            "Create the node directory layout (public/, raw/, features/, state/, keys/), the node's key "
            "pair, its site policy (from configs/site_policy/PARTNER.yaml, else default.yaml) and a data "
            "contract to fill in. Refuses to touch a directory that is already a node."
        ),
    )
    init.add_argument("--partner", required=True, help="the node's partner name, e.g. police or genk")
    init.add_argument("--node-dir", required=True, type=Path, help="the node directory to create")
    init.set_defaults(func=run_init)

    approve = sub.add_parser(
        "approve",
        help="review a run proposal against the site policy and approve its code bundle",
        description=(
            "Show a coordinator's run proposal in plain words, project the epsilon this node would reach "
            "after the run against its caps, and record an approval of the proposal's code bundle in "
            "state/approvals.jsonl. Refuses (naming the rule) what the site policy forbids."
        ),
    )
    approve.add_argument("--node-dir", required=True, type=Path, help="the node directory")
    approve.add_argument("--proposal", required=True, type=Path, help="the run proposal (JSON) from the coordinator")
    approve.add_argument("--yes", action="store_true", help="approve without asking for confirmation")
    approve.add_argument("--by", default=None, help="who approves (recorded; default: the current user)")
    approve.set_defaults(func=run_approve)

    audit = sub.add_parser(
        "audit",
        help="verify the egress log and show what left the node and what it cost",
        description=(
            "Verify the node's hash-chained egress log and cross-check it with the privacy ledger, then "
            "list per run, round and message kind what left the node, the epsilon charged and the node's "
            "cumulative epsilon (recomputed from the ledger). Exits with status 4 on any sign of tampering."
        ),
    )
    audit.add_argument("--node-dir", required=True, type=Path, help="the node directory")
    audit.add_argument("--run", default=None, help="show only this run (the whole log is still verified)")
    audit.add_argument("--json", action="store_true", help="print the audit as JSON")
    audit.add_argument("--public-key", type=Path, default=None, metavar="FILE",
                       help="check the head's signature with this public key (e.g. the copy the lab registered; "
                            "default NODE_DIR/keys/node.pub)")
    audit.add_argument("--resign", action="store_true",
                       help="after the whole log verified, sign its head with the node's current key (after a key "
                            "rotation, with --public-key OLD.pub; or for a log written before the node had a key)")
    audit.set_defaults(func=run_audit_command)

    recover = sub.add_parser(
        "recover-ledger",
        help="rebuild the privacy ledger from the verified egress log (after the guard refused it)",
        description=(
            "When the privacy ledger no longer matches the egress log (deleted, emptied, edited, copied from "
            "another node), the node refuses every release. This rebuilds the ledger from the log's charged "
            "releases, only if the whole log verifies; the old ledger is kept beside the new one."
        ),
    )
    recover.add_argument("--node-dir", required=True, type=Path, help="the node directory")
    recover.add_argument("--yes", action="store_true", help="rebuild without asking for confirmation")
    recover.set_defaults(func=run_recover_ledger)

    start = sub.add_parser(
        "start",
        help="run this node's SuperNode against the lab's SuperLink, with this node's own executor",
        description=(
            "Run the node in the foreground: its SuperNode connects to the SuperLink (TLS with the federation CA, "
            "the node's own key; outbound only), with process isolation, and this node's installed PULSE-TWIN "
            "answers every message. Before anything answers, it checks the run's code bundle and every privacy "
            "parameter against this node's approvals (state/approvals.jsonl) and refuses otherwise, naming the "
            "rule. Exit code 130 after SIGINT or SIGTERM (every process it started is stopped); 1 if the "
            "SuperNode exits on its own and does not connect again within --max-wait seconds (key not registered, "
            "SuperLink unreachable); a SuperNode that exits is started again every 5 s until then."
        ),
    )
    start.add_argument("--node-dir", required=True, type=Path, help="the node directory")
    start.add_argument("--superlink", required=True, metavar="HOST:PORT", help="the lab's SuperLink")
    start.add_argument("--ca", type=Path, default=None,
                       help="the federation's CA certificate from the coordinator (default: NODE_DIR/keys/federation-ca.crt)")
    start.add_argument("--feature-dir", action="append", default=[], type=Path, metavar="DIR",
                       help="the directory whose features/ this node reads: only its own node directory is "
                            "accepted (a node trains only on features it built itself; another node's folder is refused)")
    start.add_argument("--max-wait", type=float, default=300,
                       help="seconds the node keeps trying to (re)connect to the SuperLink before it gives up (default 300)")
    start.add_argument("--insecure", action="store_true", help="no TLS and no node authentication (debugging only)")
    start.add_argument("--preload", action="store_true",
                       help="import the node's ClientApp (torch, Opacus, pandas) at start rather than with the first "
                            "message of a run: the first message is answered seconds sooner; the idle node holds a "
                            "few hundred MB more (`pulse-twin federate` starts its nodes so)")
    start.set_defaults(func=run_start)

    policy = sub.add_parser(
        "policy",
        help="check the site policy and show its rules and the budget spent",
        description="Validate the node's site policy and show its rules, approved bundles and epsilon spent.",
    )
    policy.add_argument("--node-dir", required=True, type=Path, help="the node directory")
    policy.add_argument("--json", action="store_true", help="print as JSON")
    policy.set_defaults(func=run_policy)


# node init

def run_init(args: argparse.Namespace) -> int:
    partner: str = args.partner
    node_dir: Path = args.node_dir
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", partner):
        raise ConfigError(f"--partner: '{partner}' is not a valid node name (lower-case letters, digits, '_', '-')")
    existing = [p for p in (POLICY_FILE, "keys", "state") if (node_dir / p).exists()]
    if existing:
        raise ConfigError(
            f"{node_dir}: already a node ({', '.join(existing)} exist); nothing was changed"
        )
    policy_text, policy_source = _policy_template(partner)
    contract_text, contract_source = _contract_template(partner)
    # Validate the policy before creating anything, so a bad template leaves no half-made node.
    parse_site_policy(_yaml(policy_text, policy_source), policy_source, "")

    for name in NODE_DIRS:
        (node_dir / name).mkdir(parents=True, exist_ok=True)
    os.chmod(node_dir / "state", 0o700)
    keys = create_node_keypair(node_dir, comment=f"pulse-twin-{partner}")
    _write_new(node_dir / POLICY_FILE, policy_text)
    contract_path = node_dir / CONTRACT_FILE
    if not contract_path.exists():
        _write_new(contract_path, contract_text)

    policy = load_site_policy(node_dir)
    result(f"Created node '{partner}' in {node_dir}:")
    result(f"  {', '.join(d + '/' for d in NODE_DIRS)}")
    result(f"  key pair {keys.private_key} (private, mode 0600, never leaves this machine) and {keys.public_key}")
    result(f"  site policy {node_dir / POLICY_FILE} (from {policy_source.name}; version {policy.policy_version[:12]}...)")
    result(f"  data contract {contract_path} (from {contract_source})")
    result("Next steps:")
    result(f"  1. Send {keys.public_key} (and only that file) to the coordinator, who registers it.")
    result(f"  2. Read and adjust {node_dir / POLICY_FILE}: it decides what this node releases.")
    result(f"  3. Fill in {contract_path}, put the organisation's records in {node_dir / 'raw'}/ and the public "
           f"area register (area_code,area_name,year,population) at {node_dir / 'public' / 'areas.csv'}.")
    result(f"  4. Build the feature blocks with `pulse-twin features --node-dir {node_dir} --contract {contract_path}`"
           f" (they stay in {node_dir / 'features'}/).")
    result(f"  5. Put the coordinator's CA certificate (public) at {node_dir / 'keys' / 'federation-ca.crt'} and start "
           f"the node with `pulse-twin node start --node-dir {node_dir} --superlink HOST:PORT`.")
    result(f"  6. Approve each run the coordinator proposes with `pulse-twin node approve --node-dir {node_dir} --proposal FILE`.")
    return 0


def _policy_template(partner: str) -> tuple[str, Path]:
    folder = configs_dir() / "site_policy"
    source = folder / f"{partner}.yaml"
    if not source.is_file():
        source = folder / "default.yaml"
    try:
        text = source.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{source}: site policy template not found") from None
    filled, count = re.subn(r"(?m)^partner:[^\n#]*", f"partner: {partner}", text, count=1)
    if count != 1:
        raise ConfigError(f"{source}: template has no top-level 'partner:' line to fill in")
    return filled, source


def _contract_template(partner: str) -> tuple[str, str]:
    source = configs_dir() / "contract" / f"{partner}.yaml"
    if source.is_file():
        return source.read_text(encoding="utf-8"), str(source)
    examples = sorted(p.name for p in (configs_dir() / "contract").glob("*.yaml")) if (configs_dir() / "contract").is_dir() else []
    text = (
        f"# PULSE-TWIN data contract for node '{partner}': which raw tables this node holds (in raw/) and how\n"
        "# they aggregate into area-level feature blocks (configs/block/*.yaml, or this node's own\n"
        "# blocks/<block>.yaml next to this file). Fill in every field below,\n"
        "# then run `pulse-twin features`. Only area-level aggregates are ever built, and protected\n"
        "# attributes (migration background, ethnicity, nationality, religion) are refused as features.\n"
        + (f"# Worked examples: configs/contract/{', configs/contract/'.join(examples)}.\n" if examples else "")
        + f"name: {partner}\n"
        "# One sentence: what the records are and per which area and period they are counted.\n"
        "description: ''\n"
        "# The public area register (area_code,area_name,year,population).\n"
        "area_register:\n"
        "  path: public/areas.csv\n"
        "# The periods of the features: the export window, first and last month. Declared here, never taken\n"
        "# from the records' dates (the grid a node releases on is public).\n"
        "periods:\n"
        "  kind: month\n"
        "  start: null         # e.g. 2019-01\n"
        "  end: null           # e.g. 2021-12\n"
        "  # Every month of the window must hold records of these date columns (a month without is missing\n"
        "  # from the export: refused, never read as zero).\n"
        "  from: []            # e.g. [incidents.datum_registratie]\n"
        "# The unit of privacy: one area-period row, and at most how many rows one person can touch (a whole\n"
        "# number: e.g. the window's months when a person counts in their own area once a month).\n"
        "privacy_unit:\n"
        "  row: area-period\n"
        "  max_rows_per_person: null\n"
        "# Areas with fewer residents are dropped from every output.\n"
        "min_population: 100\n"
        "# The raw tables: path under the node directory, format, encoding, delimiter, id and typed columns.\n"
        "tables: {}\n"
        "# The feature blocks this node builds: one named aggregation op per feature.\n"
        "blocks: {}\n"
        "# The label, if this node holds it (else null).\n"
        "label: null\n"
    )
    return text, "a blank template"


# node approve

def describe_mechanism(proposal) -> str:
    """The DP mechanism the run uses on this node, in words (what `node approve` shows)."""
    p = proposal.privacy
    if p.mechanism == "gaussian":
        return (f"one Gaussian release per private table of this node (noise multiplier {p.noise_multiplier:g} for "
                f"epsilon {p.target_epsilon:g} at delta {p.delta:g} per unit), kept and re-used by later runs; "
                "PSI discloses the number of this node's keys; unit of privacy: one " + p.unit)
    if p.dry_run:
        return ("DRY RUN on a synthetic twin of this node's rows (same schema and keys, made-up values): nothing is "
                f"charged on this node's ledger; {p.rounds} rounds of DP-SGD at sample rate {p.sample_rate:g}, noise "
                f"multiplier {p.noise_multiplier:g}, as a real run at epsilon {p.target_epsilon:g} would")
    epochs = f", {p.local_epochs:g} local epoch(s)" if p.local_epochs is not None else ""
    loss = (f"; each round also a noised training loss (noise multiplier {p.loss_noise_multiplier:g})"
            if p.loss_noise_multiplier else "")
    held = (f"; each round also noised sums of the global model's errors on this node's held-out areas (noise "
            f"multiplier {p.eval_noise_multiplier:g})" if p.eval_noise_multiplier else "")
    small = (f"; a node of fewer than {p.min_rows} training rows does not train and makes its person-level DP "
             "release of its blocks and label instead" if p.min_rows else "")
    return (f"{p.rounds} rounds of DP-SGD ({p.steps_per_round} steps per round{epochs}): each step samples each row "
            f"with probability {p.sample_rate:g} (an expected batch of {p.sample_rate:g} x this node's rows), noise "
            f"multiplier {p.noise_multiplier:g}, calibrated on the node to epsilon {p.target_epsilon:g} at delta "
            f"{p.delta:g}{loss}{held}{small}; unit of privacy: one " + p.unit)


def run_approve(args: argparse.Namespace) -> int:
    from clients.admission import check_proposal, planned_for_node, record_approval, training_rows
    from dp_accounting import PrivacyLedger, ledger_path

    from federation.proposal import RunProposal

    node_dir: Path = args.node_dir
    policy = load_site_policy(node_dir)
    proposal = RunProposal.load(args.proposal)
    p, caps = proposal.privacy, policy.privacy
    result(f"Run proposal {args.proposal} for node '{policy.partner}':")
    result(f"  run '{proposal.run_name}', a {proposal.run_kind} run, code bundle {proposal.bundle_hash}")
    result(f"  mechanism: {describe_mechanism(proposal)}")
    result(f"  the coordinator's target: epsilon {p.target_epsilon:g} at delta {p.delta:g} for this run")
    if proposal.federation:
        result(f"  federation settings: {json.dumps(proposal.federation, sort_keys=True)}")
    if proposal.block_schemas:
        from federation.blocks import local_blocks

        mine = local_blocks(node_dir)
        result("  block schemas (hash): " + ", ".join(
             f"{n} {h[:12]}..." + (f" (this node's {mine[n].source})" if n in mine else "")
             for n, h in proposal.block_schemas.items()))

    for earlier in read_approvals(node_dir):
        if earlier.get("proposal_sha256") == proposal.sha256() and "proposal" in earlier:
            result(f"Already approved on {earlier.get('approved_at')} by {earlier.get('by')}; nothing recorded.")
            return 0

    check_proposal(policy, proposal, node_dir)
    candidates, note = planned_for_node(policy, proposal, node_dir, training_rows(node_dir, proposal))
    if note is not None:   # said once, here: the run's rounds do not ask this node to train
        result(f"  {note}.")
    charges = Counter((r.kind, r.noise_multiplier, r.sample_rate, r.steps) for r in candidates)
    result("  what this node will charge, recomputed from the target as it will run it: " + ("; ".join(
        f"{n} x {kind} (noise multiplier {sigma:.4g}, sample rate {q:g}, {steps} step(s))"
        for (kind, sigma, q, steps), n in charges.items()) or "nothing (a dry run)"))
    with PrivacyLedger(ledger_path(node_dir)) as ledger:
        spent = ledger.epsilon(caps.delta, accountant=caps.accountant)
        projection = ledger.check(candidates, policy.budget_caps())
    result(f"This node has spent epsilon {spent:.4g} over its life (delta {caps.delta:g}, {caps.accountant}).")
    result(f"After this run it would reach epsilon {projection.epsilon_lifetime:.4g} over its life "
           f"(cap {caps.epsilon_lifetime:g}) and {projection.epsilon_year:.4g} over the last 365 days "
           f"(cap {caps.epsilon_per_year:g}), at delta {caps.delta:g} ({caps.accountant}).")
    if p.delta < caps.delta:
        result(f"Note: the proposal's target is stated at delta {p.delta:g}; this node accounts at its own "
               f"delta {caps.delta:g}.")
    result("Only this run, with exactly these privacy parameters, is approved: the node refuses any message of it "
           "that asks for others.")

    if not args.yes and not _confirm(f"Approve run '{proposal.run_name}' (code bundle {proposal.bundle_hash[:12]}...) "
                                     f"on node '{policy.partner}'? [y/N] "):
        result("Not approved; nothing recorded.")
        return 1
    record_approval(node_dir, proposal, policy, args.by or _user(), projection, note)
    result(f"Approved: recorded in {node_dir / 'state' / 'approvals.jsonl'}.")
    return 0


def _confirm(question: str) -> bool:
    if not sys.stdin.isatty():
        raise ConfigError("confirmation needed but there is no terminal: review what the command does and pass --yes")
    try:
        return input(question).strip().lower() in ("y", "yes")
    except EOFError:
        return False


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


# node start

def run_start(args: argparse.Namespace) -> int:
    from clients.service import NodeStart, run_node
    from federation.processes import parse_address

    parse_address(args.superlink, "--superlink")
    if args.insecure:
        log.warning("WARNING: --insecure: no TLS and no node authentication.")
    start = NodeStart(node_dir=args.node_dir, superlink=args.superlink, ca=args.ca, insecure=args.insecure,
                      feature_dirs=tuple(args.feature_dir), max_wait_s=args.max_wait, preload=args.preload)
    return run_node(start, say=progress)


# node audit

def run_audit_command(args: argparse.Namespace) -> int:
    from clients.egress.audit import format_audit, run_audit

    report = run_audit(args.node_dir, run=args.run, public_key=args.public_key, resign=args.resign)
    result(json.dumps(report, indent=2, sort_keys=True) if args.json else format_audit(report))
    return 0


# node recover-ledger

def run_recover_ledger(args: argparse.Namespace) -> int:
    from clients.egress.recover import recover_ledger

    if not args.yes and not _confirm(f"Rebuild the privacy ledger of {args.node_dir} from its egress log? [y/N] "):
        result("nothing changed")
        return 1
    done = recover_ledger(args.node_dir)
    if done.get("torn"):
        result(f"the egress log's incomplete last record (a write cut off before it was finished; nothing was sent "
               f"with it) is set aside as {done['torn']}")
    if done["status"] == "unchanged":
        result(f"the ledger already holds exactly the {done['releases']} releases the egress log records: nothing to do")
        return 0
    result(f"ledger rebuilt from the egress log: {done['releases']} releases ({done['reason']})")
    if done["old_ledger"]:
        result(f"the old ledger is kept as {done['old_ledger']}")
    if done["dropped"]:
        result(f"{done['dropped']} release(s) of the old ledger that no log record charges were dropped (never sent)")
    return 0


# node policy

def run_policy(args: argparse.Namespace) -> int:
    from dp_accounting import PrivacyLedger, ledger_path
    from dp_accounting.budget import BudgetCaps, project

    policy = load_site_policy(args.node_dir)
    caps: BudgetCaps = policy.budget_caps()
    path = ledger_path(args.node_dir)
    history = []
    if path.exists():
        with PrivacyLedger(path, create=False) as ledger:
            history = ledger.history()
    spent = project(history, [], caps)
    if args.json:
        emit_json(_policy_dict(policy) | {"spent": spent.to_dict()})
        return 0
    b, pr = policy.bounds, policy.privacy
    result(f"Site policy of node '{policy.partner}': {policy.path} (version {policy.policy_version})")
    result(f"  run kinds allowed: {', '.join(policy.allowed_run_kinds)}")
    result(f"  privacy caps: epsilon {pr.epsilon_per_year:g} per 365 days, {pr.epsilon_lifetime:g} for life, at delta "
           f"{pr.delta:g} ({pr.accountant} accountant)")
    result(f"  every DP release: noise multiplier >= {b.min_noise_multiplier:g}, sample rate <= {b.max_sample_rate:g}, "
           f"computed from >= {b.min_rows_per_release} rows")
    result(f"  every run: at most {b.max_rounds_per_run} rounds; every message: at most {b.max_bytes_per_message:,} bytes")
    result(f"  approved code bundles: {len(policy.approved_bundles)}")
    for bundle in sorted(policy.approved_bundles):
        result(f"    {bundle}")
    result(f"Spent so far: epsilon {spent.epsilon_lifetime:.4g} for life, {spent.epsilon_year:.4g} over the last "
           f"365 days ({len(history)} releases in the ledger).")
    return 0


def _policy_dict(policy: SitePolicy) -> dict:
    from dataclasses import asdict

    data = asdict(policy)
    data["approved_bundles"] = sorted(policy.approved_bundles)
    data["path"] = str(policy.path)
    return data


def _yaml(text: str, source: Path) -> dict:
    import yaml

    from federation.config import yaml_error

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise yaml_error(source, err) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level")
    return data


def _write_new(path: Path, text: str) -> None:
    """Create a file that must not exist yet (never overwrite a node's files)."""
    with open(path, "x", encoding="utf-8") as handle:
        handle.write(text)
