"""The lab's SuperLink as a service: `pulse-twin coordinator start` and `pulse-twin coordinator register`.

A coordinator directory holds everything of it: `pki/` (the federation CA and the SuperLink's TLS
certificate, made on first start with a SAN for every address nodes use), `superlink.db` (Flower's
persistent state: registered node keys and runs survive a restart), `flower-home/config.toml` (the
connection `flwr` and `pulse-twin run` use), and `logs/`. The SuperLink runs with TLS, node
authentication and runtime dependency installation off, bound to the address given; Flower serves the
nodes' Fleet API and the Control API (`flwr run`, `flwr ls`) on that one port.
"""
from __future__ import annotations

import ipaddress
import json
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from federation.processes import BIN, engine_env, parse_address
from federation.errors import ConfigError, PulseTwinError
from federation.pki import CA_CERT, DEFAULT_HOSTS, create_ca, create_superlink_cert, load_ca
from federation.processes import Supervisor, stopped_by_signals
from federation.output import progress

CONNECTION = "lab"          # the connection's name in flower-home/config.toml
READY = "SuperLink ready"   # printed once the SuperLink serves (launchers wait for it)


class CoordinatorError(PulseTwinError):
    """The SuperLink could not be started, reached or asked."""

    exit_code = 1


@dataclass(frozen=True)
class Coordinator:
    """A coordinator directory and the paths in it."""

    root: Path

    @property
    def pki(self) -> Path:
        return self.root / "pki"

    @property
    def home(self) -> Path:
        return self.root / "flower-home"

    @property
    def database(self) -> Path:
        return self.root / "superlink.db"

    @property
    def ca(self) -> Path:
        return self.pki / CA_CERT

    def connection(self) -> dict:
        """The address and security `coordinator start` recorded; a clear error when it never ran."""
        path = self.root / "coordinator.json"
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{path}: missing; start the SuperLink first with `pulse-twin coordinator start "
                              f"--coordinator-dir {self.root}`") from None
        except ValueError:
            raise ConfigError(f"{path}: not valid JSON") from None

    def write_connection(self, host: str, port: int, insecure: bool) -> None:
        """Where `flwr` reaches the SuperLink (loopback when it listens on every address)."""
        self.home.mkdir(parents=True, exist_ok=True)
        reach = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        reach = f"[{reach}]" if ":" in reach else reach
        lines = ["[superlink]", f'default = "{CONNECTION}"', "", f"[superlink.{CONNECTION}]",
                 f'address = "{reach}:{port}"',
                 "insecure = true" if insecure else f'root-certificates = "{self.ca}"']
        (self.home / "config.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")
        (self.root / "coordinator.json").write_text(json.dumps(
            {"host": host, "port": port, "insecure": insecure, "ca": None if insecure else str(self.ca)}, indent=2))

    def flwr(self, args: list[str], timeout: float) -> subprocess.CompletedProcess:
        """Run `flwr ARGS` against this coordinator's SuperLink."""
        self.connection()
        try:
            return subprocess.run([str(BIN / "flwr"), *args], capture_output=True, text=True, timeout=timeout,
                                  env=engine_env(self.home), cwd=self.root)
        except subprocess.TimeoutExpired:
            raise CoordinatorError(f"`flwr {args[0]}` got no answer from the SuperLink within {timeout:.0f} s "
                                   f"(is `pulse-twin coordinator start --coordinator-dir {self.root}` running?)") from None


def ensure_pki(coordinator: Coordinator, hosts: tuple[str, ...]) -> tuple[Path, Path]:
    """The federation CA and a SuperLink certificate for `hosts` (made on first start, then kept)."""
    cert, key = coordinator.pki / "server.pem", coordinator.pki / "server.key"
    if cert.is_file() and key.is_file():
        return cert, key
    ca = load_ca(coordinator.pki) if coordinator.ca.is_file() else create_ca(coordinator.pki)
    return create_superlink_cert(ca, coordinator.pki, hosts=hosts)


