"""The node's privacy ledger: an append-only SQLite file of every DP release and disclosed fact.

One ledger per node (`node_dir/state/ledger.sqlite`) outlives rounds, runs and restarts, and is shared
by every process on the node: WAL mode, a busy timeout and explicit transactions make concurrent
writers safe, and `charge` checks the budget and records in one write transaction. Epsilon is never
stored: it is recomputed from the history each time it is asked for, so it cannot drift from what
was released. Triggers refuse UPDATE and DELETE, so a stored release cannot be edited away.
"""
from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from dp_accounting.accountants import get_accountant
from dp_accounting.budget import BudgetCaps, Projection, project, refuse_if_over
from dp_accounting.release import Release, utc_iso, utc_now
from dp_accounting.errors import ConfigError

SCHEMA_VERSION = 2   # 2: releases name their raw table and the sensitivity of a Gaussian release
LEDGER_FILE = Path("state") / "ledger.sqlite"
RELEASE_COLUMNS: tuple[str, ...] = (
    "mechanism", "noise_multiplier", "sample_rate", "steps", "unit", "run_id", "round", "kind",
    "created_at", "node", "source_table", "sensitivity",
)
# Columns added after version 1 (added in place to an older ledger; nothing stored is changed).
_ADDED_COLUMNS: tuple[tuple[str, str], ...] = (("source_table", "TEXT"), ("sensitivity", "REAL"))

_SCHEMA: tuple[str, ...] = (
    "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)",
    """CREATE TABLE IF NOT EXISTS releases (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        mechanism TEXT NOT NULL,
        noise_multiplier REAL NOT NULL CHECK (noise_multiplier > 0),
        sample_rate REAL NOT NULL CHECK (sample_rate > 0 AND sample_rate <= 1),
        steps INTEGER NOT NULL CHECK (steps >= 1),
        unit TEXT NOT NULL,
        run_id TEXT NOT NULL,
        round INTEGER NOT NULL,
        kind TEXT NOT NULL,
        created_at TEXT NOT NULL,
        node TEXT,
        source_table TEXT,
        sensitivity REAL
    )""",
    "CREATE INDEX IF NOT EXISTS releases_created_at ON releases (created_at)",
    "CREATE INDEX IF NOT EXISTS releases_run_id ON releases (run_id)",
    """CREATE TABLE IF NOT EXISTS facts (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        value TEXT NOT NULL,
        detail TEXT NOT NULL,
        created_at TEXT NOT NULL
    )""",
    *(
        f"CREATE TRIGGER IF NOT EXISTS {table}_no_{action.lower()} BEFORE {action} ON {table} "
        "BEGIN SELECT RAISE(ABORT, 'the privacy ledger is append-only'); END"
        for table in ("releases", "facts")
        for action in ("UPDATE", "DELETE")
    ),
)


def ledger_path(node_dir: str | Path) -> Path:
    """Where a node keeps its ledger: `node_dir/state/ledger.sqlite`."""
    return Path(node_dir) / LEDGER_FILE


@dataclass(frozen=True)
class Fact:
    """Something a node disclosed outside DP (e.g. its set size in a PSI run), kept for the record."""

    run_id: str
    kind: str
    value: Any
    detail: str
    created_at: str

    def to_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "kind": self.kind, "value": self.value, "detail": self.detail,
                "created_at": self.created_at}


