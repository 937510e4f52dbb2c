"""Flower's real deployment engine on one machine, composed of the commands each party runs.

`LocalEngine` is what `pulse-twin federate` and `make demo` use: it runs `pulse-twin coordinator start`
(the lab's SuperLink: TLS, node authentication, a persistent database) on a free loopback port, registers
each node's key as `pulse-twin coordinator register` does, gives each node the federation's CA
certificate, and runs `pulse-twin node start` for every node (its SuperNode with the node's own
executor), each command in its own process with its own node directory. Each command stops what it
started when it gets SIGTERM; the engine stops the commands by process id, with their whole trees, also
on failure and Ctrl-C. `simulation=True` runs Flower's simulation engine instead (Ray, virtual nodes).
"""
from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import ExitStack
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

from federation.errors import PulseTwinError
from federation.processes import BIN, Supervisor, engine_env, free_port, stopped_by_signals
from federation.flower_config import feature_dirs
from federation.output import progress

class EngineError(PulseTwinError):
    """A Flower process could not be started or stopped, or the run did not finish."""

    exit_code = 1


@dataclass(frozen=True)
class NodeLaunch:
    """One SuperNode to start: its name, its directory, and what goes in its --node-config."""

    name: str
    node_dir: Path
    node_config: Mapping[str, str]


def pulse_twin(*args: str) -> list[str]:
    """The command line of `pulse-twin ARGS` with this installation."""
    return [sys.executable, "-m", "federation.cli", *args]


