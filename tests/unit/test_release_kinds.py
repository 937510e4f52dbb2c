"""The vertical release kind is named for what it is (one DP release per private table, "dp-aggregate"); a ledger
written with the old name ("vertical-embeddings") still reads, composes and reports under the new name."""
from __future__ import annotations

from dp_accounting import PrivacyLedger, Release, get_accountant
from dp_accounting.release import kind_name
from dp_accounting.report import privacy_report
from federation.proposal import RELEASE_KINDS


def _release(kind: str, run: str) -> Release:
    return Release(mechanism="gaussian", noise_multiplier=1.2, sample_rate=1.0, steps=1, run_id=run, round=1,
                   kind=kind, unit="record")


def test_no_release_kind_names_the_removed_split_learning():
    assert "vertical-embeddings" not in RELEASE_KINDS.values() and RELEASE_KINDS["vertical"] == "dp-aggregate"


def test_an_old_ledger_still_reads_and_reports_the_new_name(tmp_path):
    with PrivacyLedger(tmp_path / "ledger.sqlite") as ledger:
        ledger.record(_release("vertical-embeddings", "old-run"))
        ledger.record(_release("dp-aggregate", "new-run"))
        history = ledger.history()
        assert [r.kind for r in history] == ["vertical-embeddings", "dp-aggregate"]   # stored as written
        report = privacy_report(ledger, 1e-5, accountant="rdp")
    assert [line.kinds for line in report.runs] == [("dp-aggregate",), ("dp-aggregate",)]
    # control: the two releases compose like any two identical releases, whatever their stored name
    same = [_release("dp-aggregate", "a"), _release("dp-aggregate", "b")]
    assert get_accountant("rdp").epsilon(history, 1e-5) == get_accountant("rdp").epsilon(same, 1e-5)
    assert kind_name("horizontal-update") == "horizontal-update"
