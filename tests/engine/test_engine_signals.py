"""SIGINT or SIGTERM to the long-running commands a site runs (`coordinator start`, `node start`) stops
everything each started (SuperLink, SuperExec, SuperNode, executor) within a bounded time, exit code 130."""
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from clients.service import CA_FILE
from federation.processes import engine_env, free_port
from federation.pki import create_node_keypair
from tests.support.federation_fixtures import city_nodes
from tests.support.processes import processes_mentioning, stop_mentioning

pytestmark = pytest.mark.engine

STOP_BOUND_S = 60   # SIGTERM to each child, 10 s grace, the node's 30 s task grace at most, then SIGKILL


def start(log: Path, *args: str, home: Path, preexec_fn=None) -> subprocess.Popen:
    handle = open(log, "wb")
    return subprocess.Popen([sys.executable, "-m", "federation.cli", *args], stdout=handle, stderr=subprocess.STDOUT,
                            env=engine_env(home), start_new_session=True, preexec_fn=preexec_fn)


def _sigint_ignored_and_blocked() -> None:
    """What a parent may hand down (a service manager, a wrapper script, a library's worker pool)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})


def wait_for(proc: subprocess.Popen, log: Path, text: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while text not in log.read_text(errors="replace"):
        assert proc.poll() is None, log.read_text(errors="replace")[-1500:]
        assert time.monotonic() < deadline, f"'{text}' not in {log} within {timeout} s"
        time.sleep(0.3)


def stop_with(proc: subprocess.Popen, sig: int) -> int:
    proc.send_signal(sig)
    try:
        return proc.wait(timeout=STOP_BOUND_S)
    finally:
        if proc.poll() is None:
            proc.kill()


def test_sigint_to_node_start_and_sigterm_to_coordinator_start_leave_nothing_behind(tmp_path):
    city_nodes(tmp_path / "nodes", approve=False)
    node_dir, lab = tmp_path / "nodes" / "genk", tmp_path / "lab"
    port = free_port()
    coordinator = start(tmp_path / "coordinator.log", "coordinator", "start", "--coordinator-dir", str(lab),
                        "--address", f"127.0.0.1:{port}", home=tmp_path / "home")
    node = None
    try:
        wait_for(coordinator, tmp_path / "coordinator.log", "SuperLink ready")
        create_node_keypair(node_dir)
        out = subprocess.run([sys.executable, "-m", "federation.cli", "coordinator", "register",
                              str(node_dir / "keys" / "node.pub"), "--coordinator-dir", str(lab)],
                             capture_output=True, text=True, env=engine_env(tmp_path / "home"), timeout=120)
        assert out.returncode == 0, out.stdout + out.stderr
        shutil.copy(lab / "pki" / "ca.crt", node_dir / CA_FILE)
        node = start(tmp_path / "node.log", "node", "start", "--node-dir", str(node_dir), "--superlink",
                     f"127.0.0.1:{port}", home=node_dir / "state" / "flower-home")
        wait_for(node, tmp_path / "node.log", "SuperNode ID")
        assert any("flower-supernode" in p for p in processes_mentioning(str(node_dir)))

        assert stop_with(node, signal.SIGINT) == 130, (tmp_path / "node.log").read_text()[-1500:]
        time.sleep(0.5)
        assert processes_mentioning(str(node_dir)) == []
        assert any("flower-superlink" in p for p in processes_mentioning(str(lab)))

        assert stop_with(coordinator, signal.SIGTERM) == 130, (tmp_path / "coordinator.log").read_text()[-1500:]
        time.sleep(0.5)
        assert processes_mentioning(str(tmp_path)) == []
    finally:
        for proc in (node, coordinator):
            if proc is not None and proc.poll() is None:
                proc.kill()
        stop_mentioning(str(tmp_path))


def test_sigint_stops_a_coordinator_that_inherited_it_ignored_and_blocked(tmp_path):
    """Ctrl-C must stop the command whatever disposition of SIGINT it inherited: without its own handlers and
    mask, a process started with SIGINT ignored or blocked never sees it and keeps its SuperLink running."""
    port = free_port()
    log = tmp_path / "coordinator.log"
    coordinator = start(log, "coordinator", "start", "--coordinator-dir", str(tmp_path / "lab"),
                        "--address", f"127.0.0.1:{port}", home=tmp_path / "home",
                        preexec_fn=_sigint_ignored_and_blocked)
    try:
        wait_for(coordinator, log, "SuperLink ready")
        assert stop_with(coordinator, signal.SIGINT) == 130, log.read_text()[-1500:]
        time.sleep(0.5)
        assert processes_mentioning(str(tmp_path)) == []
    finally:
        if coordinator.poll() is None:
            coordinator.kill()
        stop_mentioning(str(tmp_path))