@dataclass
class LocalEngine:
    """Start with `with LocalEngine(...) as engine:`; everything started is stopped on exit."""

    work_dir: Path
    nodes: list[NodeLaunch]
    insecure: bool = False
    say: Callable[[str], None] = progress
    simulation: bool = False
    start_timeout_s: float = 90
    # A SuperLink restarted on the same database holds a node that was online as online for up to two missed
    # heartbeats (60 s): its SuperNode is started again until then (`node start --max-wait`).
    node_connect_s: float = 90
    # `staged`: entering starts only the SuperLink's command; the caller then calls `connect_nodes()` and
    # `wait_nodes()` (e.g. submitting the run in between), so the engine's start overlaps the caller's own work.
    staged: bool = False
    port: int = 0
    # Whether the SuperLink started on a new database: then every node it lists online is connected now. On an
    # earlier database (a re-launch) it may list a node as online for up to a minute after its SuperNode died,
    # so a run must not be submitted before the nodes are connected again.
    fresh: bool = False
    supervisor: Supervisor = field(init=False)

    def __post_init__(self) -> None:
        self.work_dir = Path(self.work_dir).resolve()
        self.logs = self.work_dir / "logs"
        self.supervisor = Supervisor(self.logs)

    @property
    def coordinator(self):
        from server.coordinator import Coordinator

        return Coordinator(self.work_dir / "coordinator")

    # -- lifecycle ---------------------------------------------------------------------------
    def __enter__(self) -> "LocalEngine":
        self._signals = ExitStack()
        self._signals.enter_context(stopped_by_signals())
        try:
            self.begin() if self.staged else self.start()
        except BaseException:
            self.stop()
            self._signals.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self._signals.close()

    def start(self) -> None:
        self.begin()
        self.connect_nodes()
        self.wait_nodes()

    def begin(self) -> None:
        """Start the SuperLink's command (`pulse-twin coordinator start`) without waiting for it."""
        self.work_dir.mkdir(parents=True, exist_ok=True)
        # A SuperLink on a database of its own holds no earlier session of any node (see `fresh`).
        self.fresh = not self.coordinator.database.exists()
        self.port = free_port()
        if self.simulation:
            self._start_simulation()
            return
        mode = "INSECURE, no TLS" if self.insecure else "TLS, node authentication"
        self.say(f"starting SuperLink on 127.0.0.1:{self.port} ({mode}): pulse-twin coordinator start")
        argv = pulse_twin("coordinator", "start", "--coordinator-dir", str(self.coordinator.root),
                          "--address", f"127.0.0.1:{self.port}", *(["--insecure"] if self.insecure else []))
        self.supervisor.start("coordinator", argv, engine_env(self.coordinator.home), cwd=self.work_dir)

    def ready(self) -> None:
        """Wait until the SuperLink serves."""
        from server.coordinator import READY

        if not self.simulation:
            self.wait_log("coordinator", READY, self.start_timeout_s)

    def connect_nodes(self) -> None:
        """Once the SuperLink serves: register every node's key (all at once: each is a `flwr` command) and start
        each node's `pulse-twin node start` as soon as its key is registered."""
        self.ready()
        if self.simulation:
            return
        if self.insecure:
            for node in self.nodes:
                self._launch(node)
            return
        with ThreadPoolExecutor(max_workers=max(1, len(self.nodes))) as pool:
            registering = {pool.submit(self.register, node): node for node in self.nodes}
            for done in as_completed(registering):
                done.result()
                self._launch(registering[done])

    def wait_nodes(self) -> None:
        """Wait until every node's SuperNode is connected."""
        if self.simulation:
            return
        for node in self.nodes:
            self.wait_log(f"node-{node.name}", "SuperNode ID", self.node_connect_s + 30)

    def superlink_lost(self) -> str | None:
        """Why the SuperLink this engine started is gone, or None while it runs."""
        proc = self.supervisor.processes.get("coordinator")
        if proc is None or proc.poll() is None:
            return None
        return (f"the SuperLink stopped (`pulse-twin coordinator start` exited with code {proc.returncode}; see "
                f"{self.supervisor.log('coordinator')})")

    def wait_log(self, name: str, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        path = self.supervisor.log(name)
        while time.monotonic() < deadline:
            if text in self.supervisor.output(name):
                return
            proc = self.supervisor.processes.get(name)
            if proc is not None and proc.poll() is not None:
                raise EngineError(f"{name} exited at start (code {proc.returncode}); see {path}")
            time.sleep(0.3)
        raise EngineError(f"{name} did not report '{text}' within {timeout:.0f} s; see {path}")

    def register(self, node: NodeLaunch) -> None:
        """The coordinator registers the node's public key and gives the node the federation's CA."""
        from federation.pki import create_node_keypair
        from server.coordinator import register_node

        pub = node.node_dir / "keys" / "node.pub"
        if not pub.is_file():
            from clients.egress.log import EgressLog

            create_node_keypair(node.node_dir)
            log = EgressLog(node.node_dir)
            if log.head_path.is_file():
                log.resign()    # a log written before the node had a key is signed from now on
        register_node(self.coordinator, pub)

    def node_argv(self, node: NodeLaunch, plaintext: bool = False) -> list[str]:
        from clients.service import CA_FILE

        extra = [arg for d in feature_dirs(node.node_config) for arg in ("--feature-dir", str(d))]
        if self.insecure or plaintext:
            extra.append("--insecure")
        else:
            (node.node_dir / CA_FILE).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self.coordinator.ca, node.node_dir / CA_FILE)
        # --preload: the node imports its ClientApp while the engine starts, not when the run's first message waits
        return pulse_twin("node", "start", "--node-dir", str(node.node_dir), "--superlink", f"127.0.0.1:{self.port}",
                          "--max-wait", f"{self.node_connect_s:g}", "--preload", *extra)

    def start_node(self, node: NodeLaunch, register: bool = True, plaintext: bool = False):
        """Start `pulse-twin node start` for a node; `register=False` or `plaintext=True` only to show that
        the SuperLink refuses it."""
        if not self.insecure and register and not plaintext:
            self.register(node)
        return self._launch(node, plaintext)

    def _launch(self, node: NodeLaunch, plaintext: bool = False):
        self.say(f"starting node {node.name} ({node.node_dir}): pulse-twin node start")
        return self.supervisor.start(f"node-{node.name}", self.node_argv(node, plaintext),
                                     engine_env(node.node_dir / "state" / "flower-home"), cwd=node.node_dir)

    def stop_node(self, name: str) -> None:
        self.supervisor.stop(f"node-{name}")

    def stop(self) -> None:
        """Stop every command this engine started, each with its whole process tree."""
        self.supervisor.stop_all()

    # -- the simulation engine ------------------------------------------------------------------
    def _start_simulation(self) -> None:
        home = self.coordinator.home
        self.coordinator.write_connection("127.0.0.1", self.port, insecure=True)
        (home / "config.toml").write_text((home / "config.toml").read_text() + "\n".join([
            f"options.num-supernodes = {len(self.nodes)}", "options.backend.client-resources.num-cpus = 1"]) + "\n")
        self.say(f"starting SuperLink on 127.0.0.1:{self.port} (simulation engine, in-process virtual nodes)")
        # Ray starts its workers 15 steps nicer than the engine by default: on a shared machine the virtual
        # nodes, which do all the training, then wait behind Flower's own polling of every node's queue.
        env = {**engine_env(home), "RAY_worker_niceness": "0"}
        self.supervisor.start("superlink", [str(BIN / "flower-superlink"), "--insecure", "--simulation", "--host",
                                            "127.0.0.1", "--port", str(self.port), "--database",
                                            str(self.coordinator.database), "--disable-runtime-dependency-installation"],
                              env, cwd=self.work_dir)
        self.wait_log("superlink", "Uvicorn running", self.start_timeout_s)
