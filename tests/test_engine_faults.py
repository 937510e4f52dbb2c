"""Faults on the real engine: SIGTERM to `pulse-twin federate` mid-run leaves no process behind, exits 130
within the configured grace, and every node's ledger still holds exactly what its egress log says left."""
import signal
import subprocess
import sys
import time

import pytest

from federation.cli import main
from tests.federation_fixtures import city_nodes
from tests.test_engine_horizontal import processes_mentioning

pytestmark = pytest.mark.engine

STOP_BOUND_S = 60   # the engine's stop: SIGTERM, 10 s grace per command, the node's task grace, then SIGKILL


def test_sigterm_to_federate_mid_round_stops_everything_and_keeps_ledgers_consistent(tmp_path):
    city_nodes(tmp_path / "nodes", approve=False)
    argv = [sys.executable, "-m", "federation.cli", "federate", "federation=cities", "~federation.nodes.piraeus",
            "~federation.nodes.heerlen", f"federation.data_root={tmp_path / 'nodes'}", f"runs_dir={tmp_path / 'runs'}",
            "local.rounds=5", "local.batch_size=16", "--auto-approve", "--run-name", "cut"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if "round 1/5" in line:
                break
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=STOP_BOUND_S)
    finally:
        if proc.poll() is None:
            proc.kill()
    out = "".join(lines) + (proc.stdout.read() if proc.stdout else "")
    assert code == 130, out
    assert "every process this run started has been stopped" in out
    time.sleep(1)
    assert processes_mentioning(str(tmp_path)) == []
    for node in ("genk", "sant_boi"):
        assert main(["node", "audit", "--node-dir", str(tmp_path / "nodes" / node)]) == 0
