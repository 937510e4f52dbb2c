"""The real SuperLink refuses a node whose key was not registered, and a node that speaks plain text."""
import subprocess
import time
from pathlib import Path

import pytest

from devtools.launcher import LocalEngine, NodeLaunch
from federation.pki import create_node_keypair
from tests.support.federation_fixtures import write_policy

pytestmark = pytest.mark.engine


def wait_exit(proc: subprocess.Popen, timeout: float) -> int | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return proc.returncode
        time.sleep(0.5)
    return None


def test_unregistered_and_plaintext_nodes_are_refused(tmp_path):
    outsider = NodeLaunch("outsider", tmp_path / "outsider", {})
    outsider.node_dir.mkdir()
    create_node_keypair(outsider.node_dir)
    plain = NodeLaunch("plain", tmp_path / "plain", {})
    plain.node_dir.mkdir()
    insider = NodeLaunch("insider", tmp_path / "insider", {})
    insider.node_dir.mkdir()
    for node in (outsider, plain, insider):   # valid nodes: only the SuperLink may refuse them
        write_policy(node.node_dir, node.name, approve=False)
    # Control: a registered node over TLS connects to the same SuperLink and gets a node id.
    # The refused nodes retry for node_connect_s before they give up: 30 s, not the 90 s a restarted SuperLink needs.
    with LocalEngine(tmp_path / "engine", nodes=[insider], say=lambda _: None, node_connect_s=30) as engine:
        assert "SuperNode ID" in (engine.logs / "node-insider.log").read_text()
        unregistered = engine.start_node(outsider, register=False)
        plaintext = engine.start_node(plain, plaintext=True)
        # Neither ever gets a node id; both give up and exit with an error.
        assert wait_exit(unregistered, 150) not in (None, 0)
        assert wait_exit(plaintext, 150) not in (None, 0)
        logs = engine.logs
        assert "SuperNode ID" not in (logs / "node-outsider.log").read_text()
        assert "SuperNode ID" not in (logs / "node-plain.log").read_text()
        listed = engine.coordinator.flwr(["supernode", "list", "lab"], timeout=60).stdout
        assert "outsider" not in listed
    # And the engine stopped what it started.
    assert unregistered.poll() is not None and plaintext.poll() is not None
