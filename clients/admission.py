"""What a node admits: a run's code and privacy parameters, checked against the site's own approvals.

The node's executor (`clients.executor`, part of the node's installed PULSE-TWIN) calls `admit_run` and
`admit_message` for every message, before any handler runs, with the app bundle's bytes, the run's
configuration and the message as the SuperNode received them. A run is admitted only when

- its run configuration names a proposal (`proposal-sha256`) that `pulse-twin node approve` recorded in
  `state/approvals.jsonl`, with the whole proposal in the record;
- the code hash of the bundle the SuperLink shipped, computed here from its bytes, is the approved one,
  and is the code this node has installed (the node runs its own copy, never the shipped one);
- the approved proposal still passes the site policy as it is now (run kind, delta, unit, noise,
  sample rate, rounds), and every block schema it names that this node declares itself (`blocks/` in the
  node directory) still has the approved hash: a node-local block edited after approval needs a new one;

and a message only when every privacy parameter it carries (run name and kind, epsilon, delta, rounds,
sample rate, local epochs, loss noise, the minimum rows for DP-SGD, the held-out evaluation's noise) is the
approved one, with those the node's handler would otherwise default present, and the blocks and block schemas
it names are the approved ones. Anything else is refused naming the rule, before anything leaves: PSI included.
"""
from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping

from federation.blocks import local_blocks, schemas_from_json
from federation.bundle import fab_code_hash, running_code_hash
from clients.contracts.manifest import MANIFEST, read_manifest
from clients.contracts.spec import TablePrivacy
from federation.errors import ConfigError, PolicyRefusal
from federation.proposal import RunProposal
from clients.site_policy import RuleRefusal, SitePolicy, append_approval, check_unit, load_site_policy, read_approvals

PROPOSAL_KEY = "proposal-sha256"   # the run configuration key that names the approved proposal
WHERE = "approval"

# Message config key -> the proposal's field it must equal.
BOUND: dict[str, str] = {
    "run-name": "run_name",
    "run-kind": "run_kind",
    "target-epsilon": "target_epsilon",
    "delta": "delta",
    "num-rounds": "rounds",
    "sample-rate": "sample_rate",
    "local-epochs": "local_epochs",
    "loss-noise-multiplier": "loss_noise_multiplier",
    "min-rows": "min_rows",
    "eval-noise-multiplier": "eval_noise_multiplier",
    "dry-run": "dry_run",
}
# Per message type: the run kinds it belongs to, and the bound keys it must carry (the node's handler
# reads them, some with a default, so an omitted key would slip past an equality check).
MESSAGES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "train": (("horizontal",), ("run-name", "target-epsilon", "delta", "num-rounds", "sample-rate",
                                "local-epochs", "loss-noise-multiplier", "min-rows", "dry-run")),
    "evaluate": (("horizontal",), ("run-name", "eval-noise-multiplier", "dry-run")),
    "query.describe": (("horizontal", "vertical", "analytics"), ("run-name", "run-kind")),
    "query.privacy": (("horizontal", "vertical", "analytics"), ("run-name", "run-kind")),
    "query.psi": (("vertical",), ("run-name", "run-kind", "target-epsilon", "delta")),
    "query.align": (("vertical",), ("run-name", "run-kind", "target-epsilon", "delta")),
    # A horizontal run's node too small for DP-SGD takes part through this same person-level release.
    "query.release": (("vertical", "analytics", "horizontal"), ("run-name", "run-kind", "target-epsilon", "delta")),
}


def table_units(node_dir: Path) -> dict[str, str]:
    """Each raw table's unit of privacy as this node's last accepted features build recorded it."""
    manifest = read_manifest(Path(node_dir) / MANIFEST)
    try:
        return {str(t): str(v["unit"]) for t, v in (manifest.get("stats") or {}).get("tables", {}).items()}
    except (KeyError, TypeError, AttributeError):
        raise ConfigError(f"{Path(node_dir) / MANIFEST}: not a features manifest of this version (rebuild with "
                          "`pulse-twin features`)") from None


