"""Which processes are alive: what the engine tests check after a run, a fault or a signal."""
from __future__ import annotations

import os
from pathlib import Path


def processes_mentioning(text: str) -> list[str]:
    """"PID command line" of every living process whose whole command line holds `text` (read from /proc:
    `ps` cuts lines to the terminal's width)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        if text in cmdline:
            found.append(f"{entry.name} {cmdline}")
    return found


def stop_mentioning(text: str, grace_s: float = 5.0) -> None:
    """Stop, by process id, every living process whose command line holds `text` (a test's own directory):
    what a failed test leaves when it had to SIGKILL a command whose children outlive it."""
    from federation.processes import stop_pids

    stop_pids([int(line.split(" ", 1)[0]) for line in processes_mentioning(text)], grace_s)
