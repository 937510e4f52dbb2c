"""The privacy report and `pulse-twin privacy`: numbers from the history, guarantees in words."""
from __future__ import annotations

import argparse
import json
import math
import shutil
from pathlib import Path

import pytest

from dp_accounting import (
    BudgetCaps, PrivacyLedger, Release, get_accountant, group_privacy, ledger_path, privacy_report,
)
from federation.commands import privacy as privacy_command
from federation.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
DELTA = 1e-5


def release(run_id: str, round_: int, sigma: float = 1.0, steps: int = 100) -> Release:
    return Release(noise_multiplier=sigma, sample_rate=0.02, steps=steps, run_id=run_id, round=round_,
                   kind="horizontal-update")


@pytest.fixture()
def ledger(tmp_path):
    with PrivacyLedger(ledger_path(tmp_path)) as opened:
        opened.record_many([release("run-a", 0), release("run-a", 1), release("run-b", 0, sigma=1.4),
                            release("run-a", 2)])
        opened.record_fact("run-b", "psi_set_size", 57, "keys sent in PSI")
        yield opened


def test_group_privacy_formula():
    row = group_privacy(1.2, DELTA, 1)
    assert (row.epsilon, row.delta, row.vacuous) == (1.2, DELTA, False)
    person = group_privacy(1.0, 1e-5, 3)
    assert person.epsilon == 3.0
    assert person.delta == pytest.approx(3 * math.e ** 2 * 1e-5)  # 2.2167e-4
    assert not person.vacuous
    assert group_privacy(2.0, 1e-5, 10).vacuous  # 10 * e^18 * 1e-5 = 6.6e2
    with pytest.raises(ConfigError, match="k"):
        group_privacy(1.0, DELTA, 0)


def test_report_numbers_come_from_the_history(ledger):
    caps = BudgetCaps(epsilon_per_year=5.0, epsilon_lifetime=12.0, delta=DELTA)
    report = privacy_report(ledger, DELTA, k=1, caps=caps)
    history = ledger.history()
    prv, rdp = get_accountant("prv"), get_accountant("rdp")
    assert report.epsilon == prv.epsilon(history, DELTA)
    assert report.second_opinion == "rdp"
    assert report.second_opinion_epsilon == rdp.epsilon(history, DELTA) > report.epsilon
    assert report.units == ("area-period row",) and report.releases == 4 and report.steps == 400
    # By run: run-a alone is its three rounds; run-a's cumulative includes run-b, recorded before run-a's last round.
    by_run = {line.run_id: line for line in report.runs}
    assert by_run["run-a"].epsilon_alone == prv.epsilon(ledger.history(run_id="run-a"), DELTA)
    assert by_run["run-a"].epsilon_cumulative == report.epsilon
    assert by_run["run-b"].epsilon_cumulative == prv.epsilon(history[:3], DELTA)
    assert by_run["run-a"].rounds == 3
    # By round, cumulative in recording order, ending at the total.
    assert [(r.run_id, r.round) for r in report.rounds] == [("run-a", 0), ("run-a", 1), ("run-b", 0), ("run-a", 2)]
    cumulative = [r.epsilon_cumulative for r in report.rounds]
    assert cumulative == sorted(cumulative) and cumulative[-1] == report.epsilon
    assert report.budget.lifetime_left == pytest.approx(12.0 - report.epsilon)
    assert [f.value for f in report.facts] == [57]
    json.loads(json.dumps(report.to_dict()))  # plain data
    assert len(privacy_report(ledger, DELTA, max_rounds=2).rounds) == 2


def test_guarantee_in_words_row_and_person(ledger):
    report = privacy_report(ledger, DELTA, k=1)
    words = report.guarantee
    assert f"({report.epsilon:.4f}, 1e-05)-DP for adding or removing one area-period row" in words
    assert f"(PRV accountant; RDP gives {report.second_opinion_epsilon:.4f})" in words
    assert "k = 1" in words and "the same" in words

    report3 = privacy_report(ledger, DELTA, k=3)
    eps3, delta3 = 3 * report3.epsilon, 3 * math.exp(2 * report3.epsilon) * DELTA
    assert report3.group.epsilon == pytest.approx(eps3) and report3.group.delta == pytest.approx(delta3)
    assert f"at most 3 area-period rows: ({eps3:.4f}, {delta3:.3g})-DP" in report3.guarantee
    assert "k*exp((k-1)*epsilon)*delta" in report3.guarantee

    vacuous = privacy_report(ledger, DELTA, k=12)
    assert vacuous.group.vacuous
    assert "vacuous" in vacuous.guarantee and ">= 1" in vacuous.guarantee
    assert "vacuous" in vacuous.to_text()


def test_rdp_primary_names_prv_as_second_opinion(ledger):
    report = privacy_report(ledger, DELTA, accountant="rdp")
    assert report.accountant == "rdp" and report.second_opinion == "prv"
    assert "(RDP accountant; PRV gives" in report.guarantee


def test_empty_ledger_says_nothing_was_released(tmp_path):
    with PrivacyLedger(ledger_path(tmp_path)) as empty:
        report = privacy_report(empty, DELTA, k=2)
    assert report.epsilon == 0.0 and report.runs == () and "No DP release" in report.guarantee


def _cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="pulse-twin")
    privacy_command.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["privacy", *argv])
    return args.func(args)


def test_cli_reads_caps_and_delta_from_the_site_policy(ledger, tmp_path, capsys):
    shutil.copy(REPO / "configs" / "site_policy" / "police.yaml", tmp_path / "site_policy.yaml")
    assert _cli(["--node-dir", str(tmp_path), "--k", "2", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["budget"]["caps"] == {"epsilon_per_year": 8.0, "epsilon_lifetime": 24.0, "delta": 1e-5,
                                      "accountant": "prv"}
    assert data["epsilon"] == ledger.epsilon(1e-5)
    assert data["group"]["k"] == 2 and "at most 2 area-period rows" in data["guarantee"]

    assert _cli(["--node-dir", str(tmp_path), "--cap-life", "20", "--accountant", "rdp"]) == 0
    text = capsys.readouterr().out
    assert "cap 20, left" in text and "cap 8, left" in text and "(RDP accountant; PRV gives" in text


def test_cli_without_policy_uses_flags_and_refuses_a_missing_ledger(tmp_path, capsys):
    with pytest.raises(ConfigError, match="no privacy ledger"):
        _cli(["--node-dir", str(tmp_path)])
    with pytest.raises(ConfigError, match="no such directory"):
        _cli(["--node-dir", str(tmp_path / "absent")])
    with PrivacyLedger(ledger_path(tmp_path)) as opened:
        opened.record(release("run-a", 0))
    assert _cli(["--node-dir", str(tmp_path), "--cap-year", "3", "--delta", "1e-6", "--rounds", "all"]) == 0
    text = capsys.readouterr().out
    assert "delta 1e-06" in text and "cap 3, left" in text and "no cap set" in text