def check_proposal(policy: SitePolicy, proposal: RunProposal, node_dir: Path) -> None:
    """The site policy's rules for a proposal as a whole; raises RuleRefusal naming the first it breaks."""
    p = proposal.privacy
    policy.check_run_kind(proposal.run_kind)
    policy.check_delta(p.delta)
    check_unit(proposal.run_kind, p.unit, table_units(node_dir))
    policy.check_noise_multiplier(p.noise_multiplier)
    if p.sample_rate < 1.0:   # sample rate 1 claims no amplification (one release per table), as the guard says
        policy.check_sample_rate(p.sample_rate)
    policy.check_rounds(p.rounds)
    check_local_blocks(proposal, node_dir)


def check_local_blocks(proposal: RunProposal, node_dir: Path) -> None:
    """Each of this node's own block schemas that the proposal names has the hash the proposal states."""
    for name, schema in local_blocks(node_dir).items():
        approved = proposal.block_schemas.get(name)
        if approved is not None and approved != schema.sha256:
            raise RuleRefusal("block_schemas", f"this node's block '{name}' ({schema.source}) has hash "
                              f"{schema.sha256[:12]}..., but run '{proposal.run_name}' was proposed and approved "
                              f"with {approved[:12]}...: the block changed since; the run needs a new proposal "
                              "and its approval (`pulse-twin node approve`)", where=WHERE)


def training_rows(node_dir: Path, proposal: RunProposal, feature_dirs: tuple[Path, ...] = ()) -> int | None:
    """This node's training rows for a horizontal proposal; None for other runs or when its features are not
    built in the directories given (then the run's own `describe` decides, and says so once)."""
    fed = proposal.federation
    if proposal.run_kind != "horizontal" or "blocks" not in fed:
        return None
    from clients.node import Node
    from federation.messages import TaskSettings

    try:
        task = TaskSettings.from_config(proposal.run_name, fed["blocks"], fed["label"],
                                        holdout_fold=int(fed["holdout_fold"]), folds=int(fed["folds"]),
                                        split_seed=int(fed["seed"]))
        node = Node(Path(node_dir).name, Path(node_dir), tuple(Path(d) for d in feature_dirs) or (Path(node_dir),))
        return len(node.training_examples(task))
    except (ConfigError, KeyError, TypeError, ValueError):
        return None


@dataclass(frozen=True)
class NodeSchedule:
    """The DP schedule this node will run for a proposal, computed as its handlers compute it at run time."""

    noise_multiplier: float
    sample_rate: float
    steps_per_round: int
    rounds: int
    delta: float
    accountant: str


