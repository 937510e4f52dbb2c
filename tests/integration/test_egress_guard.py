"""The egress guard: every rule refuses what it should (naming the rule, charging nothing, logging the
attempt); allowed messages are charged to the ledger and logged with the epsilon the ledger computes."""
from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import pytest
import yaml

from dp_accounting import PrivacyLedger, Release, get_accountant, ledger_path
from federation.config import configs_dir
from clients.egress import Egress, EgressGuard, LogTampered
from federation.errors import BudgetExceeded, ConfigError, PolicyRefusal
from clients.site_policy import append_approval
from tests.support.egress_fixtures import FIELDS, error_digest

BUNDLE = "c0de" * 16
PAYLOAD = "ab" * 32


def make_node(tmp_path: Path, **changes: object) -> Path:
    """A node directory with the default policy (RDP accountant for speed) plus `section__field` changes."""
    node_dir = tmp_path / "node"
    data = yaml.safe_load((configs_dir() / "site_policy" / "default.yaml").read_text())
    data.update(partner="police", approved_bundles=[BUNDLE])
    data["privacy"]["accountant"] = "rdp"
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        target = data
        for part in parents:
            target = target[part]
        target[last] = value
    node_dir.mkdir()
    (node_dir / "site_policy.yaml").write_text(yaml.safe_dump(data))
    return node_dir


def release(run_id: str = "r1", round: int = 1, noise: float = 1.0, rate: float = 0.01, steps: int = 50) -> Release:
    return Release(noise_multiplier=noise, sample_rate=rate, steps=steps, unit="area-period row", run_id=run_id,
                   round=round, kind="horizontal-update")


def dp_update(round: int = 1, **overrides: object) -> Egress:
    fields = dict(run_id="r1", round=round, kind="dp-model-update", run_kind="horizontal", payload_sha256=PAYLOAD,
                  payload_bytes=2048, charges=[release(round=round)], rows=500, params={}, bundle_hash=BUNDLE)
    fields.update(overrides)
    fields.setdefault("fields", FIELDS.get(fields["kind"], ()))
    return Egress(**fields)


def log_records(node_dir: Path) -> list[dict]:
    path = node_dir / "state" / "egress.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def ledger_history(node_dir: Path) -> list[Release]:
    with PrivacyLedger(ledger_path(node_dir)) as ledger:
        return ledger.history()


def test_allowed_dp_update_is_charged_and_logged_with_the_ledgers_epsilon(tmp_path):
    node_dir = make_node(tmp_path)
    guard = EgressGuard.open(node_dir)
    first = guard.release(dp_update(1))
    second = guard.release(dp_update(2))
    history = ledger_history(node_dir)
    assert [(r.run_id, r.round, r.node) for r in history] == [("r1", 1, "police"), ("r1", 2, "police")]
    rdp = get_accountant("rdp")
    after_one, after_two = rdp.epsilon(history[:1], 1e-5), rdp.epsilon(history, 1e-5)
    assert first["epsilon_charged"] == pytest.approx(after_one) and first["epsilon_cumulative"] == pytest.approx(after_one)
    # Composition is sub-additive: the second charge is the increase, not the first release's epsilon again.
    assert second["epsilon_charged"] == pytest.approx(after_two - after_one)
    assert second["epsilon_charged"] < first["epsilon_charged"]
    assert second["epsilon_cumulative"] == pytest.approx(after_two)
    assert [r["status"] for r in log_records(node_dir)] == ["released", "released"]
    record = log_records(node_dir)[1]
    assert record["payload_sha256"] == PAYLOAD and record["bytes"] == 2048 and record["rows"] == 500
    assert record["delta"] == 1e-5 and record["accountant"] == "rdp" and record["unit"] == "area-period row"
    assert record["policy_version"] == guard.policy.policy_version
    assert record["prev_hash"] == log_records(node_dir)[0]["hash"]
    assert record["releases"][0]["noise_multiplier"] == 1.0 and record["releases"][0]["steps"] == 50


