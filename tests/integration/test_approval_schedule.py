"""Approval from what the node will run: `node approve` recomputes the schedule (noise, steps, sample rate) from the
target and the node's own policy as the node does at run time, refuses a proposal whose stated fields differ and
absurd values in one line naming the field, and projects exactly what the run will charge (a vertical run: one
release per private table, not one per node)."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from clients.admission import node_schedule, planned_for_node, table_units
from clients.contracts import build_features, load_contract
from clients.contracts.output import write_features
from clients.release import DpRelease
from clients.site_policy import RuleRefusal, load_site_policy, read_approvals
from dp_accounting import get_accountant, noise_multiplier
from dp_accounting.calibrate import run_noise_multiplier
from federation.config import configs_dir
from federation.proposal import PrivacyPlan, RunProposal
from tests.integration.test_node_cli_approve import _approve, police, proposal, pulse_twin  # noqa: F401
from tests.support.contract_fixtures import HeerlenFixture, window


def horizontal(**privacy: object) -> RunProposal:
    """A DP-SGD proposal as the coordinator writes it: 20 steps per round (1 epoch at rate 0.05), 10 rounds."""
    plan = dict(target_epsilon=3.0, delta=1e-5, sample_rate=0.05, steps_per_round=20, rounds=10,
                unit="area-period row", local_epochs=1.0)
    plan.update(privacy)
    if "noise_multiplier" not in plan:
        plan["noise_multiplier"] = noise_multiplier(plan["target_epsilon"], plan["delta"], plan["sample_rate"],
                                                    plan["steps_per_round"] * plan["rounds"])
    return RunProposal("h1", "horizontal", "ab" * 32, PrivacyPlan(**plan))


@pytest.fixture(scope="module")
def policy(tmp_path_factory):
    node = tmp_path_factory.mktemp("default")
    data = yaml.safe_load((configs_dir() / "site_policy" / "default.yaml").read_text())
    (node / "site_policy.yaml").write_text(yaml.safe_dump(data))
    return load_site_policy(node)


def test_control_the_coordinators_own_schedule_is_what_the_node_runs(policy):
    p = horizontal()
    s = node_schedule(policy, p)
    assert (s.steps_per_round, s.sample_rate) == (20, 0.05)
    assert s.noise_multiplier == pytest.approx(p.privacy.noise_multiplier, rel=1e-9)


ABSURD = {
    # stated field(s): the field the one-line refusal names
    "noise 50 for epsilon 3": (dict(noise_multiplier=50.0), "privacy.noise_multiplier"),
    "1 step where the node runs 20": (dict(steps_per_round=1), "privacy.steps_per_round"),
    "target epsilon 1e308": (dict(target_epsilon=1e308, noise_multiplier=1.0), "privacy.target_epsilon"),
    "sample rate 1e-300": (dict(sample_rate=1e-300, noise_multiplier=1.0), "privacy.local_epochs"),
    "local epochs 1e308": (dict(local_epochs=1e308, noise_multiplier=1.0), "privacy.local_epochs"),
    "noise 1e308": (dict(noise_multiplier=1e308), "privacy.noise_multiplier"),
    "loss noise 1e308": (dict(loss_noise_multiplier=1e308), "privacy.loss_noise_multiplier"),
    "10^6 steps x 10 rounds": (dict(local_epochs=50_000.0, steps_per_round=1_000_000, noise_multiplier=1.0),
                               "privacy.target_epsilon"),
}


@pytest.mark.parametrize("case", list(ABSURD))
def test_a_stated_schedule_the_node_will_not_run_is_refused_in_one_line(policy, case: str):
    stated, field = ABSURD[case]
    with pytest.raises(RuleRefusal) as refused:
        node_schedule(policy, horizontal(**stated))
    text = str(refused.value)
    assert refused.value.rule == field and "\n" not in text and len(text) < 600
    if case == "10^6 steps x 10 rounds":
        assert "grid of" in text and "memory bound" in text   # refused before the accountant runs out of memory


def test_a_stated_noise_is_refused_by_node_approve_and_the_calibrated_one_approved(police: Path, pulse_twin):
    code, out, err = _approve(pulse_twin, police, proposal(noise_multiplier=50.0), "--yes")
    assert code == 3 and "'privacy.noise_multiplier'" in err and "calibrates to" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and read_approvals(police) == []
    code, out, _ = _approve(pulse_twin, police, proposal(), "--yes")   # control: the same run, its real noise
    assert code == 0 and len(read_approvals(police)) == 1


@pytest.fixture
def municipality(tmp_path: Path) -> Path:
    node = tmp_path / "municipality"
    node.mkdir()
    data = yaml.safe_load((configs_dir() / "site_policy" / "municipality.yaml").read_text()) \
        if (configs_dir() / "site_policy" / "municipality.yaml").is_file() else \
        yaml.safe_load((configs_dir() / "site_policy" / "default.yaml").read_text())
    data["partner"] = "municipality"
    (node / "site_policy.yaml").write_text(yaml.safe_dump(data))
    HeerlenFixture().write_municipality(node)
    write_features(build_features(load_contract("municipality", window("municipality")), node), node)
    return node


def test_a_vertical_approval_projects_exactly_what_the_release_charges(municipality: Path):
    policy = load_site_policy(municipality)
    p = proposal(unit="record")
    planned, note = planned_for_node(policy, p, municipality, None)
    private = [t for t, unit in table_units(municipality).items() if unit != "public"]
    assert note is None and len(private) >= 2
    # what the run's release step charges on this node (clients.vertical.release), computed on the same data
    dp = DpRelease(municipality, p.privacy.target_epsilon, min(p.privacy.delta, policy.privacy.delta), p.run_name,
                   accountant=policy.privacy.accountant, keep=False)
    build_features(load_contract("municipality", window("municipality")), municipality, release=dp)
    key = lambda r: (r.table, r.mechanism, r.noise_multiplier, r.sample_rate, r.steps, r.unit)  # noqa: E731
    assert sorted(map(key, planned)) == sorted(map(key, dp.charges))
    accountant, delta = get_accountant(policy.privacy.accountant), policy.privacy.delta
    projected = accountant.epsilon(planned, delta)
    assert projected == pytest.approx(accountant.epsilon(dp.charges, delta))
    # control: the old projection, one release per node, undercounts
    one = accountant.epsilon(replace(p, privacy=replace(p.privacy)).planned_releases(), delta)
    assert projected > one * 1.3


def test_the_budget_check_at_approval_counts_every_private_table(municipality: Path, pulse_twin):
    """Epsilon 6 per table passes a year cap of 10 for one release (the old projection, the control) but not for
    the municipality's private tables together: `node approve` refuses naming the cap."""
    policy = load_site_policy(municipality)
    p = proposal(unit="record", target_epsilon=6.0)
    accountant, delta = get_accountant(policy.privacy.accountant), policy.privacy.delta
    assert accountant.epsilon(p.planned_releases(), delta) < policy.privacy.epsilon_per_year   # control
    code, _, err = _approve(pulse_twin, municipality, p, "--yes")
    assert code == 3 and "'privacy.epsilon_per_year'" in err and "Traceback" not in err
    assert read_approvals(municipality) == []