def node_schedule(policy: SitePolicy, proposal: RunProposal) -> NodeSchedule:
    """Recompute the run's schedule from its target and this node's own policy, exactly as the node will when it
    trains or releases (`clients.horizontal.train`, `clients.release.DpRelease`); refuse, in one line naming the
    field, a proposal whose stated schedule is not that one or that no accountant can compute within bounds."""
    from dp_accounting.calibrate import MAX_NOISE_MULTIPLIER, run_noise_multiplier
    from federation.proposal import MAX_PLANNED_STEPS
    from federation.units import steps_per_round

    p = proposal.privacy
    cap = policy.privacy.epsilon_lifetime
    if p.target_epsilon > cap:
        raise RuleRefusal("privacy.target_epsilon", f"epsilon {p.target_epsilon:g} for one run is beyond this node's "
                          f"lifetime cap ({cap:g}): no such run can be approved here", where=WHERE)
    for name in ("loss_noise_multiplier", "eval_noise_multiplier"):
        value = getattr(p, name)
        if value:
            policy.check_noise_multiplier(value)
            if value > MAX_NOISE_MULTIPLIER:
                raise RuleRefusal(f"privacy.{name}", f"{value:g} is beyond any useful noise multiplier (at most "
                                  f"{MAX_NOISE_MULTIPLIER:g}): an absurd value, refused", where=WHERE)
    if p.mechanism == "gaussian":
        stated = {"sample_rate": p.sample_rate, "steps_per_round": p.steps_per_round, "rounds": p.rounds}
        for name, value in stated.items():
            if value != 1:
                raise RuleRefusal(f"privacy.{name}", f"the proposal states {value:g}, but a {proposal.run_kind} run "
                                  "makes one Gaussian release per private table (sample rate 1, one step, one "
                                  "round)", where=WHERE)
        q, steps = 1.0, 1
    else:
        if p.local_epochs is None:
            raise RuleRefusal("privacy.local_epochs", "a DP-SGD proposal must state its local epochs: the node "
                              "computes its steps per round from them", where=WHERE)
        q = p.sample_rate
        ratio = p.local_epochs / q
        if not math.isfinite(ratio) or math.ceil(ratio) * p.rounds > MAX_PLANNED_STEPS:
            raise RuleRefusal("privacy.local_epochs", f"{p.local_epochs:g} local epochs at sample rate {q:g} over "
                              f"{p.rounds} rounds plan {ratio * p.rounds:.3g} DP steps; a node accounts for at most "
                              f"{MAX_PLANNED_STEPS:,} in one run", where=WHERE)
        steps = steps_per_round(q, p.local_epochs)
        if steps != p.steps_per_round:
            raise RuleRefusal("privacy.steps_per_round", f"the proposal states {p.steps_per_round}, but the node "
                              f"runs ceil(local epochs {p.local_epochs:g} / sample rate {q:g}) = {steps} steps per "
                              "round: the stated schedule is not what the run will do", where=WHERE)
    gaussian = p.mechanism == "gaussian"
    rounds = 1 if gaussian else p.rounds
    total = steps * rounds
    # A DP-SGD run's target covers its noised losses and held-out sums too (`run_noise_multiplier`), as the node's
    # training calibrates it (`clients.horizontal.train`); a Gaussian release run has none of them.
    try:
        held_out = int(proposal.federation.get("holdout_fold", -1)) >= 0
    except (TypeError, ValueError):
        raise RuleRefusal("federation.holdout_fold", f"{proposal.federation.get('holdout_fold')!r} is not a fold "
                          "number (-1: no areas held out)", where=WHERE) from None
    loss = 0.0 if gaussian else p.loss_noise_multiplier
    heldout = p.eval_noise_multiplier if not gaussian and held_out else 0.0
    delta, accountant = min(p.delta, policy.privacy.delta), policy.privacy.accountant
    try:
        # as the coordinator calibrated it (its delta, the default accountant), and as this node will
        expected = run_noise_multiplier(p.target_epsilon, p.delta, q, steps, rounds, loss, heldout)
        sigma = (expected if (delta, accountant) == (p.delta, "prv")
                 else run_noise_multiplier(p.target_epsilon, delta, q, steps, rounds, loss, heldout, accountant))
    except ConfigError as err:
        raise RuleRefusal("privacy.target_epsilon", f"epsilon {p.target_epsilon:g} at delta {delta:g} over {total:,} "
                          f"step(s) at sample rate {q:g} cannot be calibrated: {err}", where=WHERE) from None
    if not math.isclose(p.noise_multiplier, expected, rel_tol=1e-6):
        extras = "".join((f", with its noised loss (noise {loss:g})" if loss else "",
                          f", with its held-out sums (noise {heldout:g})" if heldout else ""))
        raise RuleRefusal("privacy.noise_multiplier", f"the proposal states {p.noise_multiplier:g}, but epsilon "
                          f"{p.target_epsilon:g} at delta {p.delta:g} over {total:,} step(s) at sample rate {q:g}{extras} "
                          f"calibrates to {expected:.4g}, and that is what the node will run (it calibrates from the "
                          "target): the stated schedule is not what the run will do", where=WHERE)
    policy.check_noise_multiplier(sigma)
    return NodeSchedule(sigma, q, steps, p.rounds, delta, accountant)


