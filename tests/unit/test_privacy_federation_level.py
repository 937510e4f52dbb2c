"""Issue 26, items 6, 10 and 11 (bound): the federation-level guarantee for a person present in every node,
exact group privacy of Gaussian releases, and OpenDP's proven bound beside the continuous Gaussian's curve."""
from __future__ import annotations

import json

import pytest

from dp_accounting import PrivacyLedger, Release, get_accountant, group_privacy, ledger_path, noise_multiplier
from dp_accounting.federation_level import federation_guarantee
from dp_accounting.opendp_bound import opendp_epsilon
from dp_accounting.report import gaussian_group_privacy, privacy_report
from federation.cli import main

DELTA = 1e-5
# Heerlen's five private tables: police 1, municipality 3, buurtteams 1.
TABLES = {"police": ["incidents"], "municipality": ["uitkeringen", "schulden", "meldingen"], "buurtteams": ["casussen"]}


def aggregate(table: str, z: float, run_id: str = "demo") -> Release:
    return Release(mechanism="gaussian", noise_multiplier=z, sample_rate=1.0, steps=1, run_id=run_id, round=0,
                   kind="dp-aggregate", unit=f"one person, table {table}", table=table, sensitivity=6.0)


@pytest.fixture(scope="module")
def z() -> float:
    return noise_multiplier(3.0, DELTA, 1.0, 1)


@pytest.fixture
def nodes(tmp_path, z):
    dirs = []
    for node, tables in TABLES.items():
        node_dir = tmp_path / node
        with PrivacyLedger(ledger_path(node_dir)) as ledger:
            ledger.record_many([aggregate(t, z) for t in tables])
        dirs.append(node_dir)
    return dirs


def test_a_person_in_every_node_gets_every_release_composed(nodes, z):
    histories = {}
    for node_dir in nodes:
        with PrivacyLedger(ledger_path(node_dir), create=False) as ledger:
            histories[node_dir.name] = ledger.history()
    fed = federation_guarantee(histories, DELTA)
    # Five Gaussian releases at the same z: exactly one Gaussian with mu * sqrt(5) -> 7.62 at 1e-5.
    assert fed.epsilon == pytest.approx(7.62, abs=0.01)
    assert fed.epsilon == get_accountant("prv").epsilon([r for h in histories.values() for r in h], DELTA)
    # Control: the highest node alone (the municipality's three tables) is what was printed before, 5.62.
    assert fed.highest_node_epsilon == pytest.approx(5.62, abs=0.01) and fed.highest_node_epsilon < fed.epsilon
    assert {n.node: n.epsilon for n in fed.nodes}["municipality"] == fed.highest_node_epsilon
    assert len(fed.tables) == 5 and "7.62" in fed.sentence()


