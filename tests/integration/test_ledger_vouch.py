"""The privacy ledger and the egress log vouch for each other: every way of tampering with either makes
the guard refuse all releases (rule ledger-vouch, nothing charged) and `node audit` fail, alike; the
operator's way back is `node recover-ledger`, which rebuilds the ledger only from a log that verifies."""
from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path
from typing import Callable

import pytest

from dp_accounting import PrivacyLedger, get_accountant, ledger_path
from federation.cli import main as cli_main
from clients.egress import EgressGuard, LogTampered
from clients.egress.audit import run_audit
from clients.egress.recover import recover_ledger
from clients.egress.vouch import LedgerMismatch
from tests.integration.test_egress_guard import dp_update, ledger_history, log_records, make_node, release

LOG = Path("state") / "egress.jsonl"
HEAD = Path("state") / "egress.head"


def charged_node(tmp_path: Path, name: str = "a", rounds: int = 3) -> Path:
    """A node that released `rounds` DP updates through its guard (and one refusal in between)."""
    root = tmp_path / name
    root.mkdir()
    node = make_node(root)
    with EgressGuard.open(node) as guard:
        for r in range(1, rounds + 1):
            guard.release(dp_update(r))
    return node


def sql(node: Path, *statements: str) -> None:
    db = sqlite3.connect(ledger_path(node))
    for statement in statements:
        db.execute(statement)
    db.commit()
    db.close()


def rewrite_log(node: Path, edit: Callable[[list[dict]], list[dict]], rechain: bool) -> None:
    """Edit the log's records; with `rechain`, recompute every hash and the head as a careful forger would."""
    from clients.egress.log import GENESIS, record_hash

    records = edit(log_records(node))
    if rechain:
        prev = GENESIS
        for seq, record in enumerate(records):
            record.update(seq=seq, prev_hash=prev)
            record["hash"] = prev = record_hash(record)
        (node / HEAD).write_text(json.dumps({"count": len(records), "hash": prev}))
    (node / LOG).write_text("".join(json.dumps(r, sort_keys=True, separators=(",", ":")) + "\n" for r in records))


def _other_ledger(node: Path, tmp_path: Path) -> None:
    other = charged_node(tmp_path, "other", rounds=1)
    # another node's ledger: same schema, its own releases, named after its own partner
    sql(other, "DROP TRIGGER IF EXISTS releases_no_update", "UPDATE releases SET node = 'municipality'")
    shutil.copy(ledger_path(other), ledger_path(node))


def _edit_middle(records: list[dict]) -> list[dict]:
    records[1]["bytes"] += 1
    return records


def _drop_middle_charge(records: list[dict]) -> list[dict]:
    return records[:1] + records[2:]


TAMPERING: dict[str, tuple[Callable[[Path, Path], None], bool]] = {
    # name: (what is done to the node, whether `node recover-ledger` can repair it from the log)
    "ledger deleted": (lambda n, t: ledger_path(n).unlink(), True),
    "ledger emptied": (lambda n, t: sql(n, "DROP TRIGGER IF EXISTS releases_no_delete", "DELETE FROM releases"), True),
    "a ledger row deleted": (lambda n, t: sql(n, "DROP TRIGGER IF EXISTS releases_no_delete",
                                              "DELETE FROM releases WHERE id = 2"), True),
    "noise multiplier x100": (lambda n, t: sql(n, "DROP TRIGGER IF EXISTS releases_no_update",
                                               "UPDATE releases SET noise_multiplier = noise_multiplier * 100"), True),
    "another node's ledger copied in": (_other_ledger, True),
    "a release charged behind the guard": (
        lambda n, t: PrivacyLedger(ledger_path(n)).record(release(run_id="side", round=1)), True),
    "a log record edited": (lambda n, t: rewrite_log(n, _edit_middle, rechain=False), False),
    "log records reordered": (lambda n, t: rewrite_log(n, lambda r: [r[0], r[2], r[1]], rechain=False), False),
    "a log record edited, chain and head rewritten": (lambda n, t: rewrite_log(n, _edit_middle, rechain=True), False),
    "a charged record deleted, chain and head rewritten": (
        lambda n, t: rewrite_log(n, _drop_middle_charge, rechain=True), False),
}


@pytest.mark.parametrize("case", list(TAMPERING))
def test_guard_and_audit_agree_on_every_tampering(tmp_path: Path, case: str):
    node = charged_node(tmp_path)
    with EgressGuard.open(node) as guard:   # the guard has verified (and checkpointed) this state
        guard.vouched()
    before = len(log_records(node))
    tamper, repairable = TAMPERING[case]
    tamper(node, tmp_path)
    ledger_before = [r.to_dict() for r in ledger_history(node)] if ledger_path(node).exists() else None

    with pytest.raises(LogTampered) as refused, EgressGuard.open(node) as guard:
        guard.release(dp_update(9))
    with pytest.raises(LogTampered) as audited:
        run_audit(node)
    if isinstance(refused.value, LedgerMismatch):
        assert "refused by rule ledger-vouch" in str(refused.value)
    # Nothing was charged or recorded by the refused release.
    assert len(log_records(node)) in (before, before - 1)
    if ledger_before is not None:
        assert [r.to_dict() for r in ledger_history(node)] == ledger_before

    if repairable:
        done = recover_ledger(node)
        assert done["status"] == "rebuilt"
        run_audit(node)
        with EgressGuard.open(node) as guard:
            record = guard.release(dp_update(9))
        # The budget continues from what really left the node: the three updates, then this one.
        assert len(ledger_history(node)) == 4
        expected = get_accountant("rdp").epsilon([release(round=r) for r in (1, 2, 3, 9)], 1e-5)
        assert record["epsilon_cumulative"] == pytest.approx(expected, rel=1e-9)
    else:
        with pytest.raises(LogTampered):
            recover_ledger(node)