def superlink_argv(coordinator: Coordinator, host: str, port: int, insecure: bool, hosts: tuple[str, ...]) -> list[str]:
    security = ["--insecure"] if insecure else []
    if not insecure:
        cert, key = ensure_pki(coordinator, hosts)
        security = ["--ssl-ca-certfile", str(coordinator.ca), "--ssl-certfile", str(cert), "--ssl-keyfile", str(key),
                    "--enable-supernode-auth"]
    return [str(BIN / "flower-superlink"), *security, "--host", host, "--port", str(port),
            "--database", str(coordinator.database), "--disable-runtime-dependency-installation"]


def cert_hosts(host: str, extra: tuple[str, ...]) -> tuple[str, ...]:
    """Names and addresses the SuperLink's certificate is valid for."""
    names = [*DEFAULT_HOSTS, *extra]
    if host not in ("0.0.0.0", "::"):
        names.append(host)
    for name in names:
        try:
            ipaddress.ip_address(name)
        except ValueError:
            if not name or any(c.isspace() for c in name):
                raise ConfigError(f"--host: '{name}' is neither an IP address nor a DNS name")
    return tuple(dict.fromkeys(names))


def serve(coordinator: Coordinator, address: str, insecure: bool, hosts: tuple[str, ...],
          say: Callable[[str], None] = progress, start_timeout_s: float = 60) -> int:
    """Run the SuperLink in the foreground until SIGINT or SIGTERM; 130 then, 1 if it exits on its own."""
    host, port = parse_address(address)
    coordinator.root.mkdir(parents=True, exist_ok=True)
    argv = superlink_argv(coordinator, host, port, insecure, cert_hosts(host, hosts))
    coordinator.write_connection(host, port, insecure)
    supervisor = Supervisor(coordinator.root / "logs")
    with stopped_by_signals():
        try:
            proc = supervisor.start("superlink", argv, engine_env(coordinator.home), cwd=coordinator.root)
            log = supervisor.log("superlink")
            deadline = time.monotonic() + start_timeout_s
            while "Uvicorn running" not in supervisor.output("superlink"):
                if proc.poll() is not None:
                    raise CoordinatorError(f"the SuperLink exited at start (code {proc.returncode}); see {log}")
                if time.monotonic() > deadline:
                    raise CoordinatorError(f"the SuperLink did not start within {start_timeout_s:.0f} s; see {log}")
                time.sleep(0.2)
            mode = "INSECURE, no TLS" if insecure else f"TLS (CA {coordinator.ca}), node authentication"
            say(f"{READY} on {host}:{port} ({mode}); database {coordinator.database}; logs {log}")
            proc.wait()
            raise CoordinatorError(f"the SuperLink exited with code {proc.returncode}; see {log}")
        except KeyboardInterrupt:
            say("coordinator: stopped")
            return 130
        finally:
            supervisor.stop_all()


ALREADY_REGISTERED = "already registered (this key is known to the SuperLink)"


def register_node(coordinator: Coordinator, public_key: Path, timeout: float = 60) -> str:
    """Register a node's public key with the SuperLink; returns Flower's answer (a node id)."""
    if not Path(public_key).is_file():
        raise ConfigError(f"{public_key}: no such public key file (a node sends its keys/node.pub)")
    text = Path(public_key).read_text(encoding="utf-8", errors="replace").strip()
    if not text.startswith("ecdsa-sha2-nistp"):
        raise ConfigError(f"{public_key}: not a node public key (expected an OpenSSH 'ecdsa-sha2-nistp384 ...' line "
                          "as `pulse-twin node init` writes to keys/node.pub)")
    out = coordinator.flwr(["supernode", "register", str(Path(public_key).resolve()), CONNECTION, "--format", "json"],
                           timeout)
    if out.returncode != 0:
        if "already in use" in out.stdout + out.stderr:
            return ALREADY_REGISTERED   # e.g. a re-launch against the same coordinator database
        raise CoordinatorError(f"registering {public_key} failed: {(out.stdout + out.stderr).strip()[-400:]}")
    return out.stdout.strip()
