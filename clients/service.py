"""`pulse-twin node start`: this node's SuperNode, with the node's own executor answering every message.

The command runs in the foreground (a systemd service, or a terminal): it starts `flower-supernode` with
process isolation (TLS to the SuperLink with the federation CA, the node's own key for node
authentication, runtime dependency installation off, the Runtime API on loopback with a fresh secret),
then serves the SuperNode's tasks with `clients.executor` until it is stopped. SIGINT or SIGTERM stops
the SuperNode by process id (with anything it started), after the task in progress had a bounded time
to finish; if the SuperNode exits on its own (the SuperLink refused the node's key, or stayed away for
longer than `--max-wait`) or has not connected within `--max-wait` whatever it is doing, the command exits
non-zero quoting the telling line of its log and naming the log. The CA certificate and the node key are
checked before anything starts.
"""
from __future__ import annotations

import os
import re
import secrets
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from federation.processes import BIN, engine_env, free_port
from federation.errors import ConfigError, PulseTwinError
from federation.pki import NODE_KEY, check_ca_certificate, check_node_key
from federation.processes import Supervisor, stopped_by_signals
from clients.site_policy import load_site_policy
from federation.flower_config import node_config, own_feature_dirs, write_toml
from federation.output import progress

CA_FILE = Path("keys") / "federation-ca.crt"   # the coordinator's CA certificate (public), given to the node
SECRET_FILE = Path("state") / "runtime.secret"
LOG_DIR = Path("state") / "logs"
NODE_CONFIG_FILE = Path("state") / "node-config.toml"   # what the SuperNode hands its ClientApp
RETRY_S = 5.0   # pause before the SuperNode is started again (SuperLink restarting, or still holding the old session)
# The SuperNode's own --max-wait-time ends when ours does: a few seconds for it to exit by itself, logging its
# own reason ("[Errno 111] Connection refused"), before a SuperNode that never connected is stopped.
EXIT_GRACE_S = 5.0


class NodeStopped(PulseTwinError):
    """The SuperNode exited on its own: refused by the SuperLink, or the SuperLink stayed unreachable."""

    exit_code = 1


@dataclass(frozen=True)
class NodeStart:
    """What `pulse-twin node start` was asked for."""

    node_dir: Path
    superlink: str
    ca: Path | None = None
    insecure: bool = False
    feature_dirs: tuple[Path, ...] = ()
    max_wait_s: float = 300.0
    stop_grace_s: float = 30.0
    preload: bool = False


def _write_secret(node_dir: Path) -> Path:
    """A fresh secret for this start: only the SuperNode and this executor may claim tasks."""
    path = node_dir / SECRET_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(secrets.token_bytes(32))
    return path


def security_files(start: NodeStart) -> tuple[Path, Path]:
    """The CA certificate and node key of a TLS start, checked before anything starts: the SuperNode
    itself would hang silently on a damaged CA file (see `federation.pki.check_ca_certificate`)."""
    ca = Path(start.ca or start.node_dir / CA_FILE)
    check_ca_certificate(ca, "the federation's CA certificate (from the coordinator; --ca)")
    key = start.node_dir / NODE_KEY
    check_node_key(key)
    return ca, key


def supernode_argv(start: NodeStart, partner: str, port: int, secret: Path) -> list[str]:
    """The `flower-supernode` command line for this node (its node config written beside its state)."""
    node_dir = start.node_dir
    if start.insecure:
        security = ["--insecure"]
    else:
        ca, key = security_files(start)
        security = ["--root-certificates", str(ca), "--auth-supernode-private-key", str(key)]
    config = write_toml(node_dir / NODE_CONFIG_FILE, node_config(partner, node_dir, start.feature_dirs))
    return [str(BIN / "flower-supernode"), *security, "--superlink", start.superlink, "--isolation", "process",
            "--host", "127.0.0.1", "--port", str(port), "--superexec-auth-secret-file", str(secret),
            "--max-wait-time", f"{start.max_wait_s:g}", "--node-config", str(config)]