@pytest.mark.parametrize("holdout", [-1, 0])
def test_the_coordinators_proposal_with_loss_and_held_out_noise_is_approved_as_the_node_trains(policy, holdout):
    """The run's target covers its noised losses and (with areas held out) its held-out sums: the coordinator's
    proposal, the node's approval and the node's training calibrate the same noise (`run_noise_multiplier`)."""
    from federation.config import compose, to_container
    from server.runs import proposal_for

    cfg = to_container(compose("config", ["federation=cities", "local.rounds=4", "dp.loss_noise_multiplier=3",
                                          "dp.eval_noise_multiplier=3", f"holdout_fold={holdout}"]))
    p = proposal_for(cfg, "h")
    q = p.privacy
    s = node_schedule(policy, p)
    assert s.noise_multiplier == pytest.approx(q.noise_multiplier, rel=1e-9)
    # what the node's training calibrates (clients.horizontal.train), with the node's own delta and accountant
    trains = run_noise_multiplier(q.target_epsilon, min(q.delta, policy.privacy.delta), q.sample_rate,
                                  q.steps_per_round, q.rounds, q.loss_noise_multiplier,
                                  q.eval_noise_multiplier if holdout >= 0 else 0.0, policy.privacy.accountant)
    assert s.noise_multiplier == pytest.approx(trains, rel=1e-12)
    # the extras are really covered: the noise differs from the updates-alone calibration, which is refused
    alone = noise_multiplier(q.target_epsilon, q.delta, q.sample_rate, q.steps_per_round * q.rounds)
    assert q.noise_multiplier > alone
    with pytest.raises(RuleRefusal) as refused:
        node_schedule(policy, replace(p, privacy=replace(q, noise_multiplier=alone)))
    assert refused.value.rule == "privacy.noise_multiplier" and "noised loss" in str(refused.value)
