"""One test at a time on this machine, whichever worker runs it.

Flower's simulation engine starts a Ray cluster, and Ray keeps machine-wide state under /tmp/ray: two
clusters started at once by two test workers find each other's sessions, and one's shutdown leaves the
other's run waiting forever. pytest-xdist's `xdist_group` mark cannot be relied on to keep such tests apart
(pytest 9 no longer reads the node id xdist 3.8 rewrites for it), so the tests take an exclusive lock on a
file every test process on the machine shares, held for the whole test.
"""
from __future__ import annotations

import fcntl
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


def lock_path(name: str) -> Path:
    return Path(tempfile.gettempdir()) / f"pulse-twin-tests-{name}.lock"


@contextmanager
def one_at_a_time(name: str) -> Iterator[None]:
    """Hold the machine-wide lock `name` (waiting for whoever holds it) until the block ends."""
    with open(lock_path(name), "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
