"""Flower's real deployment engine on one machine: a SuperLink and one SuperNode per node, on loopback.

Every process this module starts gets its own process group, and is stopped by this module, by
process id, when the run ends, fails, or is interrupted (Ctrl-C or SIGTERM). TLS with node
authentication is the default: a federation CA, the SuperLink's certificate, and each node's own key
pair, registered with the SuperLink before the node may connect. `insecure=True` is for debugging.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

from federation.errors import PulseTwinError
from federation.pki import create_ca, create_node_keypair, create_superlink_cert, load_ca

BIN = Path(sys.executable).parent
QUIET_ENV = {"FLWR_TELEMETRY_ENABLED": "0", "FLWR_DISABLE_UPDATE_CHECK": "1", "PYTHONWARNINGS": "ignore"}


class EngineError(PulseTwinError):
    """A Flower process could not be started or stopped, or the run did not finish."""


@dataclass(frozen=True)
class NodeLaunch:
    """One SuperNode to start: its name, its directory, and what goes in its --node-config."""

    name: str
    node_dir: Path
    node_config: Mapping[str, str]


def free_port() -> int:
    """A currently free TCP port on 127.0.0.1 (loopback only)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _node_config(values: Mapping[str, str]) -> str:
    return " ".join(f'{k}="{v}"' for k, v in values.items())


