"""The egress log's head is signed with the node key: rewriting the whole log and its head consistently
(what the hash chain alone cannot catch) is detected by `node audit` and stops the guard; a planned key
rotation is re-signed after the old key verified."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from clients.egress import Egress, EgressGuard, LogTampered
from clients.egress.audit import format_audit, run_audit
from clients.egress.signing import fingerprint, sign_head
from federation.pki import create_node_keypair
from tests.integration.test_audit import BUNDLE, charge, lines, make_node, populate, rechain
from tests.support.egress_fixtures import FIELDS, error_digest


@pytest.fixture(scope="module")
def signed(tmp_path_factory) -> Path:
    node_dir = make_node(tmp_path_factory.mktemp("signed"))
    create_node_keypair(node_dir)
    populate(node_dir)
    return node_dir


@pytest.fixture
def node(signed: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(signed, tmp_path / "node"))


def head(node_dir: Path) -> dict:
    return json.loads((node_dir / "state" / "egress.head").read_text())


def rewrite_without_the_error_record(node_dir: Path) -> None:
    """A consistent rewrite: drop the last record (an uncharged error reply), rechain, new head, no checkpoint."""
    records = [json.loads(line) for line in lines(node_dir)]
    assert records[-1]["kind"] == "error" and not records[-1].get("releases")
    rechain(node_dir, records[:-1])
    (node_dir / "state" / "egress.checkpoint").unlink(missing_ok=True)


def other_key(tmp_path: Path) -> Path:
    create_node_keypair(tmp_path / "other")
    return tmp_path / "other"


def test_the_head_is_signed_by_the_node_key_and_the_audit_names_its_fingerprint(node: Path):
    report = run_audit(node)
    ssh = subprocess.run(["ssh-keygen", "-l", "-f", str(node / "keys" / "node.pub")], capture_output=True, text=True)
    assert ssh.returncode == 0, ssh.stderr
    assert report["head_signed_by"] == ssh.stdout.split()[1] == head(node)["signature"]["key"]
    assert f"Head signed with the node key {report['head_signed_by']}" in format_audit(report)


def test_a_consistent_rewrite_passes_the_chain_but_not_the_signature(node: Path, tmp_path: Path):
    unsigned = Path(shutil.copytree(node, tmp_path / "unsigned"))
    shutil.rmtree(unsigned / "keys")
    (unsigned / "state" / "egress.head").write_text(json.dumps({k: v for k, v in head(unsigned).items()
                                                                 if k != "signature"}))
    rewrite_without_the_error_record(unsigned)
    assert run_audit(unsigned)["records"] == 6   # without a key, the chain alone cannot tell
    rewrite_without_the_error_record(node)
    with pytest.raises(LogTampered, match=r"egress.head: the head is not signed, although the node has a key"):
        run_audit(node)


def forge_head(node_dir: Path, signer: Path) -> None:
    """Sign the node's current head with the key pair in `signer` (a forger's own key)."""
    content = head(node_dir)
    sig = sign_head(signer, content["count"], content["hash"])
    content["signature"] = {"key": sig.key, "value": sig.value}
    (node_dir / "state" / "egress.head").write_text(json.dumps(content))


def test_a_rewrite_signed_with_another_key_is_detected(node: Path, tmp_path: Path):
    rewrite_without_the_error_record(node)
    forge_head(node, other_key(tmp_path))
    with pytest.raises(LogTampered, match=r"signed by key SHA256:\S+, but the node's key .* is SHA256:"):
        run_audit(node)


def test_an_edited_signature_does_not_verify(node: Path):
    content = head(node)
    value = content["signature"]["value"]
    content["signature"]["value"] = value[:20] + ("A" if value[20] != "A" else "B") + value[21:]
    (node / "state" / "egress.head").write_text(json.dumps(content))
    with pytest.raises(LogTampered, match="its signature does not verify"):
        run_audit(node)


def test_replacing_the_node_keys_is_caught_with_the_labs_registered_copy(node: Path, tmp_path: Path):
    registered = tmp_path / "registered.pub"
    shutil.copy(node / "keys" / "node.pub", registered)
    rewrite_without_the_error_record(node)
    shutil.rmtree(node / "keys")
    create_node_keypair(node)            # the forger replaces the node's keys and re-signs
    forge_head(node, node)
    assert run_audit(node)["records"] == 6    # consistent with the node's (new) keys ...
    with pytest.raises(LogTampered, match="signed by key"):
        run_audit(node, public_key=registered)   # ... but not with the key the lab registered


def test_the_guard_refuses_to_release_on_a_rewritten_log(node: Path):
    rewrite_without_the_error_record(node)
    guard = EgressGuard.open(node)
    try:
        with pytest.raises(LogTampered, match="not signed"):
            guard.release(Egress("h2", 1, "dp-model-update", "horizontal", "a" * 64, 100, [charge("h2", 1)],
                                 rows=400, bundle_hash=BUNDLE, fields=FIELDS["dp-model-update"]))
    finally:
        guard.ledger.close()
    assert len(lines(node)) == 6    # nothing appended


def test_a_planned_rotation_is_resigned_after_the_old_key_verified(node: Path, tmp_path: Path):
    old = tmp_path / "old.pub"
    shutil.move(node / "keys" / "node.pub", old)
    (node / "keys" / "node.key").unlink()
    create_node_keypair(node)
    with pytest.raises(LogTampered, match="planned rotation"):
        run_audit(node)
    with pytest.raises(LogTampered):
        run_audit(node, resign=True)                # not without the old key
    report = run_audit(node, public_key=old, resign=True)
    assert report["resigned"] and report["head_signed_by"] != fingerprint(old)
    assert run_audit(node)["head_signed_by"] == report["head_signed_by"]


def test_cli_names_the_head_and_exits_4_without_a_traceback(node: Path):
    rewrite_without_the_error_record(node)
    out = subprocess.run([sys.executable, "-m", "federation.cli", "node", "audit", "--node-dir", str(node)],
                         capture_output=True, text=True)
    assert out.returncode == 4
    assert "egress.head: the head is not signed" in out.stderr and "Traceback" not in out.stderr
