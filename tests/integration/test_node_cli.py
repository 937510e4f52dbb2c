"""`pulse-twin node init|audit|policy`: onboarding a node with no code, auditing it from the CLI."""
from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
import yaml

import federation.cli
from dp_accounting import Release
from federation.config import configs_dir
from clients.egress import Egress, EgressGuard
from clients.site_policy import append_approval, load_site_policy
from tests.support.egress_fixtures import FIELDS, error_digest

BUNDLE = "c0de" * 16


@pytest.fixture
def pulse_twin(monkeypatch, capsys):
    """Run `pulse-twin ARGS...` in-process; returns (exit code, stdout, stderr)."""
    monkeypatch.setattr(federation.cli, "COMMANDS", ("node", "pki"))

    def run(*argv: str) -> tuple[int, str, str]:
        code = federation.cli.main(list(argv))
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


def test_node_init_creates_layout_keys_policy_and_contract(tmp_path, pulse_twin):
    node_dir = tmp_path / "nodes" / "police"
    code, out, _ = pulse_twin("node", "init", "--partner", "police", "--node-dir", str(node_dir))
    assert code == 0
    for name in ("public", "raw", "features", "state", "keys"):
        assert (node_dir / name).is_dir()
    assert stat.S_IMODE((node_dir / "keys" / "node.key").stat().st_mode) == 0o600
    assert (node_dir / "keys" / "node.pub").read_text().startswith("ecdsa-sha2-nistp384 ")
    policy = load_site_policy(node_dir)
    template = (configs_dir() / "site_policy" / "police.yaml").read_text()
    assert policy.partner == "police"
    assert (node_dir / "site_policy.yaml").read_text() == template  # the police template, comments kept
    assert (node_dir / "contract.yaml").is_file()
    contract_source = configs_dir() / "contract" / "police.yaml"
    if contract_source.is_file():
        assert (node_dir / "contract.yaml").read_text() == contract_source.read_text()
    assert "keys/node.pub" in out and "pulse-twin features" in out and "coordinator" in out


def test_a_transfer_city_without_its_own_template_gets_the_default_with_its_name(tmp_path, pulse_twin):
    node_dir = tmp_path / "rotterdam"
    code, out, _ = pulse_twin("node", "init", "--partner", "rotterdam", "--node-dir", str(node_dir))
    assert code == 0 and "default.yaml" in out
    policy_text = (node_dir / "site_policy.yaml").read_text()
    assert "partner: rotterdam" in policy_text and "# The partner (node) name" in policy_text
    assert load_site_policy(node_dir).partner == "rotterdam"
    contract = (node_dir / "contract.yaml").read_text()
    assert contract.startswith("# PULSE-TWIN data contract for node 'rotterdam'")
    blank = yaml.safe_load(contract)
    assert blank["name"] == "rotterdam"
    # the blank says what the rules require: a declared window, never the records' dates
    assert {"start", "end", "from"} <= set(blank["periods"]) and "never taken" in contract
    assert "public/areas.csv" in out.split("Next steps:")[1]


def test_node_init_keeps_existing_data_and_refuses_an_existing_node(tmp_path, pulse_twin):
    node_dir = tmp_path / "genk"
    (node_dir / "raw").mkdir(parents=True)
    (node_dir / "raw" / "records.csv").write_text("kept\n")
    assert pulse_twin("node", "init", "--partner", "genk", "--node-dir", str(node_dir))[0] == 0
    assert (node_dir / "raw" / "records.csv").read_text() == "kept\n"
    assert load_site_policy(node_dir).allowed_run_kinds == ("horizontal", "analytics")
    key = (node_dir / "keys" / "node.key").read_bytes()
    policy = (node_dir / "site_policy.yaml").read_bytes()
    code, _, err = pulse_twin("node", "init", "--partner", "genk", "--node-dir", str(node_dir))
    assert code == 2 and "already a node" in err and "Traceback" not in err
    assert (node_dir / "keys" / "node.key").read_bytes() == key
    assert (node_dir / "site_policy.yaml").read_bytes() == policy


def test_node_init_rejects_a_bad_partner_name(tmp_path, pulse_twin):
    code, _, err = pulse_twin("node", "init", "--partner", "Police Dept", "--node-dir", str(tmp_path / "x"))
    assert code == 2 and "--partner" in err
    assert not (tmp_path / "x").exists()


def _released_node(tmp_path: Path, pulse_twin) -> Path:
    node_dir = tmp_path / "municipality"
    assert pulse_twin("node", "init", "--partner", "municipality", "--node-dir", str(node_dir))[0] == 0
    append_approval(node_dir, {"bundle_hash": BUNDLE})
    guard = EgressGuard.open(node_dir)
    for r in (1, 2):
        charge = Release(noise_multiplier=1.2, sample_rate=0.02, steps=30, run_id="run-a", round=r, kind="vertical-embeddings")
        guard.release(Egress("run-a", r, "dp-aggregate", "vertical", f"{r:064x}", 4096, [charge], rows=200,
                             bundle_hash=BUNDLE, fields=FIELDS["dp-aggregate"]))
    return node_dir


def test_node_audit_prints_every_release_and_json(tmp_path, pulse_twin):
    node_dir = _released_node(tmp_path, pulse_twin)
    code, out, _ = pulse_twin("node", "audit", "--node-dir", str(node_dir), "--run", "run-a")
    assert code == 0
    assert "hash chain intact" in out and "#0 " in out and "#1 " in out and "Run 'run-a' (vertical)" in out
    code, out, _ = pulse_twin("node", "audit", "--node-dir", str(node_dir), "--json")
    report = json.loads(out)
    assert code == 0 and [e["seq"] for e in report["runs"][0]["released"]] == [0, 1]


def test_node_audit_exits_nonzero_naming_the_line_on_tampering(tmp_path, pulse_twin):
    node_dir = _released_node(tmp_path, pulse_twin)
    log = node_dir / "state" / "egress.jsonl"
    log.write_text(log.read_text().replace('"bytes":4096', '"bytes":40', 1))
    code, out, err = pulse_twin("node", "audit", "--node-dir", str(node_dir))
    assert code == 4 and out == ""
    assert "line 1 (record #0)" in err and "edited" in err and "Traceback" not in err


def test_node_policy_shows_rules_and_spend(tmp_path, pulse_twin):
    node_dir = _released_node(tmp_path, pulse_twin)
    code, out, _ = pulse_twin("node", "policy", "--node-dir", str(node_dir))
    assert code == 0
    assert "node 'municipality'" in out and "noise multiplier >= 0.5" in out and BUNDLE in out
    assert "2 releases in the ledger" in out
    code, out, _ = pulse_twin("node", "policy", "--node-dir", str(node_dir), "--json")
    data = json.loads(out)
    assert data["partner"] == "municipality" and data["spent"]["epsilon_lifetime"] > 0
