"""Sites on their own premises: the coordinator and each node in a network namespace of its own (made here
with `ip netns`, removed afterwards; loopback inside each, a veth pair from each node to the coordinator),
connecting over TCP with TLS and node authentication. Where the machine refuses namespaces, the same
commands run as separate process trees with separate homes, on loopback. Either way a run completes."""
import json
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from clients.service import CA_FILE
from federation.processes import engine_env, free_port
from federation.pki import create_node_keypair
from federation.processes import Supervisor
from tests.support.federation_fixtures import city_nodes
from tests.support.processes import processes_mentioning

pytestmark = pytest.mark.engine

NODES = ("genk", "sant_boi")


def ip(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)


class Sites:
    """One namespace per site (coordinator, each node), or none where namespaces are refused."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.tag = secrets.token_hex(3)
        self.names: list[str] = []
        self.netns = ip("netns", "add", f"pt{self.tag}c").returncode == 0
        if self.netns:
            self.names.append(f"pt{self.tag}c")

    def coordinator_ns(self) -> str | None:
        return f"pt{self.tag}c" if self.netns else None

    def add_node(self, index: int) -> tuple[str | None, str]:
        """The node's namespace and the coordinator's address as the node sees it."""
        if not self.netns:
            return None, "127.0.0.1"
        ns, c = f"pt{self.tag}n{index}", f"pt{self.tag}c"
        ip("netns", "add", ns)
        self.names.append(ns)
        a, b = f"ptc{self.tag}{index}", f"ptn{self.tag}{index}"
        subnet = f"10.{200 + index}.{int(self.tag[:2], 16)}"
        for cmd in (["link", "add", a, "type", "veth", "peer", "name", b], ["link", "set", a, "netns", c],
                    ["link", "set", b, "netns", ns],
                    ["-n", c, "addr", "add", f"{subnet}.1/24", "dev", a], ["-n", ns, "addr", "add", f"{subnet}.2/24", "dev", b],
                    ["-n", c, "link", "set", a, "up"], ["-n", ns, "link", "set", b, "up"],
                    ["-n", c, "link", "set", "lo", "up"], ["-n", ns, "link", "set", "lo", "up"]):
            out = ip(*cmd)
            assert out.returncode == 0, f"ip {' '.join(cmd)}: {out.stderr}"
        return ns, f"{subnet}.1"

    def argv(self, ns: str | None, *args: str) -> list[str]:
        cli = [sys.executable, "-m", "federation.cli", *args]
        return ["ip", "netns", "exec", ns, *cli] if ns else cli

    def remove(self) -> None:
        for ns in reversed(self.names):
            ip("netns", "del", ns)


def test_coordinator_and_nodes_on_their_own_sites_complete_a_run(tmp_path):
    city_nodes(tmp_path / "nodes", approve=False)
    sites = Sites(tmp_path / "cli-home")
    supervisor = Supervisor(tmp_path / "logs")
    coordinator_dir = tmp_path / "coordinator"
    port = 9092 if sites.netns else free_port()
    try:
        addresses = {n: sites.add_node(i) for i, n in enumerate(NODES, start=1)}
        hosts = [a for n in NODES for a in ("--host", addresses[n][1])]
        supervisor.start("coordinator", sites.argv(sites.coordinator_ns(), "coordinator", "start", "--coordinator-dir",
                                                   str(coordinator_dir), "--address", f"0.0.0.0:{port}", *hosts),
                         engine_env(coordinator_dir / "flower-home"))
        wait_for(supervisor, "coordinator", "SuperLink ready")
        overrides = ["federation=cities", "~federation.nodes.piraeus", "~federation.nodes.heerlen",
                     f"federation.data_root={tmp_path / 'nodes'}", f"runs_dir={tmp_path / 'runs'}", "local.rounds=1",
                     "local.sample_rate=0.07"]
        assert run_cli(sites, "run", "propose", *overrides, "--run-name", "ms").returncode == 0
        for n in NODES:
            node_dir = tmp_path / "nodes" / n
            create_node_keypair(node_dir)   # as `pulse-twin node init` does; only node.pub goes to the lab
            out = run_cli(sites, "coordinator", "register", str(node_dir / "keys" / "node.pub"), "--coordinator-dir",
                          str(coordinator_dir))
            assert out.returncode == 0, out.stdout + out.stderr
            shutil.copy(coordinator_dir / "pki" / "ca.crt", node_dir / CA_FILE)   # the lab gives the CA (public)
            out = run_cli(sites, "node", "approve", "--node-dir", str(node_dir), "--proposal",
                          str(tmp_path / "runs" / "ms" / "proposal.json"), "--yes", ns=None)
            assert out.returncode == 0, out.stdout + out.stderr
            ns, address = addresses[n]
            supervisor.start(f"node-{n}", sites.argv(ns, "node", "start", "--node-dir", str(node_dir), "--superlink",
                                                     f"{address}:{port}"), engine_env(node_dir / "state" / "flower-home"))
        for n in NODES:
            wait_for(supervisor, f"node-{n}", "SuperNode ID")
        out = run_cli(sites, "run", "start", *overrides, "--run-name", "ms", "--coordinator-dir", str(coordinator_dir),
                      "--wait", "--timeout", "400", "--json", timeout=500)
        if out.returncode != 0:   # say why: the ServerApp's own log on the SuperLink, and each site's log
            log = run_cli(sites, "run", "log", "ms", "--runs-dir", str(tmp_path / "runs"), "--coordinator-dir",
                          str(coordinator_dir))
            sites_logs = "\n".join(f"--- {n}\n" + supervisor.log(n).read_text()[-3000:]
                                   for n in ("coordinator", *(f"node-{x}" for x in NODES)))
            pytest.fail(f"run failed:\n{out.stdout}{out.stderr}\n--- run log\n{log.stdout}{log.stderr}\n{sites_logs}")
        outcome = json.loads(out.stdout[out.stdout.index("{"):])
        assert outcome["state"] == "completed"
        status = run_cli(sites, "run", "status", "ms", "--runs-dir", str(tmp_path / "runs"), "--coordinator-dir",
                         str(coordinator_dir), "--json")
        assert status.returncode == 0 and json.loads(status.stdout)["flower_status"] == "finished:completed"
        rounds = json.loads((tmp_path / "runs" / "ms" / "rounds.json").read_text())
        assert set(rounds[0]["nodes"]) == set(NODES)
        if sites.netns:   # each node reached the coordinator over its own veth link, not loopback
            for n in NODES:
                assert f"{addresses[n][1]}:{port}" in supervisor.log(f"node-{n}").read_text()
    finally:
        supervisor.stop_all()
        sites.remove()
    assert processes_mentioning(str(tmp_path)) == []
    assert not any(s in ip("netns", "list").stdout for s in sites.names)


def run_cli(sites: Sites, *args: str, ns: str | None | bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    namespace = sites.coordinator_ns() if ns is True else ns
    return subprocess.run(sites.argv(namespace, *args), capture_output=True, text=True, timeout=timeout,
                          env=engine_env(sites.home))


def wait_for(supervisor: Supervisor, name: str, text: str, timeout: float = 90) -> None:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log = supervisor.log(name)
        if log.is_file() and text in log.read_text(errors="replace"):
            return
        assert supervisor.processes[name].poll() is None, f"{name} exited: {log.read_text(errors='replace')[-800:]}"
        time.sleep(0.3)
    raise AssertionError(f"{name} did not say '{text}' within {timeout} s: {supervisor.log(name).read_text()[-800:]}")
