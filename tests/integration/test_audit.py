"""`pulse-twin node audit`: lists every release with what it cost (recomputed from the ledger), and
detects every way of tampering with the egress log, naming the record or line."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from dp_accounting import PrivacyLedger, Release, get_accountant, ledger_path
from federation.config import configs_dir
from clients.egress import Egress, EgressGuard, LogTampered
from clients.egress.audit import format_audit, run_audit
from clients.egress.log import GENESIS, record_hash
from federation.errors import PolicyRefusal
from tests.support.egress_fixtures import FIELDS as PAYLOAD_FIELDS, error_digest

BUNDLE = "c0de" * 16


def make_node(tmp_path: Path, accountant: str = "rdp") -> Path:
    node_dir = tmp_path / "node"
    data = yaml.safe_load((configs_dir() / "site_policy" / "default.yaml").read_text())
    data.update(partner="municipality", approved_bundles=[BUNDLE])
    data["privacy"]["accountant"] = accountant
    node_dir.mkdir()
    (node_dir / "site_policy.yaml").write_text(yaml.safe_dump(data))
    return node_dir


def charge(run_id: str, round: int, noise: float = 1.0, steps: int = 40) -> Release:
    return Release(noise_multiplier=noise, sample_rate=0.02, steps=steps, run_id=run_id, round=round,
                   kind="horizontal-update")


def populate(node_dir: Path) -> None:
    """Run h1: three DP updates and one refused attempt; run v1: PSI, DP embeddings and an error reply."""
    guard = EgressGuard.open(node_dir)
    for r in (1, 2, 3):
        guard.release(Egress("h1", r, "dp-model-update", "horizontal", f"{r:064x}", 1000 * r, [charge("h1", r)],
                             rows=400, bundle_hash=BUNDLE, fields=PAYLOAD_FIELDS["dp-model-update"]))
    with pytest.raises(PolicyRefusal):
        guard.release(Egress("h1", 4, "dp-model-update", "horizontal", f"{4:064x}", 1000, [charge("h1", 4, noise=0.1)],
                             rows=400, bundle_hash=BUNDLE, fields=PAYLOAD_FIELDS["dp-model-update"]))
    guard.release(Egress("v1", 0, "psi", "vertical", "e" * 64, 5000, rows=57, bundle_hash=BUNDLE,
                         facts={"revealed_set_size": 57}, fields=PAYLOAD_FIELDS["psi"]))
    guard.release(Egress("v1", 1, "dp-aggregate", "vertical", "f" * 64, 800, [charge("v1", 1, steps=10)],
                         rows=57, bundle_hash=BUNDLE, fields=PAYLOAD_FIELDS["dp-aggregate"]))
    guard.release(Egress("v1", 2, "error", "vertical", error_digest(), 60, params={"rule": "site_policy"},
                         fields=PAYLOAD_FIELDS["error"]))
    guard.ledger.close()


@pytest.fixture(scope="module")
def populated(tmp_path_factory) -> Path:
    node_dir = make_node(tmp_path_factory.mktemp("template"))
    populate(node_dir)
    return node_dir


@pytest.fixture
def node(populated: Path, tmp_path: Path) -> Path:
    """A fresh copy of the populated node for each test, to tamper with."""
    return Path(shutil.copytree(populated, tmp_path / "node"))


def lines(node_dir: Path) -> list[str]:
    return (node_dir / "state" / "egress.jsonl").read_text().splitlines()


def write_lines(node_dir: Path, new: list[str]) -> None:
    (node_dir / "state" / "egress.jsonl").write_text("".join(line + "\n" for line in new))


def rechain(node_dir: Path, records: list[dict]) -> None:
    """What a forger who knows the format does: renumber, recompute every hash, rewrite the head."""
    prev = GENESIS
    for seq, record in enumerate(records):
        record["seq"], record["prev_hash"] = seq, prev
        record["hash"] = prev = record_hash(record)
    write_lines(node_dir, [json.dumps(r, sort_keys=True) for r in records])
    (node_dir / "state" / "egress.head").write_text(json.dumps({"count": len(records), "hash": prev}))


def history(node_dir: Path) -> list[Release]:
    with PrivacyLedger(ledger_path(node_dir)) as ledger:
        return ledger.history()


def test_audit_lists_every_release_and_recomputes_epsilon_from_the_ledger(node: Path):
    report = run_audit(node)
    assert report["records"] == 7 and report["chain"] == "intact"
    assert report["ledger"] == {"releases_in_log": 4, "releases_in_ledger": 4}
    rdp = get_accountant("rdp")
    ledger = history(node)
    assert report["epsilon"]["lifetime"] == pytest.approx(rdp.epsilon(ledger, 1e-5))
    h1, v1 = report["runs"]
    assert (h1["run_id"], len(h1["released"]), len(h1["refused"])) == ("h1", 3, 1)
    assert h1["epsilon_after_run"] == pytest.approx(rdp.epsilon(ledger[:3], 1e-5))
    # The charges are increases of the node's total, so they add up to it.
    assert h1["epsilon_charged"] + v1["epsilon_charged"] == pytest.approx(report["epsilon"]["lifetime"])
    assert [(g["round"], g["kind"], g["messages"], g["refused"]) for g in h1["groups"]] == [
        (1, "dp-model-update", 1, 0), (2, "dp-model-update", 1, 0), (3, "dp-model-update", 1, 0),
        (4, "dp-model-update", 0, 1)]
    assert [g["kind"] for g in v1["groups"]] == ["psi", "dp-aggregate", "error"]
    assert v1["bytes"] == 5000 + 800 + 60

    text = format_audit(run_audit(node, run="h1"))
    for record in h1["released"]:
        assert f"#{record['seq']} " in text and record["payload_sha256"][:16] in text
    assert "bounds.min_noise_multiplier" in text and "Refused" in text
    assert "delta 1e-05" in text and "area-period row" in text and "rdp" in text
    assert "Run 'v1'" not in text and "e" * 16 not in text
    v1_text = format_audit(run_audit(node, run="v1"))
    assert "revealed_set_size = 57" in v1_text and "e" * 16 in v1_text and "Run 'h1'" not in v1_text
    # a unit text that already says "one ..." (a record-unit table's) is not doubled
    report = run_audit(node)
    report["epsilon"]["unit"] = "one record (the export has no person link)"
    assert "(unit: one record (the export" in format_audit(report) and "one one" not in format_audit(report)


def test_audit_with_prv_matches_the_guards_recorded_epsilon(tmp_path: Path):
    node_dir = make_node(tmp_path, accountant="prv")
    guard = EgressGuard.open(node_dir)
    records = [guard.release(Egress("p1", r, "dp-model-update", "horizontal", f"{r:064x}", 10, [charge("p1", r)],
                                    rows=100, bundle_hash=BUNDLE, fields=PAYLOAD_FIELDS["dp-model-update"])) for r in (1, 2)]
    report = run_audit(node_dir)
    assert report["epsilon"]["accountant"] == "prv"
    assert report["runs"][0]["epsilon_after_run"] == pytest.approx(records[-1]["epsilon_cumulative"], rel=1e-9)
    assert report["epsilon"]["lifetime"] == pytest.approx(get_accountant("prv").epsilon(history(node_dir), 1e-5))


def test_an_empty_node_audits_clean(tmp_path: Path):
    report = run_audit(make_node(tmp_path))
    assert report["records"] == 0 and report["runs"] == [] and report["epsilon"]["lifetime"] == 0.0
    assert "nothing has left this node" in format_audit(report)


FIELDS = ["seq", "time", "status", "run_id", "round", "kind", "run_kind", "payload_sha256", "bytes", "rows",
          "bundle_hash", "params", "releases", "facts", "fields", "epsilon_charged", "epsilon_cumulative", "epsilon_year",
          "delta", "accountant", "unit", "rule", "reason", "policy_version", "ledger_count", "ledger_digest",
          "prev_hash", "hash"]


def _altered(value: object) -> object:
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return value + 1
    if isinstance(value, str):
        return value[:-1] + ("0" if value[-1] != "0" else "1")
    if isinstance(value, list):
        return value[:-1] if value else [1]
    if isinstance(value, dict):
        return {**value, "x": 1}
    return "forged"


@pytest.mark.parametrize("field", FIELDS)
def test_editing_any_field_of_a_record_is_detected_at_its_line(node: Path, field: str):
    records = [json.loads(line) for line in lines(node)]
    assert set(FIELDS) == set(records[2])
    records[2][field] = _altered(records[2][field])
    write_lines(node, [json.dumps(r, sort_keys=True) for r in records])
    with pytest.raises(LogTampered, match=r"line 3 \(record #"):
        run_audit(node)


def test_editing_and_rehashing_a_record_breaks_the_chain_at_the_next_line(node: Path):
    records = [json.loads(line) for line in lines(node)]
    records[1]["bytes"] = 10
    records[1]["hash"] = record_hash(records[1])
    write_lines(node, [json.dumps(r, sort_keys=True) for r in records])
    with pytest.raises(LogTampered, match=r"line 3 \(record #2\): does not chain to the record before it: line 2"):
        run_audit(node)


def test_editing_and_rehashing_the_last_record_is_caught_by_the_head(node: Path):
    records = [json.loads(line) for line in lines(node)]
    records[-1]["bytes"] = 1
    records[-1]["hash"] = record_hash(records[-1])
    write_lines(node, [json.dumps(r, sort_keys=True) for r in records])
    with pytest.raises(LogTampered, match="the last record was replaced"):
        run_audit(node)


def test_deleting_a_middle_record_is_detected(node: Path):
    current = lines(node)
    write_lines(node, current[:2] + current[3:])
    with pytest.raises(LogTampered, match=r"line 3: holds record #3 where record #2 belongs: record #2 is missing"):
        run_audit(node)


def test_deleting_the_last_record_is_caught_by_the_head(node: Path):
    write_lines(node, lines(node)[:-1])
    with pytest.raises(LogTampered, match=r"record #6 was deleted from the end of the log"):
        run_audit(node)


def test_deleting_a_charged_record_and_rewriting_the_chain_is_caught_by_the_ledger(node: Path):
    records = [json.loads(line) for line in lines(node)]
    del records[1]  # round 2 of run h1, a charged DP update
    rechain(node, records)
    with pytest.raises(LogTampered, match=r"ledger holds a release \(run h1, round 2.*that no record of the egress log"):
        run_audit(node)


def test_reordering_records_is_detected(node: Path):
    current = lines(node)
    current[1], current[2] = current[2], current[1]
    write_lines(node, current)
    with pytest.raises(LogTampered, match=r"line 2: holds record #2 where record #1 belongs: record #1 is at line 3: records were reordered"):
        run_audit(node)


def test_inserting_a_forged_record_is_detected(node: Path):
    records = [json.loads(line) for line in lines(node)]
    forged = {**records[1], "payload_sha256": "9" * 64, "prev_hash": records[1]["hash"], "seq": 2}
    forged["hash"] = record_hash(forged)
    current = lines(node)
    write_lines(node, current[:2] + [json.dumps(forged)] + current[2:])
    with pytest.raises(LogTampered, match=r"line 4: holds record #2 where record #3 belongs: record #2 also appears at line 3: a record was inserted"):
        run_audit(node)


def test_a_forged_charge_with_a_rewritten_chain_is_caught_by_the_ledger(node: Path):
    records = [json.loads(line) for line in lines(node)]
    forged = json.loads(json.dumps(records[0]))
    forged["releases"][0]["round"] = 9
    forged["round"] = 9
    rechain(node, records + [forged])
    with pytest.raises(LogTampered, match=r"line 8 \(record #7\): charges a release \(run h1, round 9.*not in the privacy ledger"):
        run_audit(node)


def test_a_rewritten_epsilon_is_caught_by_recomputing_from_the_ledger(node: Path):
    records = [json.loads(line) for line in lines(node)]
    records[2]["epsilon_cumulative"] = records[2]["epsilon_cumulative"] / 2
    rechain(node, records)
    with pytest.raises(LogTampered, match=r"line 3 \(record #2\): states cumulative epsilon .* ledger's releases up to it give"):
        run_audit(node)


def test_a_release_recorded_behind_the_guards_back_is_detected(node: Path):
    with PrivacyLedger(ledger_path(node)) as ledger:
        ledger.record(charge("side", 1))
    with pytest.raises(LogTampered, match=r"run side, round 1.*without passing the egress guard"):
        run_audit(node)


def test_a_missing_head_is_detected(node: Path):
    (node / "state" / "egress.head").unlink()
    with pytest.raises(LogTampered, match="egress.head: missing"):
        run_audit(node)


def test_a_run_is_found_by_the_name_the_lab_gave_it(tmp_path: Path):
    node_dir = make_node(tmp_path)
    guard = EgressGuard.open(node_dir)
    guard.release(Egress("eps20#3f2a9c1b7d4e", 1, "dp-model-update", "horizontal", "1" * 64, 10, [charge("eps20#3f2a9c1b7d4e", 1)],
                         rows=100, bundle_hash=BUNDLE, fields=PAYLOAD_FIELDS["dp-model-update"]))
    guard.release(Egress("eps3#0a0a0a0a0a0a", 1, "dp-model-update", "horizontal", "2" * 64, 10, [charge("eps3#0a0a0a0a0a0a", 1)],
                         rows=100, bundle_hash=BUNDLE, fields=PAYLOAD_FIELDS["dp-model-update"]))
    guard.ledger.close()
    assert [r["run_id"] for r in run_audit(node_dir, run="eps20")["runs"]] == ["eps20#3f2a9c1b7d4e"]
    assert [r["run_id"] for r in run_audit(node_dir, run="eps3#0a0a0a0a0a0a")["runs"]] == ["eps3#0a0a0a0a0a0a"]
    assert run_audit(node_dir, run="eps2")["runs"] == []
