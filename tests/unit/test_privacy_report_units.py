"""The privacy report names each table's unit and epsilon, and takes k from the node's features manifest."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from dp_accounting import PrivacyLedger, Release, get_accountant, group_privacy, ledger_path, privacy_report
from federation.cli import main
from tests.support.contract_fixtures import WINDOW

REPO = Path(__file__).resolve().parents[2]
DELTA = 1e-5
HOUSEHOLD = "one person or household (huishouden_pseudoniem), table casussen"
RECORD = "one record (the export has no person link), table incidents"


def aggregate(table: str, unit: str, sigma: float = 1.4, sensitivity: float = 36.0,
              run_id: str = "analytics-1") -> Release:
    return Release(mechanism="gaussian", noise_multiplier=sigma, sample_rate=1.0, steps=1, run_id=run_id, round=0,
                   kind="dp-aggregate", unit=unit, table=table, sensitivity=sensitivity)


def sgd(sigma: float = 1.0, steps: int = 100, q: float = 0.02, run_id: str = "run-h") -> Release:
    return Release(noise_multiplier=sigma, sample_rate=q, steps=steps, run_id=run_id, round=0, kind="horizontal-update")


def test_gaussian_releases_are_reported_per_table_with_the_accountants_epsilon(tmp_path):
    releases = [aggregate("casussen", HOUSEHOLD), aggregate("casussen", HOUSEHOLD, sigma=2.0, run_id="analytics-2"),
                aggregate("incidents", RECORD, sensitivity=1.0)]
    with PrivacyLedger(ledger_path(tmp_path)) as ledger:
        ledger.record_many(releases)
        report = privacy_report(ledger, DELTA, k=36, k_source="test")
    prv, rdp = get_accountant("prv"), get_accountant("rdp")
    by_table = {line.table: line for line in report.tables}
    assert set(by_table) == {"casussen", "incidents"}
    cases, incidents = by_table["casussen"], by_table["incidents"]
    # Each table's epsilon is the accountant's on that table's own releases; the node's on all of them.
    assert cases.epsilon == prv.epsilon(releases[:2], DELTA)
    assert cases.second_opinion_epsilon == rdp.epsilon(releases[:2], DELTA)
    assert incidents.epsilon == prv.epsilon(releases[2:], DELTA)
    assert report.epsilon == prv.epsilon(releases, DELTA) > cases.epsilon
    assert (cases.unit, cases.releases) == (HOUSEHOLD, 2)
    assert (cases.noise_multipliers, cases.sensitivities) == ((1.4, 2.0), (36.0,))
    assert not cases.record_unit and incidents.record_unit
    words, text = report.guarantee, report.to_text()
    assert "Table casussen, unit one person or household (huishouden_pseudoniem): its 2 DP aggregate" in words
    assert f"({cases.epsilon:.4f}, 1e-05)-DP for adding or removing one such unit" in words
    assert HOUSEHOLD in text and RECORD in text
    # A person who is a unit in every table gets all releases composed: the ledger's epsilon, in words.
    assert "a person who is a unit in every table (casussen, incidents)" in words
    assert f"the ledger's epsilon above, ({report.epsilon:.4f}, 1e-05)-DP, not by the epsilon of one table" in words
    # A record unit covers a person in several records only by group privacy: exact for Gaussian releases (the
    # group moves the release by k sensitivities, mu scales by k), at the same delta, never vacuous.
    two, many = incidents.record_groups
    assert two.k == 2 and two.delta == DELTA and not two.vacuous
    assert two.epsilon == get_accountant("prv").epsilon([aggregate("incidents", RECORD, sigma=0.7, sensitivity=1.0)],
                                                        DELTA)
    assert group_privacy(incidents.epsilon, DELTA, 36).vacuous and not many.vacuous   # the generic bound's
    assert "covered only by group privacy" in words and f"a person in 2 records: ({two.epsilon:.4f}" in words
    assert f"a person in 36 records (as many as the node's k rows per person): ({many.epsilon:.4f}" in words
    assert "exact Gaussian group privacy" in words
    data = json.loads(json.dumps(report.to_dict()))
    assert [t["table"] for t in data["tables"]] == ["casussen", "incidents"] and data["k"] == 36


def test_k_left_out_is_unknown_never_one(tmp_path):
    with PrivacyLedger(ledger_path(tmp_path)) as ledger:
        ledger.record_many([sgd(), aggregate("casussen", HOUSEHOLD)])
        report = privacy_report(ledger, DELTA)
        mixed = privacy_report(ledger, DELTA, k=4, k_source="test")
    assert report.k is None and "unknown" in report.guarantee and "With k = 1" not in report.guarantee
    assert "the person-level guarantee is the same only if a person appears in one area-period row" in report.guarantee
    assert "k, most area-period rows one person appears in: unknown" in report.to_text()
    # Mixed ledger: DP-SGD rows alone, with group privacy from k, then composed with the aggregates.
    rows = mixed.row_level
    assert rows.epsilon == get_accountant("prv").epsilon([sgd()], DELTA) and rows.group.k == 4
    assert f"For a person who appears in at most 4 area-period rows: ({rows.group.epsilon:.4f}" in mixed.guarantee
    eps = rows.group.epsilon + mixed.epsilon_aggregates
    assert f"at most ({eps:.4f}, " in mixed.guarantee and "basic composition" in mixed.guarantee


@pytest.fixture(scope="module")
def police_node(tmp_path_factory) -> Path:
    """A real police node directory with its features manifest (k = 36 in the police contract)."""
    root = tmp_path_factory.mktemp("privacy-units")
    assert main(["generate", "--data-root", str(root), "--cities", "heerlen", "--seed", "7", "--records", "50000", "--months", "24",
                 "--quiet"]) == 0
    node = root / "police"
    for other in ("municipality", "buurtteams"):
        shutil.rmtree(root / other)
    assert main(["node", "init", "--partner", "police", "--node-dir", str(node)]) == 0
    assert main(["features", "--contract", "police", "--node-dir", str(node), *WINDOW]) == 0
    manifest = json.loads((node / "features" / "manifest.json").read_text())
    assert manifest["privacy_unit"]["max_rows_per_person"] == 36
    return node


def _privacy(node: Path, capsys, *extra: str) -> tuple[str, dict]:
    capsys.readouterr()
    assert main(["privacy", "--node-dir", str(node), *extra]) == 0
    text = capsys.readouterr().out
    assert main(["privacy", "--node-dir", str(node), "--json", *extra]) == 0
    return text, json.loads(capsys.readouterr().out)


def test_cli_takes_k_from_the_manifest_and_says_when_it_is_vacuous(police_node, capsys):
    with PrivacyLedger(ledger_path(police_node)) as ledger:
        ledger.record_many([sgd(run_id="run-h"), aggregate("incidents", RECORD, sensitivity=1.0)])
    text, data = _privacy(police_node, capsys)
    assert data["k"] == 36 and data["group"]["k"] == 36 and "manifest.json" in data["k_source"]
    assert "k, most area-period rows one person appears in: 36 (the data contract's max_rows_per_person" in text
    assert "For a person who appears in at most 36 area-period rows" in text
    assert data["row_level"]["group"]["vacuous"] and "vacuous, it promises nothing" in text
    assert "k = 1" not in text
    # The manifest's build statistics: what the bounds cut, per table.
    assert [b["table"] for b in data["bounds"]] == ["incidents"]
    assert "What the contribution bounds cut" in text and "max_cells 1, max_per_cell 1" in text
    # --k wins over the manifest.
    text2, data2 = _privacy(police_node, capsys, "--k", "2")
    assert data2["k"] == 2 and data2["k_source"] == "--k" and data2["group"]["k"] == 2
    assert "at most 2 area-period rows: (" in text2 and "at most 36 area-period rows" not in text2


def test_cli_k_from_the_manifest_is_not_vacuous_when_epsilon_is_small(police_node, tmp_path, capsys):
    node = tmp_path / "node"
    (node / "features").mkdir(parents=True)
    shutil.copy(police_node / "features" / "manifest.json", node / "features" / "manifest.json")
    with PrivacyLedger(ledger_path(node)) as ledger:
        ledger.record(sgd(sigma=8.0, steps=20, q=0.01))
    text, data = _privacy(node, capsys)
    group = data["row_level"]["group"]
    assert group["k"] == 36 and not group["vacuous"] and group["delta"] < 1
    assert f"at most 36 area-period rows: ({group['epsilon']:.4f}, {group['delta']:.3g})-DP" in text
    assert "vacuous" not in text
    # Without a manifest and without --k: k is unknown, said in words.
    (node / "features" / "manifest.json").unlink()
    text, data = _privacy(node, capsys)
    assert data["k"] is None and "unknown" in text and "only if a person appears in one area-period row" in text


def test_cli_refuses_a_delta_that_is_no_probability_and_notes_one_above_the_policy(police_node, capsys):
    """A delta of 0.5 would print epsilon 0 ("(0.0000, 0.5)-DP") as if nothing had been spent."""
    with PrivacyLedger(ledger_path(police_node)) as ledger:
        if not ledger.history():
            ledger.record_many([aggregate("incidents", RECORD, sensitivity=1.0)])
    for bad in ("0", "1", "-1e-5", "2"):
        capsys.readouterr()
        assert main(["privacy", "--node-dir", str(police_node), f"--delta={bad}"]) == 2
        err = capsys.readouterr().err
        assert "--delta" in err and "between 0 and 1" in err and "Traceback" not in err
    capsys.readouterr()
    assert main(["privacy", "--node-dir", str(police_node), "--delta", "0.01", "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["delta"] == 0.01   # the note goes to stderr: --json stays one document
    assert "note: epsilon is reported at delta 0.01, above the site policy's 1e-05" in err
    assert main(["privacy", "--node-dir", str(police_node)]) == 0
    assert "note: epsilon is reported at delta" not in capsys.readouterr().err