def run_node(start: NodeStart, say: Callable[[str], None] = progress) -> int:
    """Run the node until interrupted; returns the exit code (130 after SIGINT or SIGTERM)."""
    from clients.executor import Executor

    node_dir = start.node_dir.resolve()
    policy = load_site_policy(node_dir)
    own_feature_dirs(policy.partner, node_dir, start.feature_dirs)   # refused before anything starts
    start = NodeStart(**{**start.__dict__, "node_dir": node_dir})
    if not start.insecure:
        security_files(start)                                          # so are a missing or damaged CA or key
    port = free_port()
    secret = _write_secret(node_dir)
    supervisor = Supervisor(node_dir / LOG_DIR, grace_s=10)
    executor = Executor(node_dir, f"127.0.0.1:{port}", secret.read_bytes(), say=say, preload=start.preload)
    with stopped_by_signals():
        worker = threading.Thread(target=executor.serve, name="pulse-twin-executor", daemon=True)
        try:
            mode = "INSECURE, no TLS" if start.insecure else "TLS, node authentication"
            say(f"node '{policy.partner}' ({node_dir}): starting its SuperNode against {start.superlink} ({mode}), "
                "process isolation: this node's own executor answers every message")
            argv = supernode_argv(start, policy.partner, port, secret)
            env = engine_env(node_dir / "state" / "flower-home")
            worker.start()
            deadline = time.monotonic() + start.max_wait_s
            log = supervisor.log("supernode")
            while True:
                proc = supervisor.start("supernode", argv, env, cwd=node_dir)
                if _follow(lambda: supervisor.output("supernode"), proc, say, deadline + EXIT_GRACE_S):
                    deadline = time.monotonic() + start.max_wait_s   # it was connected: a new --max-wait from now
                line = informative_line(supervisor.output("supernode"))
                if proc.poll() is None:   # running, never connected: --max-wait bounds this too
                    supervisor.stop("supernode")
                    raise NodeStopped(f"the SuperNode did not connect to the SuperLink at {start.superlink} within "
                                      f"--max-wait {start.max_wait_s:g} s ({line}); see {log}")
                if time.monotonic() + RETRY_S >= deadline:
                    raise NodeStopped(f"the SuperNode exited with code {proc.returncode} and did not connect again within "
                                      f"--max-wait {start.max_wait_s:g} s ({line}); see {log}")
                say(f"the SuperNode exited (code {proc.returncode}: {line}); starting it again in {RETRY_S:g} s")
                time.sleep(RETRY_S)
        except KeyboardInterrupt:
            executor.stop.set()
            deadline = time.monotonic() + start.stop_grace_s
            while executor.busy.is_set() and time.monotonic() < deadline:
                time.sleep(0.1)
            say(f"node '{policy.partner}': stopped")
            return 130
        finally:
            executor.stop.set()
            supervisor.stop_all()
            secret.unlink(missing_ok=True)


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
# What the SuperNode's log says went wrong, most telling first: an exception with its message or an OS error
# ("ssl.SSLError: no start line...", "[Errno 111] Connection refused"), then a line logged as an error or
# saying something failed. Python's own noise at exit is none of these.
_TELLING = (re.compile(r"^(?:[\w.]+(?:Error|Exception)\b.*:\s*\S|\[Errno \d+\])"),
            re.compile(r"\b(?:ERROR|CRITICAL|[Ff]ailed|[Uu]nable|refused|rejected|denied|[Gg]iving up)\b"))
_NOISE = re.compile(r"^(?:Traceback \(most recent call last\)|Exception ignored in|SystemExit\b|KeyboardInterrupt\b|"
                    r"\S*ERROR\s*:\s*Exit Code:)")


def informative_line(text: str) -> str:
    """The line of a SuperNode's log that says why it stopped: the last exception or OS error line, else the
    last line logged as an error or failure, else the last line (its final lines are a clean shutdown
    that explains nothing)."""
    lines = [_ANSI.sub("", line).strip() for line in text.splitlines()]
    lines = [line for line in lines if line and not _NOISE.match(line)]
    for pattern in _TELLING:
        found = [line for line in lines if pattern.search(line)]
        if found:
            return found[-1][-300:]
    return lines[-1][-300:] if lines else "no output"


def _follow(output: Callable[[], str], proc, say: Callable[[str], None], deadline: float) -> bool:
    """Until the SuperNode exits, or is still not connected at `deadline`: tell the operator when it is
    connected (and its node id); whether it was. A SuperNode that never connects is left running for the
    caller to stop (Flower's own wait does not bound every failure: on a bad CA file it never exits)."""
    told = False
    while proc.poll() is None:
        if not told:
            for line in output().splitlines():
                if "SuperNode ID" in line:
                    say(f"connected to the SuperLink: SuperNode ID {line.split('SuperNode ID', 1)[1].strip(': ')}")
                    told = True
            if not told and time.monotonic() >= deadline:
                break
        time.sleep(0.3)
    sys.stdout.flush()
    return told
