"""The privacy ledger: validated releases, durable append-only storage, several processes, facts."""
from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from dp_accounting import PrivacyLedger, Release, ledger_path
from federation.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


def release(round_: int = 0, run_id: str = "run-a", **fields) -> Release:
    values = dict(noise_multiplier=1.1, sample_rate=0.02, steps=40, run_id=run_id, round=round_,
                  kind="horizontal-update")
    values.update(fields)
    return Release(**values)


@pytest.mark.parametrize(
    "field, value",
    [
        ("noise_multiplier", 0.0),
        ("noise_multiplier", -1.0),
        ("noise_multiplier", float("nan")),
        ("sample_rate", 0.0),
        ("sample_rate", 1.5),
        ("steps", 0),
        ("steps", 2.5),
        ("round", -1),
        ("run_id", " "),
        ("kind", ""),
        ("mechanism", "laplace"),
        ("created_at", "2024-05-01T10:00:00"),  # no time zone
        ("created_at", "yesterday"),
    ],
)
def test_release_rejects_nonsense_naming_the_field(field, value):
    with pytest.raises(ConfigError, match=field):
        release(**{field: value})


def test_release_normalises_created_at_to_utc():
    r = release(created_at="2024-05-01T12:00:00+02:00")
    assert r.created_at == "2024-05-01T10:00:00.000000+00:00"
    assert release(sample_rate=1).sample_rate == 1.0


def test_ledger_path_is_in_the_node_state_dir(tmp_path):
    assert ledger_path(tmp_path) == tmp_path / "state" / "ledger.sqlite"


def test_history_survives_reopening_exactly(tmp_path):
    path = ledger_path(tmp_path)
    written = [release(0, noise_multiplier=0.1 + 0.2), release(1, node="police"), release(0, run_id="run-b")]
    with PrivacyLedger(path) as ledger:
        ids = ledger.record_many(written[:2])
        ids.append(ledger.record(written[2]))
        eps = ledger.epsilon(1e-5, accountant="rdp")
    assert ids == sorted(ids) and len(set(ids)) == 3
    with PrivacyLedger(path, create=False) as reopened:
        assert reopened.history() == written
        assert reopened.epsilon(1e-5, accountant="rdp") == eps
        assert reopened.history(run_id="run-b") == [written[2]]


def test_history_since_filters_by_time(tmp_path):
    now = datetime.now(timezone.utc)
    old = release(0, created_at=(now - timedelta(days=400)).isoformat())
    new = release(1, created_at=now.isoformat())
    with PrivacyLedger(ledger_path(tmp_path)) as ledger:
        ledger.record_many([old, new])
        assert ledger.history(since=now - timedelta(days=365)) == [new]
        assert ledger.history() == [old, new]
        recent = ledger.epsilon(1e-5, "rdp", since=now - timedelta(days=365))
        assert 0 < recent < ledger.epsilon(1e-5, "rdp")


def test_ledger_is_append_only_and_in_wal_mode(tmp_path):
    path = ledger_path(tmp_path)
    with PrivacyLedger(path) as ledger:
        ledger.record(release())
        ledger.record_fact("run-a", "psi_set_size", 57)
    raw = sqlite3.connect(path)
    try:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        for statement in ("UPDATE releases SET steps = 1", "DELETE FROM releases", "DELETE FROM facts"):
            with pytest.raises(sqlite3.DatabaseError, match="append-only"):
                raw.execute(statement)
        assert raw.execute("SELECT COUNT(*) FROM releases").fetchone()[0] == 1
    finally:
        raw.close()


def test_missing_ledger_is_a_clear_error_when_not_creating(tmp_path):
    with pytest.raises(ConfigError, match="no privacy ledger"):
        PrivacyLedger(ledger_path(tmp_path), create=False)
    assert not ledger_path(tmp_path).exists()