REFUSALS = [
    # (policy changes, egress overrides, rule)
    ({"allowed_run_kinds": ["vertical"]}, {}, "allowed_run_kinds"),
    ({"approved_bundles": []}, {}, "approved_bundles"),
    ({}, {"bundle_hash": None}, "approved_bundles"),
    ({}, {"charges": [release(noise=0.4)]}, "bounds.min_noise_multiplier"),
    ({}, {"params": {"noise_multiplier": 0.3}}, "bounds.min_noise_multiplier"),
    ({}, {"charges": [release(rate=0.2)]}, "bounds.max_sample_rate"),
    ({}, {"params": {"sample_rate": 0.5}}, "bounds.max_sample_rate"),
    ({"bounds__min_rows_per_release": 20}, {"rows": 19}, "bounds.min_rows_per_release"),
    ({}, {"rows": None}, "bounds.min_rows_per_release"),
    ({"bounds__max_rounds_per_run": 3}, {"round": 4, "charges": [release(round=4)]}, "bounds.max_rounds_per_run"),
    ({"bounds__max_rounds_per_run": 3}, {"params": {"rounds": 5}}, "bounds.max_rounds_per_run"),
    ({"bounds__max_bytes_per_message": 1000}, {}, "bounds.max_bytes_per_message"),
    ({}, {"kind": "raw-table"}, "message.kind"),
    ({}, {"charges": []}, "message.charges"),
    ({}, {"kind": "psi", "rows": 50}, "message.charges"),
    ({}, {"charges": [release(run_id="other")]}, "message.charges"),
]


@pytest.mark.parametrize(("changes", "overrides", "rule"), REFUSALS, ids=[f"{r[2]}-{i}" for i, r in enumerate(REFUSALS)])
def test_each_rule_refuses_charges_nothing_and_logs_the_attempt(tmp_path, changes, overrides, rule):
    node_dir = make_node(tmp_path, **changes)
    guard = EgressGuard.open(node_dir)
    with pytest.raises(PolicyRefusal) as err:
        guard.release(dp_update(**overrides))
    assert f"'{rule}'" in str(err.value)
    assert ledger_history(node_dir) == []
    [record] = log_records(node_dir)
    assert record["status"] == "refused" and record["rule"] == rule and record["reason"] == str(err.value)
    assert record["epsilon_charged"] == 0.0 and record["releases"] == []


def test_budget_exceeded_names_the_cap_charges_nothing_and_is_logged(tmp_path):
    node_dir = make_node(tmp_path, privacy__epsilon_per_year=2.0, privacy__epsilon_lifetime=3.0)
    guard = EgressGuard.open(node_dir)
    big = [release(steps=20000)]
    with pytest.raises(BudgetExceeded) as err:
        guard.release(dp_update(charges=big))
    assert "privacy.epsilon_per_year" in str(err.value)
    assert ledger_history(node_dir) == []
    [record] = log_records(node_dir)
    assert record["status"] == "refused" and record["rule"] == "privacy.epsilon_per_year"
    # A release that fits is still allowed afterwards.
    assert guard.release(dp_update())["status"] == "released"
    assert len(ledger_history(node_dir)) == 1


def test_unapproved_bundle_is_refused_until_the_node_approves_it(tmp_path):
    node_dir = make_node(tmp_path, approved_bundles=[])
    new_bundle = "be" * 32
    with pytest.raises(PolicyRefusal, match="approved_bundles"):
        EgressGuard.open(node_dir).release(dp_update(bundle_hash=new_bundle))
    append_approval(node_dir, {"bundle_hash": new_bundle, "run_name": "r1"})
    record = EgressGuard.open(node_dir).release(dp_update(bundle_hash=new_bundle))
    assert record["status"] == "released" and record["bundle_hash"] == new_bundle


def test_psi_message_charges_no_epsilon_but_records_the_disclosed_fact(tmp_path):
    node_dir = make_node(tmp_path, allowed_run_kinds=["vertical"])
    guard = EgressGuard.open(node_dir)
    record = guard.release(Egress("v1", 0, "psi", "vertical", PAYLOAD, 4096, rows=57, bundle_hash=BUNDLE,
                                  facts={"revealed_set_size": 57}, fields=FIELDS["psi"]))
    assert record["epsilon_charged"] == 0.0 and record["facts"] == {"revealed_set_size": 57}
    assert ledger_history(node_dir) == []
    with PrivacyLedger(ledger_path(node_dir)) as ledger:
        [fact] = ledger.facts()
    assert (fact.run_id, fact.kind, fact.value) == ("v1", "revealed_set_size", 57)


