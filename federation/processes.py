"""Processes a PULSE-TWIN command starts, and stops again: by process id, with all their descendants.

Flower's programs start children of their own (the SuperLink starts `flower-superexec`, which starts
`flwr-serverapp` per run), and a child whose parent dies is re-parented and lives on. So a supervising
command makes itself a child subreaper (Linux): orphans of its tree are re-parented to it, not to PID 1.
Stopping walks each started process's tree (from /proc) before signalling anything, sends SIGTERM to
all of it, waits a bounded time, then SIGKILLs what is left and the orphans it adopted, and reaps them.
"""
from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Mapping

from federation.errors import ConfigError

PR_SET_CHILD_SUBREAPER = 36
# Programs of the engine: an adopted orphan running one of these is ours to stop. Under the simulation
# engine `flwr-simulation` starts Ray, whose daemons and workers outlive it when it is stopped first.
OURS: tuple[str, ...] = ("flower-superlink", "flower-supernode", "flower-superexec", "flwr-serverapp",
                         "flwr-clientapp", "flwr", "pulse-twin", "raylet", "gcs_server", "ray::", "/ray/")


def become_subreaper() -> None:
    """Orphans of this process's descendants are re-parented to it (no-op where Linux's prctl is missing)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _parents() -> dict[int, int]:
    out: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        out[int(entry.name)] = int(stat[stat.rindex(")") + 2:].split()[1])
    return out


def descendants(pid: int) -> list[int]:
    """Every living descendant of `pid`, parents before children."""
    children: dict[int, list[int]] = {}
    for child, parent in _parents().items():
        children.setdefault(parent, []).append(child)
    out, todo = [], list(children.get(pid, []))
    while todo:
        p = todo.pop(0)
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def adopted() -> list[int]:
    """Direct children of this process that run an engine program (orphans this subreaper adopted)."""
    me = os.getpid()
    return [p for p, parent in _parents().items() if parent == me and any(n in _cmdline(p) for n in OURS)]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is dead
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return False


def _signal(pids: list[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def _reap(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass


def stop_pids(pids: list[int], grace_s: float) -> None:
    """SIGTERM to `pids`, SIGKILL to what still lives after `grace_s` seconds; reap our children."""
    _signal(pids, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        _reap(pids)
        if not any(alive(p) for p in pids):
            break
        time.sleep(0.1)
    _signal([p for p in pids if alive(p)], signal.SIGKILL)
    time.sleep(0.05)
    _reap(pids)


@dataclass
class Supervisor:
    """Starts processes (own session each, output to a log file) and stops all of them with their trees."""

    log_dir: Path
    grace_s: float = 10.0
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    offsets: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        become_subreaper()

    def start(self, name: str, argv: list[str], env: Mapping[str, str], cwd: Path | None = None,
              output: int | None = None) -> subprocess.Popen:
        """Start `argv` as `name`; its output goes to `<log_dir>/<name>.log` unless `output` says otherwise."""
        Path(self.log_dir).mkdir(parents=True, exist_ok=True)
        if output is None:
            # Logs are appended across starts (a re-launch keeps the failed run's log); `output` reads this one's.
            self.offsets[name] = self.log(name).stat().st_size if self.log(name).is_file() else 0
            with open(self.log(name), "ab") as log:
                proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=dict(env), cwd=cwd,
                                        start_new_session=True)
        else:
            proc = subprocess.Popen(argv, stdout=output, stderr=subprocess.STDOUT, env=dict(env), cwd=cwd,
                                    start_new_session=True, text=True)
        self.processes[name] = proc
        return proc

    def log(self, name: str) -> Path:
        return Path(self.log_dir) / f"{name}.log"

    def output(self, name: str) -> str:
        """What the process started last as `name` has written to its log so far."""
        try:
            with open(self.log(name), "rb") as handle:
                handle.seek(self.offsets.get(name, 0))
                return handle.read().decode("utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self, name: str) -> None:
        """Stop one started process and its whole tree."""
        proc = self.processes.pop(name, None)
        if proc is not None:
            stop_pids([proc.pid, *descendants(proc.pid)], self.grace_s)
            proc.poll()

    def stop_all(self) -> None:
        """Stop every started process with its tree (last started first), then adopted orphans."""
        trees = []
        for name, proc in reversed(list(self.processes.items())):
            trees += [proc.pid, *descendants(proc.pid)]
        stop_pids(trees, self.grace_s)
        for proc in self.processes.values():
            proc.poll()
        self.processes.clear()
        for _ in range(3):   # an orphan may start another before it stops (Ray restarts its workers)
            orphans = adopted()
            if not orphans:
                break
            stop_pids([p for o in orphans for p in (o, *descendants(o))], self.grace_s)


def raise_interrupt(signum: int, frame: object) -> None:
    """SIGTERM handler: unwind like Ctrl-C, so every `finally` stops what it started."""
    raise KeyboardInterrupt


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def stopped_by_signals() -> Iterator[None]:
    """While inside: SIGINT and SIGTERM raise KeyboardInterrupt in the main thread, whatever this process
    inherited. A process started by a parent that ignores or blocks SIGINT (a service manager, a wrapper
    script, a test runner, a library's worker) inherits that, and Python then never sees Ctrl-C: a node or
    coordinator would keep running. The previous handlers and mask are restored on the way out."""
    handlers = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
    blocked = signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, raise_interrupt)
    try:
        yield
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)


# -- Flower's programs: where they live, their environment, their addresses -------------------------
BIN = Path(sys.executable).parent
QUIET_ENV = {"FLWR_TELEMETRY_ENABLED": "0", "FLWR_DISABLE_UPDATE_CHECK": "1", "PYTHONWARNINGS": "ignore"}


def free_port() -> int:
    """A currently free TCP port on 127.0.0.1 (loopback only)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def engine_env(flwr_home: Path) -> dict[str, str]:
    """The environment of Flower's programs: quiet, offline, with their own FLWR_HOME."""
    Path(flwr_home).mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **QUIET_ENV, "FLWR_HOME": str(flwr_home)}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"  # the SuperLink starts flower-superexec by name
    return env


def parse_address(address: str, what: str = "--address") -> tuple[str, int]:
    """HOST:PORT, or one clear message saying it is not."""
    host, sep, port = address.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"{what}: '{address}' is not HOST:PORT (e.g. 0.0.0.0:9092 or 10.0.0.5:9092)")
    return host, int(port)
