"""The guard trusts nothing unsigned: a checkpoint the node's key did not sign vouches for nothing (the guard then
verifies the whole log against the ledger), and the budget window runs on the guard's own, monotonic dates."""
from __future__ import annotations

import datetime as dt
import json
import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from clients.egress import EgressGuard, clock
from clients.egress.log import CHECKPOINT_FILE, EgressLog
from clients.egress.vouch import LedgerMismatch
from dp_accounting import ledger_path
from federation.errors import PolicyRefusal
from federation.pki import create_node_keypair
from tests.integration.test_egress_guard import dp_update, ledger_history, log_records, make_node

REAL = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.timezone.utc)


@pytest.fixture
def at(monkeypatch):
    """Set the node's clock: `at(moment)`."""
    def set_clock(moment: dt.datetime) -> None:
        monkeypatch.setattr(clock, "now", lambda: moment)
    set_clock(REAL)
    return set_clock


def charged(tmp_path: Path, keyed: bool, rounds: int = 3) -> Path:
    node = make_node(tmp_path)
    if keyed:
        create_node_keypair(node)
    with EgressGuard.open(node) as guard:
        for r in range(1, rounds + 1):
            guard.release(dp_update(r))
    return node


def empty_ledger(node: Path) -> None:
    db = sqlite3.connect(ledger_path(node))
    db.execute("DROP TRIGGER IF EXISTS releases_no_delete")
    db.execute("DELETE FROM releases")
    db.commit()
    db.close()


def forge_checkpoint(node: Path, sign: bool) -> None:
    """Rewrite the checkpoint over the log's current bytes with a zero ledger count (signed with the node's own
    key only when `sign`: what someone holding the key could do)."""
    log = EgressLog(node)
    data = log.path.read_bytes()
    import hashlib

    records = log_records(node)
    args = (len(records), records[-1]["hash"], len(data), hashlib.sha256(data).hexdigest(), 0, "0" * 64)
    if sign:
        log.write_checkpoint(*args)
    else:
        content = json.loads((node / CHECKPOINT_FILE).read_text())
        content.update(count=args[0], hash=args[1], bytes=args[2], prefix_sha256=args[3], ledger_count=0,
                       ledger_digest="0" * 64)
        (node / CHECKPOINT_FILE).write_text(json.dumps(content))


@pytest.mark.parametrize("keyed", [True, False], ids=["node with a key", "node without a key"])
def test_a_forged_checkpoint_with_an_emptied_ledger_is_refused(tmp_path: Path, keyed: bool, at):
    node = charged(tmp_path, keyed)
    empty_ledger(node)
    forge_checkpoint(node, sign=False)
    with pytest.raises(LedgerMismatch, match="missing or empty"), EgressGuard.open(node) as guard:
        guard.release(dp_update(4))
    assert ledger_history(node) == []   # nothing charged from a budget of zero


def test_control_a_checkpoint_the_node_key_signed_is_trusted(tmp_path: Path, at):
    """The control: the very same forgery, signed with the node's key, is believed (so the refusal above comes
    from the signature, and only the key's holder can reset the budget this way)."""
    node = charged(tmp_path, keyed=True)
    empty_ledger(node)
    forge_checkpoint(node, sign=True)
    with EgressGuard.open(node) as guard:
        record = guard.release(dp_update(4))
    assert record["status"] == "released"


def test_the_checkpoint_is_signed_and_an_edited_one_is_not_believed(tmp_path: Path, at):
    node = charged(tmp_path, keyed=True)
    content = json.loads((node / CHECKPOINT_FILE).read_text())
    assert content["signature"]["key"].startswith("SHA256:") and content["ledger_count"] == 2   # as of the last check
    assert content["last_time"].startswith("2026-06-01T12:00")
    content["ledger_count"] = 1   # any edit breaks the signature: the whole log is verified instead
    (node / CHECKPOINT_FILE).write_text(json.dumps(content))
    log = EgressLog(node)
    cp, records, _, _ = log.verify_incremental()
    assert cp.count == 0 and len(records) == 3


def test_a_clock_two_years_behind_is_refused_and_charges_nothing(tmp_path: Path, at):
    node = charged(tmp_path, keyed=True, rounds=1)
    at(REAL - dt.timedelta(days=730))
    with pytest.raises(PolicyRefusal, match="egress.clock") as refused, EgressGuard.open(node) as guard:
        guard.release(dp_update(2))
    assert "clock reads 2024-06-01" in str(refused.value)
    assert len(ledger_history(node)) == 1
    last = log_records(node)[-1]
    assert last["status"] == "refused" and last["rule"] == "egress.clock"
    assert last["time"] >= log_records(node)[0]["time"]   # the log's times never go back
    at(REAL + dt.timedelta(hours=1))   # control: the clock put right, the same release leaves
    with EgressGuard.open(node) as guard:
        assert guard.release(dp_update(2))["status"] == "released"


def test_a_clock_400_days_ahead_buys_no_second_window(tmp_path: Path, at):
    node = make_node(tmp_path)
    create_node_keypair(node)
    with EgressGuard.open(node) as guard:
        first = guard.release(dp_update(1))
        at(REAL + dt.timedelta(days=400))
        ahead = guard.release(dp_update(2))
    # the second window no longer holds the first release: its year epsilon is the one release alone
    assert ahead["epsilon_year"] == pytest.approx(first["epsilon_cumulative"])
    at(REAL + dt.timedelta(days=1))   # the clock corrected: back before the log's last record
    with pytest.raises(PolicyRefusal, match="egress.clock"), EgressGuard.open(node) as guard:
        guard.release(dp_update(3))
    at(REAL + dt.timedelta(days=400, seconds=30))   # within the tolerance: dated at the last record, released
    with EgressGuard.open(node) as guard:
        assert guard.release(dp_update(3))["status"] == "released"


def test_releases_are_dated_by_the_guard_not_by_the_caller(tmp_path: Path, at):
    """A release stating a date two years ago (a caller's clock) is dated now: the year window holds it."""
    node = make_node(tmp_path)
    old = dp_update(1)
    old = replace(old, charges=[replace(r, created_at=(REAL - dt.timedelta(days=730)).isoformat())
                                for r in old.charges])
    with EgressGuard.open(node) as guard:
        guard.release(old)
        second = guard.release(dp_update(2))
    assert [r.created_at[:10] for r in ledger_history(node)] == ["2026-06-01", "2026-06-01"]
    assert second["epsilon_year"] == pytest.approx(second["epsilon_cumulative"])