@pytest.mark.parametrize("kind", ["dp-aggregate"])
def test_every_dp_message_kind_is_charged(tmp_path, kind):
    node_dir = make_node(tmp_path, allowed_run_kinds=["vertical", "analytics"])
    run_kind = "analytics" if kind == "dp-aggregate" else "vertical"
    record = EgressGuard.open(node_dir).release(dp_update(kind=kind, run_kind=run_kind))
    assert record["kind"] == kind and record["epsilon_charged"] > 0
    assert len(ledger_history(node_dir)) == 1


def test_error_reply_may_always_say_why_but_carries_nothing(tmp_path):
    node_dir = make_node(tmp_path, approved_bundles=[], allowed_run_kinds=["vertical"],
                         bounds__max_bytes_per_message=500)
    guard = EgressGuard.open(node_dir)
    error = {"params": {"rule": "site_policy"}, "fields": FIELDS["error"]}
    record = guard.release(Egress("r1", 1, "error", "horizontal", error_digest(), 120, bundle_hash="ff" * 32, **error))
    assert record["status"] == "released"
    with pytest.raises(PolicyRefusal, match="max_bytes_per_message"):
        guard.release(Egress("r1", 1, "error", "horizontal", error_digest(), 501, **error))
    with pytest.raises(PolicyRefusal, match="message.kind"):
        guard.release(Egress("r1", 1, "error", "horizontal", error_digest(), 100, facts={"rows": 3}, **error))
    assert ledger_history(node_dir) == []


@pytest.mark.parametrize(
    ("overrides", "says"),
    [
        ({"payload_sha256": "xyz"}, "payload_sha256"),
        ({"params": {"rounds": "many"}}, "params['rounds']"),
        ({"facts": {"set_size": object()}}, "fact 'set_size'"),
        ({"charges": [{"noise_multiplier": 1.0}]}, "Release objects"),
    ],
)
def test_malformed_description_is_an_error_before_anything_is_charged_or_logged(tmp_path, overrides, says):
    node_dir = make_node(tmp_path)
    with pytest.raises(ConfigError) as err:
        EgressGuard.open(node_dir).release(dp_update(**overrides))
    assert says in str(err.value)
    assert log_records(node_dir) == [] and ledger_history(node_dir) == []


def test_a_bad_policy_file_closes_the_gate(tmp_path):
    node_dir = make_node(tmp_path)
    (node_dir / "site_policy.yaml").write_text("partner: police\n")
    with pytest.raises(ConfigError, match="site_policy.yaml"):
        EgressGuard.open(node_dir)


def test_a_truncated_log_blocks_further_releases(tmp_path):
    node_dir = make_node(tmp_path)
    guard = EgressGuard.open(node_dir)
    guard.release(dp_update(1))
    guard.release(dp_update(2))
    log = node_dir / "state" / "egress.jsonl"
    log.write_text(log.read_text().splitlines(keepends=True)[0])
    with pytest.raises(LogTampered, match=r"record #1 was deleted from the end of the log"):
        guard.release(dp_update(3))
    assert len(ledger_history(node_dir)) == 2


def test_an_interrupted_head_update_is_recovered_on_the_next_release(tmp_path):
    node_dir = make_node(tmp_path)
    guard = EgressGuard.open(node_dir)
    guard.release(dp_update(1))
    head = node_dir / "state" / "egress.head"
    old_head = head.read_text()
    guard.release(dp_update(2))
    head.write_text(old_head)  # as if the process died between writing record #1 and its head
    third = guard.release(dp_update(3))
    assert third["seq"] == 2 and third["prev_hash"] == log_records(node_dir)[1]["hash"]
    assert json.loads(head.read_text()) == {"count": 3, "hash": third["hash"]}


def _release_psi(node_dir: str, worker: int) -> None:
    guard = EgressGuard.open(Path(node_dir))
    for i in range(5):
        guard.release(Egress(f"w{worker}", i, "psi", "horizontal", PAYLOAD, 10, rows=30, bundle_hash=BUNDLE,
                             fields=FIELDS["psi"]))


def test_concurrent_processes_keep_one_unbroken_chain(tmp_path):
    from clients.egress import EgressLog

    node_dir = make_node(tmp_path)
    ctx = multiprocessing.get_context("fork")
    workers = [ctx.Process(target=_release_psi, args=(str(node_dir), w)) for w in range(3)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    assert [w.exitcode for w in workers] == [0, 0, 0]
    records = EgressLog(node_dir).verify()
    assert len(records) == 15 and [r["seq"] for r in records] == list(range(15))