def planned_for_node(policy: SitePolicy, proposal: RunProposal, node_dir: Path,
                     rows: int | None) -> tuple[list[Any], str | None]:
    """What the run would charge to this node's ledger, recomputed as the node will run it (`node_schedule`), and,
    for a node too small for DP-SGD at the proposed privacy, the one message that says so.

    A DP-SGD node charges its rounds' updates (and loss and held-out sums when asked); a vertical run, and a node
    too small for DP-SGD, charges one Gaussian release per private table at the run's epsilon per unit (and, for
    the latter, the held-out sums if asked). Tables already released on the same data are re-used at no charge by
    the run; the projection counts them as charged (an upper bound, exact when nothing is kept)."""
    from dp_accounting import Release, noise_multiplier
    from federation import heldout
    from federation.units import too_small_text

    p = proposal.privacy
    schedule = node_schedule(policy, proposal)
    if p.mechanism != "gaussian" and (rows is None or p.min_rows is None or rows >= p.min_rows):
        run = replace(proposal, privacy=replace(p, noise_multiplier=schedule.noise_multiplier))
        return run.planned_releases(), None
    note = None
    sigma = schedule.noise_multiplier
    if p.mechanism != "gaussian":
        note = too_small_text(policy.partner, rows, p.min_rows, p.sample_rate)
        sigma = noise_multiplier(p.target_epsilon, schedule.delta, 1.0, 1, schedule.accountant)
    # named as the release step names them (`clients.release.unit_text`)
    planned = [Release(mechanism="gaussian", noise_multiplier=sigma, sample_rate=1.0, steps=1,
                       unit=f"{TablePrivacy(unit=unit).describe()}, table {table}", run_id=proposal.run_name, round=0,
                       kind="dp-aggregate", table=table)
               for table, unit in table_units(node_dir).items() if not TablePrivacy(unit=unit).is_public]
    if note is not None and p.eval_noise_multiplier:
        planned += [heldout.release(p.eval_noise_multiplier, proposal.run_name, r) for r in range(1, p.rounds + 1)]
    return planned, note


def record_approval(node_dir: Path, proposal: RunProposal, policy: SitePolicy, by: str,
                    projection: Any = None, note: str | None = None) -> dict[str, Any]:
    """Append the approval of `proposal` (the whole proposal, so the executor can compare every parameter)."""
    record: dict[str, Any] = {
        "approved_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "by": by,
        "run_name": proposal.run_name,
        "run_kind": proposal.run_kind,
        "bundle_hash": proposal.bundle_hash,
        "proposal_sha256": proposal.sha256(),
        "proposal": proposal.to_dict(),
        "policy_version": policy.policy_version,
        "delta": policy.privacy.delta,
        "accountant": policy.privacy.accountant,
    }
    if note is not None:
        record["takes_part_by"] = "person-level DP release"
        record["note"] = note
    if projection is not None:
        record["projected_epsilon_lifetime"] = projection.epsilon_lifetime
        record["projected_epsilon_year"] = projection.epsilon_year
    append_approval(node_dir, record)
    return record


def approved_proposal(node_dir: Path, sha256: str) -> RunProposal | None:
    """The proposal this node approved under `sha256`, or None."""
    for record in reversed(read_approvals(node_dir)):
        if record.get("proposal_sha256") != sha256 or not isinstance(record.get("proposal"), dict):
            continue
        proposal = RunProposal.from_dict(record["proposal"], f"{node_dir}/state/approvals.jsonl")
        if proposal.sha256() == sha256:
            return proposal
    return None


def admit_run(node_dir: Path, run_config: Mapping[str, Any], fab: bytes, bundle_hash: str | None = None) -> RunProposal:
    """The approved proposal this run executes, or a RuleRefusal; `bundle_hash` if already computed."""
    node_dir = Path(node_dir)
    policy = load_site_policy(node_dir)
    name = str(run_config.get("run-name", "") or "(unnamed)")
    sha = str(run_config.get(PROPOSAL_KEY, "") or "")
    proposal = approved_proposal(node_dir, sha) if sha else None
    if proposal is None:
        named = f"names proposal {sha[:12]}..., which" if sha else "names no proposal, so it"
        raise RuleRefusal("approvals", f"run '{name}' {named} is not approved on this node (the site approves "
                          "each run's proposal with `pulse-twin node approve`)", where=WHERE)
    shipped = bundle_hash or fab_code_hash(fab)
    if shipped != proposal.bundle_hash:
        raise RuleRefusal("approved_bundles", f"run '{name}' ships code bundle {shipped[:12]}..., but its approved "
                          f"proposal is for bundle {proposal.bundle_hash[:12]}...: a different code; nothing of "
                          "it runs here", where=WHERE)
    installed = running_code_hash()
    if shipped != installed:
        raise RuleRefusal("installed_code", f"run '{name}' is approved for code {shipped[:12]}..., but this node "
                          f"runs its own installed PULSE-TWIN, code {installed[:12]}...; install the approved "
                          "version on the node to take part", where=WHERE)
    check_proposal(policy, proposal, node_dir)
    return proposal