def test_a_file_that_is_not_a_ledger_is_refused_and_left_untouched(tmp_path):
    path = ledger_path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"these are somebody's notes, not a database" * 100)
    before = path.read_bytes()
    with pytest.raises(ConfigError, match=str(path)):
        PrivacyLedger(path)
    assert path.read_bytes() == before


def test_a_foreign_database_is_refused_and_left_untouched(tmp_path):
    path = tmp_path / "other.sqlite"
    raw = sqlite3.connect(path)
    raw.execute("CREATE TABLE notes (text TEXT)")
    raw.commit()
    raw.close()
    before = path.read_bytes()
    for create in (False, True):
        with pytest.raises(ConfigError, match="not a PULSE-TWIN privacy ledger"):
            PrivacyLedger(path, create=create)
    assert path.read_bytes() == before
    raw = sqlite3.connect(path)
    assert [r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type = 'table'")] == ["notes"]
    raw.close()


def test_newer_schema_is_refused_and_data_kept(tmp_path):
    path = ledger_path(tmp_path)
    with PrivacyLedger(path) as ledger:
        ledger.record(release())
    raw = sqlite3.connect(path)
    raw.execute("INSERT INTO schema_version (version) VALUES (99)")
    raw.commit()
    raw.close()
    with pytest.raises(ConfigError, match="schema version 99"):
        PrivacyLedger(path)
    raw = sqlite3.connect(path)
    assert raw.execute("SELECT COUNT(*) FROM releases").fetchone()[0] == 1
    raw.close()


def test_facts_round_trip_and_reject_non_json(tmp_path):
    with PrivacyLedger(ledger_path(tmp_path)) as ledger:
        ledger.record_fact("run-a", "psi_set_size", 57, "size of the key set sent in PSI")
        ledger.record_fact("run-b", "areas", ["BU09170000", "BU09170101"])
        with pytest.raises(ConfigError, match="not JSON"):
            ledger.record_fact("run-b", "bad", object())
        facts = ledger.facts()
        assert [(f.run_id, f.kind, f.value) for f in facts] == [
            ("run-a", "psi_set_size", 57), ("run-b", "areas", ["BU09170000", "BU09170101"])]
        assert facts[0].detail == "size of the key set sent in PSI"
        assert [f.kind for f in ledger.facts(run_id="run-b")] == ["areas"]


_RECORD_ONE_ROUND = textwrap.dedent(
    """
    import sys
    from dp_accounting import PrivacyLedger, Release
    with PrivacyLedger(sys.argv[1]) as ledger:
        ledger.record(Release(noise_multiplier=float(sys.argv[3]), sample_rate=0.02, steps=40,
                              run_id="run-a", round=int(sys.argv[2]), kind="horizontal-update"))
    """
)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def test_three_rounds_in_three_processes_equal_three_rounds_in_one(tmp_path):
    sigmas = [1.1, 1.1, 0.9]
    shared = tmp_path / "processes" / "ledger.sqlite"
    for round_, sigma in enumerate(sigmas):
        subprocess.run([sys.executable, "-c", _RECORD_ONE_ROUND, str(shared), str(round_), str(sigma)],
                       check=True, env=_env(), cwd=tmp_path, timeout=120)
    with PrivacyLedger(tmp_path / "one" / "ledger.sqlite") as one:
        one.record_many([release(r, noise_multiplier=s) for r, s in enumerate(sigmas)])
        in_one = one.epsilon(1e-5)
    with PrivacyLedger(shared, create=False) as ledger:
        assert [r.round for r in ledger.history()] == [0, 1, 2]
        in_three = ledger.epsilon(1e-5)
        assert ledger.projected_epsilon([], 1e-5) == in_three
    assert abs(in_three - in_one) <= 1e-9
    with PrivacyLedger(tmp_path / "single" / "ledger.sqlite") as single:
        single.record(release(0, noise_multiplier=sigmas[0]))
        assert single.epsilon(1e-5) < in_three