def test_a_deleted_ledger_does_not_reset_the_budget(tmp_path: Path):
    """The reported attack: a node refuses a release over its cap; deleting the ledger must not let it through."""
    node = charged_node(tmp_path, rounds=1)
    with EgressGuard.open(node) as guard:
        spent = guard.ledger.epsilon(1e-5, accountant="rdp")
    ledger_path(node).unlink()
    with pytest.raises(LedgerMismatch, match=r"missing or empty.*records 1 charged"), EgressGuard.open(node) as guard:
        guard.release(dp_update(2))
    assert cli_main(["node", "recover-ledger", "--node-dir", str(node), "--yes"]) == 0
    with EgressGuard.open(node) as guard:
        assert guard.ledger.epsilon(1e-5, accountant="rdp") == pytest.approx(spent, rel=1e-12)


def test_recovery_of_an_agreeing_ledger_changes_nothing_and_keeps_the_old_one(tmp_path: Path):
    node = charged_node(tmp_path)
    assert recover_ledger(node)["status"] == "unchanged"
    sql(node, "DROP TRIGGER IF EXISTS releases_no_update", "UPDATE releases SET steps = 1")
    done = recover_ledger(node)
    assert done["status"] == "rebuilt" and Path(done["old_ledger"]).exists()
    assert all(r.steps == 50 for r in ledger_history(node))


def test_every_record_states_the_ledger_digest_after_it(tmp_path: Path):
    from clients.egress.vouch import plain_release, running_digests

    node = charged_node(tmp_path)
    digests = running_digests([plain_release(r) for r in ledger_history(node)])
    assert [(r["ledger_count"], r["ledger_digest"]) for r in log_records(node)] == [(i, digests[i]) for i in (1, 2, 3)]


def test_the_guard_verifies_old_records_too_not_only_the_tail(tmp_path: Path):
    """An edit to the first record after many releases is caught before the next release."""
    node = charged_node(tmp_path, rounds=6)
    rewrite_log(node, lambda r: [{**r[0], "rows": 1}, *r[1:]], rechain=False)
    with pytest.raises(LogTampered, match=r"record|records"), EgressGuard.open(node) as guard:
        guard.release(dp_update(7))


def _torn_append(node: Path) -> bytes:
    """What a crash or a full disk in the middle of the guard's append leaves: the ledger charged (the guard
    charges first), the log's new line cut off before its newline, the head not yet moved."""
    PrivacyLedger(ledger_path(node)).record(release(run_id="cut", round=4))
    tail = json.dumps({"kind": "dp-update", "run_id": "cut", "round": 4, "seq": 3, "status": "rel"})[:60].encode()
    with open(node / LOG, "ab") as handle:
        handle.write(tail)
    return tail


def test_an_append_cut_off_is_named_as_such_and_recovery_sets_it_aside(tmp_path: Path, capsys):
    node = charged_node(tmp_path)
    tail = _torn_append(node)
    torn = r"line 4: the last record is incomplete.*3 records before it and the head agree.*node recover-ledger"
    with pytest.raises(LogTampered, match=torn):
        run_audit(node)
    with pytest.raises(LogTampered, match=torn), EgressGuard.open(node) as guard:
        guard.release(dp_update(9))
    assert cli_main(["node", "recover-ledger", "--node-dir", str(node), "--yes"]) == 0
    out = capsys.readouterr().out
    assert "incomplete last record" in out and "set aside as" in out and "1 release(s) of the old ledger" in out
    side = list((node / "state").glob("egress.jsonl.torn-*"))
    assert len(side) == 1 and side[0].read_bytes() == tail
    run_audit(node)
    with EgressGuard.open(node) as guard:
        record = guard.release(dp_update(9))
    expected = get_accountant("rdp").epsilon([release(round=r) for r in (1, 2, 3, 9)], 1e-5)
    assert record["epsilon_cumulative"] == pytest.approx(expected, rel=1e-9)


def test_a_cut_line_the_head_counts_is_no_torn_append_and_recovery_refuses(tmp_path: Path):
    """Only a tail the head does not count yet can be an unfinished append; a counted record cut short was
    edited, and the log can no longer vouch for it."""
    node = charged_node(tmp_path)
    text = (node / LOG).read_bytes()
    (node / LOG).write_bytes(text[:-40])   # the last counted record loses its end and its newline
    with pytest.raises(LogTampered, match="line 3: not a JSON record"):
        run_audit(node)
    with pytest.raises(LogTampered, match="not a JSON record"):
        recover_ledger(node)
    assert not list((node / "state").glob("egress.jsonl.torn-*"))