class PrivacyLedger:
    """Append-only store of a node's releases and facts; epsilon is recomputed on every request."""

    def __init__(self, path: str | Path, *, create: bool = True, timeout: float = 60.0) -> None:
        self._path = Path(path)
        if not create and not self._path.is_file():
            raise ConfigError(
                f"{self._path}: no privacy ledger (the node has recorded no release yet, or the node "
                "directory is wrong)"
            )
        self._path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(self._path), timeout=timeout, isolation_level=None)
        try:
            self._db.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
            self._refuse_foreign_database(create)
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = FULL")
            with self._transaction():
                self._create_or_check_schema()
        except sqlite3.DatabaseError as err:
            self._db.close()
            raise ConfigError(f"{self._path}: not a usable privacy ledger (SQLite: {err})") from None
        except ConfigError:
            self._db.close()
            raise

    @property
    def path(self) -> Path:
        return self._path

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> PrivacyLedger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # Releases.

    def record(self, release: Release) -> int:
        """Append one release; returns its row id."""
        return self.record_many([release])[0]

    def record_many(self, releases: Sequence[Release]) -> list[int]:
        """Append several releases in one transaction (all or none)."""
        releases = _releases(releases)
        with self._transaction():
            return self._insert(releases)

    def history(self, since: datetime | None = None, run_id: str | None = None) -> list[Release]:
        """Stored releases in recording order, optionally from `since` on and/or of one run."""
        return [release for _, release in self._select(since, run_id)]

    def history_with_ids(self, since: datetime | None = None, run_id: str | None = None) -> list[tuple[int, Release]]:
        """Like `history`, with each release's row id (the recording order)."""
        return self._select(since, run_id)

    def epsilon(self, delta: float, accountant: str = "prv", since: datetime | None = None) -> float:
        """Epsilon of the stored history (from `since` on), recomputed now."""
        return get_accountant(accountant).epsilon(self.history(since), delta)

    def projected_epsilon(
        self, candidates: Sequence[Release], delta: float, accountant: str = "prv", since: datetime | None = None
    ) -> float:
        """Epsilon the history (from `since` on) would have with `candidates` added."""
        return get_accountant(accountant).epsilon([*self.history(since), *_releases(candidates)], delta)

    def check(self, candidates: Sequence[Release], caps: BudgetCaps, now: datetime | None = None) -> Projection:
        """Project epsilon with the candidates added; raise BudgetExceeded if a cap would be passed.

        Read-only: to record atomically with the check, use `charge`.
        """
        projection = project(self.history(), _releases(candidates), caps, now)
        refuse_if_over(projection, candidates, f"ledger {self._path}")
        return projection

    def charge(self, candidates: Sequence[Release], caps: BudgetCaps, now: datetime | None = None) -> Projection:
        """Check the caps and record the candidates in ONE write transaction, or record nothing.

        The write lock is taken before the history is read, so a second process waits and then
        sees this charge: two processes cannot both pass against the same remaining budget.
        """
        candidates = _releases(candidates)
        with self._transaction():
            history = [release for _, release in self._select(None, None)]
            projection = project(history, candidates, caps, now)
            refuse_if_over(projection, candidates, f"ledger {self._path}")
            self._insert(candidates)
        return projection

    # Facts disclosed outside DP.

    def record_fact(self, run_id: str, kind: str, value: Any, detail: str = "") -> int:
        """Append a disclosed fact (JSON-serialisable value); returns its row id."""
        for name, text in (("run_id", run_id), ("kind", kind)):
            if not isinstance(text, str) or not text.strip():
                raise ConfigError(f"fact field '{name}' must be a non-empty text, got {text!r}")
        if not isinstance(detail, str):
            raise ConfigError(f"fact field 'detail' must be text, got {detail!r}")
        try:
            encoded = json.dumps(value, sort_keys=True)
        except (TypeError, ValueError):
            raise ConfigError(f"fact {kind!r} of run {run_id!r}: value {value!r} is not JSON data") from None
        with self._transaction():
            cursor = self._db.execute(
                "INSERT INTO facts (run_id, kind, value, detail, created_at) VALUES (?, ?, ?, ?, ?)",
                (run_id, kind, encoded, detail, utc_iso(utc_now())),
            )
            return int(cursor.lastrowid)

    def facts(self, run_id: str | None = None) -> list[Fact]:
        """Disclosed facts in recording order, optionally of one run."""
        sql = "SELECT run_id, kind, value, detail, created_at FROM facts"
        params: tuple = ()
        if run_id is not None:
            sql, params = sql + " WHERE run_id = ?", (run_id,)
        rows = self._db.execute(sql + " ORDER BY id", params).fetchall()
        return [Fact(run, kind, json.loads(value), detail, at) for run, kind, value, detail, at in rows]

    # Internals.

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """BEGIN IMMEDIATE takes the write lock up front, so read-then-write is race free."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _refuse_foreign_database(self, create: bool) -> None:
        """Never add tables to (or change the journal of) a database that is something else."""
        tables = {row[0] for row in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        tables.discard("sqlite_sequence")
        if (tables or not create) and not {"schema_version", "releases", "facts"} <= tables:
            raise ConfigError(f"{self._path}: not a PULSE-TWIN privacy ledger (its tables are missing)")

    def _create_or_check_schema(self) -> None:
        for statement in _SCHEMA:
            self._db.execute(statement)
        present = {row[1] for row in self._db.execute("PRAGMA table_info(releases)")}
        for column, kind in _ADDED_COLUMNS:
            if column not in present:
                self._db.execute(f"ALTER TABLE releases ADD COLUMN {column} {kind}")
        (version,) = self._db.execute("SELECT MAX(version) FROM schema_version").fetchone()
        if version is None:
            self._db.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
        elif version < SCHEMA_VERSION:
            self._db.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
        if version is not None and version > SCHEMA_VERSION:
            raise ConfigError(
                f"{self._path}: ledger schema version {version} is newer than this PULSE-TWIN "
                f"understands ({SCHEMA_VERSION}); upgrade PULSE-TWIN, the ledger is left untouched"
            )

    def _insert(self, releases: Sequence[Release]) -> list[int]:
        placeholders = ", ".join("?" for _ in RELEASE_COLUMNS)
        sql = f"INSERT INTO releases ({', '.join(RELEASE_COLUMNS)}) VALUES ({placeholders})"
        ids = []
        for release in releases:
            cursor = self._db.execute(sql, tuple(getattr(release, _FIELD.get(c, c)) for c in RELEASE_COLUMNS))
            ids.append(int(cursor.lastrowid))
        return ids

    def _select(self, since: datetime | None, run_id: str | None) -> list[tuple[int, Release]]:
        clauses, params = [], []
        if since is not None:
            clauses.append("created_at >= ?")
            params.append(utc_iso(since))
        if run_id is not None:
            clauses.append("run_id = ?")
            params.append(run_id)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._db.execute(
            f"SELECT id, {', '.join(RELEASE_COLUMNS)} FROM releases{where} ORDER BY id", params
        ).fetchall()
        return [(row[0], Release(**{_FIELD.get(c, c): v for c, v in zip(RELEASE_COLUMNS, row[1:])})) for row in rows]


_FIELD = {"source_table": "table"}   # ledger column -> Release field ("table" is an SQL keyword)


def _releases(items: Sequence[Release]) -> list[Release]:
    items = list(items)
    for item in items:
        if not isinstance(item, Release):
            raise TypeError(f"expected a Release, got {type(item).__name__}")
    return items