def test_cli_prints_the_federation_level_epsilon_beside_each_node(nodes, capsys):
    argv = ["privacy", *[a for d in nodes for a in ("--node-dir", str(d))]]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "Federation-level guarantee for a person present in every node" in text
    assert "every node composed" in text and "7.62" in text
    assert main([*argv, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["federation"]["epsilon"] == pytest.approx(7.62, abs=0.01)
    assert [n["node"] for n in data["federation"]["nodes"]] == ["police", "municipality", "buurtteams"]
    # Control: one node given, no federation-level claim.
    assert main(["privacy", "--node-dir", str(nodes[0]), "--json"]) == 0
    assert "federation" not in json.loads(capsys.readouterr().out)


def test_group_privacy_of_gaussian_releases_is_exact(z):
    own = [aggregate("incidents", z)]
    eps = get_accountant("prv").epsilon(own, DELTA)
    exact = gaussian_group_privacy(own, DELTA, 5, get_accountant("prv"))
    # A group of 5 is one Gaussian with mu scaled by 5: (21.0, 1e-5), not vacuous.
    assert exact.epsilon == pytest.approx(21.0, abs=0.05) and exact.delta == DELTA and not exact.vacuous
    assert exact.epsilon == get_accountant("prv").epsilon([aggregate("incidents", z / 5)], DELTA)
    # Control: the generic bound at the same epsilon is vacuous for k = 5.
    assert group_privacy(eps, DELTA, 5).vacuous
    with pytest.raises(Exception):
        gaussian_group_privacy([Release(noise_multiplier=1.0, sample_rate=0.1, steps=3, run_id="r", round=0,
                                        kind="horizontal-update")], DELTA, 2, get_accountant("prv"))


def test_the_report_uses_the_exact_group_bound_for_a_record_table(tmp_path, z):
    record = Release(mechanism="gaussian", noise_multiplier=z, sample_rate=1.0, steps=1, run_id="r", round=0,
                     kind="dp-aggregate", unit="one record (the export has no person link), table incidents",
                     table="incidents", sensitivity=1.0)
    with PrivacyLedger(ledger_path(tmp_path)) as ledger:
        ledger.record(record)
        report = privacy_report(ledger, DELTA, k=5, k_source="test")
    five = [g for g in report.tables[0].record_groups if g.k == 5][0]
    assert five.epsilon == pytest.approx(21.0, abs=0.05) and not five.vacuous
    assert "a person in 5 records (as many as the node's k rows per person): (21.0" in report.guarantee
    assert "exact Gaussian group privacy" in report.guarantee


def test_the_discrete_gaussian_bound_is_stated_with_opendps_own(tmp_path, z):
    own = [aggregate("incidents", z)]
    proven = opendp_epsilon(own, DELTA)
    curve = get_accountant("prv").epsilon(own, DELTA)
    # OpenDP's proven map (zCDP, converted) is looser than the continuous curve: 3.23 against 2.98.
    assert curve == pytest.approx(2.98, abs=0.01) and proven == pytest.approx(3.23, abs=0.01)
    # rho adds up: five releases are one zCDP release of five times the rho.
    assert opendp_epsilon(own * 5, DELTA) > proven
    with PrivacyLedger(ledger_path(tmp_path)) as ledger:
        ledger.record_many(own)
        report = privacy_report(ledger, DELTA)
    assert report.opendp_epsilon_aggregates == proven
    assert "continuous Gaussian's exact curve" in report.to_text() and f"{proven:.4f}" in report.to_text()
    # Control: no Gaussian release, no statement.
    assert opendp_epsilon([Release(noise_multiplier=1.0, sample_rate=0.1, steps=3, run_id="r", round=0,
                                   kind="horizontal-update")], DELTA) is None


def test_the_demos_privacy_table_shows_the_federation_level_epsilon(nodes, tmp_path):
    from devtools.demo import federation_privacy_line

    run_dir = tmp_path / "run"
    (run_dir / "privacy").mkdir(parents=True)
    (run_dir / "privacy" / "police.json").write_text(json.dumps({"epsilon": 2.98, "delta": DELTA, "accountant": "prv"}))
    line = federation_privacy_line(nodes, run_dir)
    assert line.startswith("every node composed: epsilon 7.62 (delta 1e-05, PRV)")
    assert "all 5 tables of the 3 nodes (highest node alone 5.62)" in line
    # Control: from the ledgers, not written: two nodes only give less.
    assert "epsilon 6.6" in federation_privacy_line(nodes[1:], run_dir)


def test_the_nodes_group_guarantee_is_exact_for_a_gaussian_only_ledger(tmp_path, z):
    with PrivacyLedger(ledger_path(tmp_path / "a")) as ledger:
        ledger.record(aggregate("casussen", z))
        gaussian = privacy_report(ledger, DELTA, k=5, k_source="test")
    assert gaussian.group.epsilon == pytest.approx(21.0, abs=0.05) and gaussian.group.delta == DELTA
    # Control: a ledger with a DP-SGD release keeps the generic bound (a subsampled group is sampled more often).
    with PrivacyLedger(ledger_path(tmp_path / "b")) as ledger:
        ledger.record_many([aggregate("casussen", z), Release(noise_multiplier=1.0, sample_rate=0.02, steps=10,
                                                              run_id="h", round=1, kind="horizontal-update")])
        mixed = privacy_report(ledger, DELTA, k=5, k_source="test")
    assert mixed.group.delta > DELTA and mixed.group.epsilon == pytest.approx(5 * mixed.epsilon)


def test_a_group_beyond_the_accountants_range_is_vacuous_not_an_error(z):
    huge = gaussian_group_privacy([aggregate("incidents", z)], DELTA, 2000, get_accountant("prv"))
    assert huge.vacuous and huge.epsilon == float("inf") and huge.delta == DELTA


def test_a_record_unit_table_is_named_in_the_federation_sentence(z):
    record = Release(mechanism="gaussian", noise_multiplier=z, sample_rate=1.0, steps=1, run_id="r", round=0,
                     kind="dp-aggregate", unit="one record (the export has no person link), table incidents",
                     table="incidents", sensitivity=1.0)
    fed = federation_guarantee({"police": [record], "buurtteams": [aggregate("casussen", z)]}, DELTA)
    assert fed.record_tables == ("police/incidents",) and "in police/incidents the unit is one record" in fed.sentence()
    assert federation_guarantee({"buurtteams": [aggregate("casussen", z)]}, DELTA).record_tables == ()


def test_a_node_without_ledger_or_given_twice_is_one_clear_line(nodes, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    for extra, expected in (([str(tmp_path / "empty")], "no privacy ledger"), ([str(nodes[0])], "given twice")):
        capsys.readouterr()
        assert main(["privacy", "--node-dir", str(nodes[0]), "--node-dir", *extra]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and expected in err[0] and "Traceback" not in err[0]