@dataclass
class LocalEngine:
    """Start with `with LocalEngine(...) as engine:`; everything started is stopped on exit."""

    work_dir: Path
    nodes: list[NodeLaunch]
    insecure: bool = False
    say: Callable[[str], None] = print
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    port: int = 0
    # Flower's simulation engine (Ray) instead of SuperNodes: `nodes` become virtual nodes, one CPU each.
    simulation: bool = False

    def __post_init__(self) -> None:
        self.work_dir = Path(self.work_dir).resolve()
        self.home = self.work_dir / "flower-home"
        self.logs = self.work_dir / "logs"
        self.pki = self.work_dir / "pki"

    # -- environment -------------------------------------------------------------------------
    def env(self, flwr_home: Path) -> dict[str, str]:
        env = {**os.environ, **QUIET_ENV, "FLWR_HOME": str(flwr_home)}
        env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"  # the SuperLink starts flower-superexec by name
        return env

    def _start(self, name: str, argv: list[str], flwr_home: Path) -> subprocess.Popen:
        self.logs.mkdir(parents=True, exist_ok=True)
        flwr_home.mkdir(parents=True, exist_ok=True)
        log = open(self.logs / f"{name}.log", "ab")
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=self.env(flwr_home),
                                start_new_session=True, cwd=self.work_dir)
        log.close()
        self.processes[name] = proc
        return proc

    def _wait_log(self, name: str, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        path = self.logs / f"{name}.log"
        while time.monotonic() < deadline:
            if path.is_file() and text in path.read_text(errors="replace"):
                return
            if self.processes[name].poll() is not None:
                raise EngineError(f"{name} exited at start (code {self.processes[name].returncode}); see {path}")
            time.sleep(0.3)
        raise EngineError(f"{name} did not report '{text}' within {timeout:.0f} s; see {path}")

    # -- lifecycle ---------------------------------------------------------------------------
    def __enter__(self) -> "LocalEngine":
        self._previous = signal.signal(signal.SIGTERM, _raise_interrupt)
        try:
            self.start()
        except BaseException:
            self.stop()
            signal.signal(signal.SIGTERM, self._previous)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        signal.signal(signal.SIGTERM, self._previous)

    def start(self) -> None:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        security = ["--insecure", "--simulation"] if self.simulation else self._security()
        self._write_connection()
        mode = ("simulation engine, in-process virtual nodes" if self.simulation else
                "INSECURE, no TLS" if self.insecure else "TLS, node authentication")
        self.say(f"starting SuperLink on 127.0.0.1:{self.port} ({mode})")
        self._start("superlink", [str(BIN / "flower-superlink"), *security, "--host", "127.0.0.1",
                                  "--port", str(self.port), "--database", str(self.work_dir / "superlink.db"),
                                  "--disable-runtime-dependency-installation"], self.home)
        self._wait_log("superlink", "Uvicorn running", 60)
        if self.simulation:
            return
        for node in self.nodes:
            self.start_node(node)
        for node in self.nodes:
            self._wait_log(f"supernode-{node.name}", "SuperNode ID", 60)

    def _security(self) -> list[str]:
        if self.insecure:
            return ["--insecure"]
        ca = load_ca(self.pki) if (self.pki / "ca.crt").is_file() else create_ca(self.pki)
        cert, key = create_superlink_cert(ca, self.pki)
        return ["--ssl-ca-certfile", str(ca.cert_path), "--ssl-certfile", str(cert), "--ssl-keyfile", str(key),
                "--enable-supernode-auth"]

    def _write_connection(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        lines = ["[superlink]", 'default = "local"', "", "[superlink.local]", f'address = "127.0.0.1:{self.port}"']
        lines.append("insecure = true" if self.insecure or self.simulation
                     else f'root-certificates = "{self.pki / "ca.crt"}"')
        if self.simulation:
            lines += [f"options.num-supernodes = {len(self.nodes)}",
                      "options.backend.client-resources.num-cpus = 1"]
        (self.home / "config.toml").write_text("\n".join(lines) + "\n")

    def register(self, node: NodeLaunch) -> None:
        """The coordinator registers the node's public key; only then may the node connect."""
        pub = node.node_dir / "keys" / "node.pub"
        if not pub.is_file():
            create_node_keypair(node.node_dir)
        out = self.flwr(["supernode", "register", str(pub), "local"], timeout=60)
        if out.returncode != 0:
            raise EngineError(f"registering node {node.name} failed: {out.stdout.strip()[-400:]}")

    def start_node(self, node: NodeLaunch, register: bool = True, plaintext: bool = False) -> subprocess.Popen:
        """Start a SuperNode; `register=False` or `plaintext=True` only to show that the SuperLink refuses it."""
        if not self.insecure and register:
            self.register(node)
        auth = (["--insecure"] if self.insecure or plaintext else
                ["--root-certificates", str(self.pki / "ca.crt"),
                 "--auth-supernode-private-key", str(node.node_dir / "keys" / "node.key")])
        self.say(f"starting SuperNode {node.name} ({node.node_dir})")
        return self._start(f"supernode-{node.name}", [
            str(BIN / "flower-supernode"), *auth, "--superlink", f"127.0.0.1:{self.port}",
            "--port", str(free_port()), "--max-retries", "3", "--max-wait-time", "30",
            "--node-config", _node_config({**node.node_config, "partner": node.name, "data-dir": str(node.node_dir)}),
        ], node.node_dir / "state" / "flower-home")

    def flwr(self, args: list[str], timeout: float) -> subprocess.CompletedProcess:
        return subprocess.run([str(BIN / "flwr"), *args], capture_output=True, text=True, timeout=timeout,
                              env=self.env(self.home), cwd=self.work_dir)

    def run_app(self, app_dir: Path, run_config: Mapping[str, str], timeout: float,
                show: Callable[[str], None]) -> int:
        """`flwr run APP local --stream`: stream its output; return its exit code (0 even on failure!)."""
        argv = [str(BIN / "flwr"), "run", str(app_dir), "local", "--stream", "--run-config",
                _node_config(run_config)]
        log = open(self.logs / "flwr-run.log", "a")
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                env=self.env(self.home), cwd=self.work_dir, start_new_session=True)
        self.processes["flwr-run"] = proc
        deadline = time.monotonic() + timeout
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                log.write(line)
                show(line.rstrip("\n"))
                if time.monotonic() > deadline:
                    raise EngineError(f"the run did not finish within {timeout:.0f} s; see {self.logs}")
            return proc.wait(timeout=30)
        finally:
            log.close()

    def stop(self) -> None:
        """Stop every process this engine started: SIGTERM to its group, then SIGKILL after 10 s."""
        for name, proc in reversed(list(self.processes.items())):
            if proc.poll() is None:
                _signal_group(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for name, proc in self.processes.items():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
            # The group may still hold children (flwr-serverapp, flwr-clientapp) of a stopped leader.
            _signal_group(proc.pid, signal.SIGKILL)
        self.processes.clear()


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
