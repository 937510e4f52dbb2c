"""The node's admission checks, without the engine: bundle hash from the bundle's bytes, the approved
proposal, and every privacy parameter of each message (PSI included)."""
import io
import zipfile
from pathlib import Path

import pytest

from clients.admission import admit_message, admit_run, check_proposal, record_approval
from federation.bundle import bundle_files, code_hash, fab_code_hash
from federation.config import APP_ROOT
from federation.errors import ConfigError, PolicyRefusal
from clients.site_policy import load_site_policy
from server.runs import proposal_for
from federation.config import compose, to_container
from tests.support.federation_fixtures import write_node, write_policy


def fab_of(root: Path, change: dict[str, bytes] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("pyproject.toml", (root / "pyproject.toml").read_bytes())
        for rel in bundle_files(root):
            archive.writestr(rel, (change or {}).get(rel, (root / rel).read_bytes()))
    return buffer.getvalue()


def test_the_code_hash_of_a_bundle_read_in_memory_is_the_repository_s():
    assert fab_code_hash(fab_of(APP_ROOT)) == code_hash(APP_ROOT)
    assert fab_code_hash(fab_of(APP_ROOT, {"clients/app.py": b"import os\n"})) != code_hash(APP_ROOT)
    with pytest.raises(ConfigError, match="not a readable app bundle"):
        fab_code_hash(b"not a zip")


def node(tmp_path: Path, topology: str = "horizontal"):
    node_dir = write_node(tmp_path / "genk", "BE-GNK:", ("context", "safety"))
    write_policy(node_dir, "genk", approve=False)
    fed = "federation=cities" if topology == "horizontal" else "federation=heerlen"
    cfg = to_container(compose("config", [fed, "local.rounds=3"]))
    proposal = proposal_for(cfg, "r1")
    return node_dir, proposal


def approve(node_dir, proposal):
    policy = load_site_policy(node_dir)
    check_proposal(policy, proposal, node_dir)
    record_approval(node_dir, proposal, policy, "test")


def test_a_run_is_admitted_only_under_an_approved_proposal_for_the_code_it_ships(tmp_path):
    node_dir, proposal = node(tmp_path)
    fab = fab_of(APP_ROOT)
    config = {"run-name": "r1", "proposal-sha256": proposal.sha256()}
    with pytest.raises(PolicyRefusal, match="'approvals'.*not approved"):
        admit_run(node_dir, config, fab)
    approve(node_dir, proposal)
    assert admit_run(node_dir, config, fab) == proposal
    with pytest.raises(PolicyRefusal, match="'approvals'.*names no proposal"):
        admit_run(node_dir, {"run-name": "r1"}, fab)
    with pytest.raises(PolicyRefusal, match="'approved_bundles'"):
        admit_run(node_dir, config, fab_of(APP_ROOT, {"clients/app.py": b"x = 1\n"}))


def test_every_bound_privacy_parameter_of_a_message_must_be_the_approved_one(tmp_path):
    _, proposal = node(tmp_path)
    p = proposal.privacy
    train = {"run-name": "r1", "target-epsilon": p.target_epsilon, "delta": p.delta, "num-rounds": p.rounds,
             "sample-rate": p.sample_rate, "local-epochs": p.local_epochs,
             "loss-noise-multiplier": p.loss_noise_multiplier, "min-rows": p.min_rows, "dry-run": False,
             "server-round": 1}
    admit_message(proposal, "train", train)
    for key, value, rule in (("target-epsilon", 20.0, "target_epsilon"), ("delta", 1e-3, "delta"),
                             ("num-rounds", 30, "rounds"), ("sample-rate", 0.2, "sample_rate"),
                             ("min-rows", 1, "min_rows"), ("dry-run", True, "dry_run"),
                             ("local-epochs", 9.0, "local_epochs"), ("server-round", 4, "rounds"),
                             ("run-name", "other", "run_name"),
                             # holding areas out changes what the target covers, so the node's calibration
                             ("holdout-fold", 0, "federation.holdout_fold")):
        with pytest.raises(PolicyRefusal, match=f"'{rule}'"):
            admit_message(proposal, "train", {**train, key: value})
    missing = {k: v for k, v in train.items() if k != "sample-rate"}
    with pytest.raises(PolicyRefusal, match="does not state 'sample-rate'"):   # the handler would default it
        admit_message(proposal, "train", missing)
    with pytest.raises(PolicyRefusal, match="'run_kind'"):
        admit_message(proposal, "query.psi", {"run-name": "r1", "run-kind": "vertical"})
    with pytest.raises(PolicyRefusal, match="'message.kind'"):
        admit_message(proposal, "query.unknown", {})
    # The held-out evaluation's noise is bound too: a coordinator cannot make the sums less noisy.
    evaluate = {"run-name": "r1", "eval-noise-multiplier": p.eval_noise_multiplier, "dry-run": False}
    admit_message(proposal, "evaluate", evaluate)
    with pytest.raises(PolicyRefusal, match="'eval_noise_multiplier'"):
        admit_message(proposal, "evaluate", {**evaluate, "eval-noise-multiplier": 0.1})


def test_psi_of_a_vertical_run_at_another_epsilon_is_refused_before_it_runs(tmp_path):
    _, proposal = node(tmp_path, "vertical")
    assert proposal.privacy.mechanism == "gaussian" and proposal.privacy.rounds == 1
    psi = {"run-name": "r1", "run-kind": "vertical", "target-epsilon": proposal.privacy.target_epsilon,
           "delta": proposal.privacy.delta}
    admit_message(proposal, "query.psi", psi)
    with pytest.raises(PolicyRefusal, match="'target_epsilon'.*20"):
        admit_message(proposal, "query.psi", {**psi, "target-epsilon": 20.0})
