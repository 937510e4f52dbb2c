"""A kept release whose cells are gone is never drawn and charged again silently: the node refuses, naming the
missing store and the run that charged it, and only `analytics --redraw-lost TABLE` draws afresh (charged again,
named in the egress record). A ledger deleted or replaced is named as such, with `node recover-ledger`, by
`privacy`, `analytics` and `node audit` (exit 4)."""
from __future__ import annotations

import contextlib
import io
import json
import logging
import shutil
from pathlib import Path

import pytest

from tests.support.contract_fixtures import generated_window

from clients.site_policy import append_approval
from dp_accounting import PrivacyLedger, ledger_path
from federation.bundle import running_code_hash
from federation.cli import main

STORE = Path("state") / "releases" / "incidents"


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    """A police node with one charged release of table incidents (run a1)."""
    root = tmp_path_factory.mktemp("lost")
    assert main(["generate", "--data-root", str(root), "--cities", "heerlen", "--seed", "7", "--records", "20000",
                 "--months", "6", "--quiet"]) == 0
    node = root / "police"
    assert main(["node", "init", "--partner", "police", "--node-dir", str(node)]) == 0
    generated_window(node, months=6)
    code, _, _ = analytics(node, "--run-id", "a1")
    assert code == 0
    return node


@pytest.fixture
def node(base, tmp_path) -> Path:
    copy = tmp_path / "police"
    shutil.copytree(base, copy)
    return copy


def run(argv: list[str], caplog) -> tuple[int, str, str]:
    """(exit code, stdout, the error line the CLI logged)."""
    caplog.clear()
    out = io.StringIO()
    with contextlib.redirect_stdout(out), caplog.at_level(logging.ERROR):
        code = main(argv)
    return code, out.getvalue(), "\n".join(r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR)


def analytics(node: Path, *extra: str, caplog=None) -> tuple[int, str, str]:
    append_approval(node, {"bundle_hash": running_code_hash(), "by": "test", "run": "any"})
    argv = ["analytics", "--node-dir", str(node), "--stat", "burglary_per_1000", "--by", "city", *extra]
    if caplog is None:
        return main(argv), "", ""
    return run(argv, caplog)


def charges(node: Path) -> list:
    with PrivacyLedger(ledger_path(node), create=False) as ledger:
        return [r for r in ledger.history() if r.table == "incidents"]


def test_deleted_cells_are_refused_naming_the_store_and_the_run(node, caplog):
    (data,) = (node / STORE).glob("*.parquet")
    data.unlink()
    code, _, error = analytics(node, caplog=caplog)
    assert code == 2
    assert str(data) in error and "run a1" in error and "--redraw-lost incidents" in error
    assert [r.run_id for r in charges(node)] == ["a1"]   # nothing drawn, nothing charged


def test_redraw_lost_is_deliberate_charged_again_and_logged(node, caplog):
    shutil.rmtree(node / "state" / "releases")
    code, _, error = analytics(node, caplog=caplog)
    assert code == 2 and "run a1" in error and str(node / STORE) in error
    code, text, _ = analytics(node, "--redraw-lost", "incidents", "--run-id", "a2", caplog=caplog)
    assert code == 0 and "drawn afresh on --redraw-lost" in text and "a1" in text
    assert [r.run_id for r in charges(node)] == ["a1", "a2"]   # the earlier charge stays, the new draw is charged
    last = json.loads((node / "state" / "egress.jsonl").read_text().splitlines()[-1])
    assert last["params"]["redrawn_lost_releases"] == {"incidents": ["a1"]} and last["releases"]
    code, text, _ = run(["node", "audit", "--node-dir", str(node)], caplog)
    assert code == 0 and "the kept cells of run(s) a1 were lost" in text
    # The new store accounts for a1: later runs re-use it, and the option now names nothing lost.
    code, text, _ = analytics(node, "--run-id", "a3", caplog=caplog)
    assert code == 0 and "charged nothing" in text and len(charges(node)) == 2
    code, _, error = analytics(node, "--redraw-lost", "incidents", caplog=caplog)
    assert code == 2 and "--redraw-lost incidents" in error and len(charges(node)) == 2


def test_a_charge_without_a_kept_store_is_refused_like_a_deleted_one(node, caplog):
    """A crash between the charge and `commit()` leaves what this leaves: the ledger and the log hold run a1's
    charge, and no store was ever written. The payload may have left: refused like a deleted store."""
    shutil.rmtree(node / STORE)
    code, _, error = analytics(node, caplog=caplog)
    assert code == 2 and "run a1" in error and "stopped between the charge and keeping the store" in error
    assert len(charges(node)) == 1


def test_a_truncated_store_names_the_parquet_file(node, caplog):
    (data,) = (node / STORE).glob("*.parquet")
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    code, _, error = analytics(node, caplog=caplog)
    assert code == 2 and error.split(": the node's stored release is unreadable")[0].endswith(str(data))


def test_a_deleted_ledger_is_named_with_recover_ledger(node, caplog):
    ledger_path(node).unlink()
    for argv in (["privacy", "--node-dir", str(node)], ["node", "audit", "--node-dir", str(node)]):
        code, _, error = run(argv, caplog)
        assert code == 4 and "records 1 charged" in error and "node recover-ledger" in error, argv
    code, _, error = analytics(node, caplog=caplog)
    assert code == 4 and "node recover-ledger" in error and "holds no charge" not in error
    assert not ledger_path(node).exists()   # nothing created in its place


def test_a_ledger_replaced_by_text_exits_4_and_recover_ledger_rebuilds_it(node, caplog):
    for side in ("-wal", "-shm"):
        ledger_path(node).with_name("ledger.sqlite" + side).unlink(missing_ok=True)
    ledger_path(node).write_text("hello\n")
    for argv in (["node", "audit", "--node-dir", str(node)], ["privacy", "--node-dir", str(node)]):
        code, _, error = run(argv, caplog)
        assert code == 4 and "not a usable privacy ledger" in error and "node recover-ledger" in error, argv
    assert run(["node", "recover-ledger", "--node-dir", str(node), "--yes"], caplog)[0] == 0
    assert run(["node", "audit", "--node-dir", str(node)], caplog)[0] == 0
    assert [r.run_id for r in charges(node)] == ["a1"]


def test_privacy_on_a_node_that_released_nothing_still_says_so(tmp_path, caplog):
    node = tmp_path / "fresh"
    assert main(["node", "init", "--partner", "police", "--node-dir", str(node)]) == 0
    code, _, error = run(["privacy", "--node-dir", str(node)], caplog)
    assert code == 2 and "no privacy ledger" in error
