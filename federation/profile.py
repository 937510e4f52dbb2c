"""Where an engine run's time goes: named spans per message, per exchange and per start-up phase.

Off unless the environment sets PULSE_TWIN_PROFILE (`python -m benchmarks.overhead` sets it for the runs it
measures; Flower's programs pass the environment on to the ServerApp and the nodes' executors). Then each
party appends one JSON line per unit of work to its own file: a node per message it answers
(`<node>/state/logs/profile.jsonl`), the ServerApp per exchange and `pulse-twin federate` per phase of its
start-up (`<run>/profile.jsonl`). A record holds wall-clock stamps (`time.time()`, so that records of
several processes on one machine line up) and seconds per span; profiling changes no decision of any check.
"""
from __future__ import annotations

import json
import os
import time
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Iterator

ENV = "PULSE_TWIN_PROFILE"
FILE = "profile.jsonl"

_current: ContextVar[dict[str, Any] | None] = ContextVar("pulse_twin_profile", default=None)


def enabled() -> bool:
    return bool(os.environ.get(ENV))


@contextmanager
def span(name: str) -> Iterator[None]:
    """Add the seconds spent in the block to `name` of the record being collected (nothing if none is)."""
    record = _current.get()
    if record is None:
        yield
        return
    started = time.perf_counter()
    try:
        yield
    finally:
        spans = record.setdefault("spans", {})
        spans[name] = spans.get(name, 0.0) + time.perf_counter() - started


def note(**fields: Any) -> None:
    """Add fields (e.g. the message type) to the record being collected."""
    record = _current.get()
    if record is not None:
        record.update(fields)


@contextmanager
def collect(path: Path | None, **fields: Any) -> Iterator[dict[str, Any] | None]:
    """Collect one record (its start, end and spans) while the block runs, then append it to `path`; does
    nothing when profiling is off or there is no path."""
    if not enabled() or path is None:
        yield None
        return
    record: dict[str, Any] = {**fields, "start": time.time(), "spans": {}}
    token = _current.set(record)
    try:
        yield record
    finally:
        _current.reset(token)
        record["end"] = time.time()
        append(path, record)


def append(path: Path, record: dict[str, Any]) -> None:
    """Append one record (never fails the work it describes)."""
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, default=str) + "\n")
    except OSError:
        pass


def process_started() -> float | None:
    """When this process started (seconds since the epoch; Linux), to time a program's own start-up."""
    try:
        ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        boot = next(float(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                    if line.startswith("btime "))
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def read(path: Path) -> list[dict[str, Any]]:
    """The records of a profile file (none if it does not exist)."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in lines if line.strip()]