def admit_message(proposal: RunProposal, message_type: str, config: Mapping[str, Any]) -> None:
    """Every bound parameter of one message equals the approved proposal's; raises RuleRefusal."""
    kinds, required = MESSAGES.get(message_type, ((), ()))
    if not kinds:
        raise RuleRefusal("message.kind", f"message type '{message_type}' is none this node answers "
                          f"({', '.join(MESSAGES)})", where=WHERE)
    if proposal.run_kind not in kinds:
        raise RuleRefusal("run_kind", f"a '{message_type}' message belongs to a {' or '.join(kinds)} run, but the "
                          f"approved proposal is for a {proposal.run_kind} run", where=WHERE)
    approved = {**{k: v for k, v in vars(proposal.privacy).items()}, "run_name": proposal.run_name,
                "run_kind": proposal.run_kind}
    for key in required:
        if key not in config:
            raise RuleRefusal(BOUND[key], f"the '{message_type}' message does not state '{key}'; the approved "
                              f"proposal binds it to {approved[BOUND[key]]!r}", where=WHERE)
    for key, field in BOUND.items():
        if key in config and not _same(config[key], approved[field]):
            raise RuleRefusal(field, f"the '{message_type}' message asks {key} = {config[key]!r}, but the "
                              f"approved proposal says {approved[field]!r}: a run with other privacy "
                              "parameters needs its own approval", where=WHERE)
    _check_blocks(proposal, message_type, config)
    _check_holdout(proposal, message_type, config)
    if "server-round" in config:
        rnd = config["server-round"]
        if isinstance(rnd, bool) or not isinstance(rnd, int) or not 1 <= rnd <= proposal.privacy.rounds:
            raise RuleRefusal("rounds", f"round {rnd!r} is not one of the approved {proposal.privacy.rounds} "
                              "rounds", where=WHERE)


def _check_holdout(proposal: RunProposal, message_type: str, config: Mapping[str, Any]) -> None:
    """A training message holds out the approved fold: whether areas are held out decides what the run's target
    covers (`node_schedule`), so the node's calibration at training must be the approved one."""
    if message_type != "train" or "holdout_fold" not in proposal.federation:
        return
    approved, asked = proposal.federation["holdout_fold"], config.get("holdout-fold", -1)
    if not _same(asked, approved):
        raise RuleRefusal("federation.holdout_fold", f"the 'train' message asks holdout-fold = {asked!r}, but the "
                          f"approved proposal says {approved!r}: a run with other privacy parameters needs its own "
                          "approval", where=WHERE)


def _check_blocks(proposal: RunProposal, message_type: str, config: Mapping[str, Any]) -> None:
    """A training message names only approved blocks, and carries their schemas with the approved hashes."""
    if message_type != "train":
        return
    named = [b for b in str(config.get("blocks", "")).split(",") if b]
    for name in named:
        if name not in proposal.block_schemas:
            raise RuleRefusal("block_schemas", f"the 'train' message names block '{name}', which the approved "
                              f"proposal does not ({', '.join(proposal.block_schemas) or 'none'})", where=WHERE)
    try:
        sent = schemas_from_json(str(config.get("block-schemas", "") or ""), "the 'train' message's block-schemas")
    except ConfigError as err:
        raise RuleRefusal("block_schemas", str(err), where=WHERE) from None
    for name, schema in sent.items():
        if proposal.block_schemas.get(name) != schema.sha256:
            raise RuleRefusal("block_schemas", f"the 'train' message carries a schema of block '{name}' with hash "
                              f"{schema.sha256[:12]}..., not the approved one", where=WHERE)


def _same(given: Any, approved: Any) -> bool:
    if approved is None:
        return False
    if isinstance(approved, bool) or isinstance(given, bool):
        return isinstance(given, bool) and isinstance(approved, bool) and given == approved
    if isinstance(approved, str) or isinstance(given, str):
        return str(given) == str(approved)
    if isinstance(given, bool) or not isinstance(given, (int, float)):
        return False
    return math.isclose(float(given), float(approved), rel_tol=1e-12, abs_tol=0.0)


def refusal_reason(err: PolicyRefusal) -> str:
    """The text an error reply carries for a refusal (as the ClientApp's own refusals read)."""
    return f"{type(err).__name__}: {err}"
