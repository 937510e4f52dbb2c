"""The fairness audit as an equivalence test: what the planted-bias check calls detectable is exactly what the
audit then shows above the threshold (and one step less is not), groupings include non-Western background, and a
transfer city's areas are grouped by the audit column its own contract declares."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from clients.contracts import build_features, load_contract
from federation.config import compose, to_container
from server.report.fairness import audit, audit_groups, cbs_statistics, contract_statistics, group_labels
from server.report.gate import fairness_words
from tests.support.contract_fixtures import CITY_WINDOW
from tests.support.contract_fixtures.cities import write_genk
from tests.support.report_fixtures import write_run

GROUPING, HIGHEST = "migration_background", "3 of 3 (highest)"


def settings(**changes: object) -> dict:
    fs = to_container(compose("default", group="report"))["fairness"]
    fs["groups"] = {GROUPING: fs["groups"][GROUPING]}
    fs["resamples"] = 80   # (the report runs 400; fewer keeps the test fast, the claim is the same)
    fs.update(changes)
    return fs


def holdout(run_dir: Path) -> pd.DataFrame:
    rows = pd.read_csv(run_dir / "holdout_predictions.csv", dtype={"area_code": str, "period": str})
    return rows.rename(columns={"y_dp": "y"})[["area_code", "period", "y", "pred"]]


def bias_check(run_dir: Path, fs: dict) -> tuple[bool, float, str]:
    """(passed, lower end of the bias gap's interval, words) of the audit of a fixture run."""
    result = audit(holdout(run_dir), group_labels(cbs_statistics(fs), fs["groups"]), fs)
    [grouping] = result.groupings
    passed, words = fairness_words(grouping, "bias", float(fs["max_bias_gap"]), float(fs["evidence_level"]),
                                   result.spread)
    return passed, grouping.intervals["bias"][0], words


def test_the_detectable_gap_is_what_a_re_run_on_planted_predictions_shows(tmp_path: Path):
    fs = settings()
    fair = audit(holdout(write_run(tmp_path / "fair")), group_labels(cbs_statistics(fs), fs["groups"]), fs)
    [grouping] = fair.groupings
    found, step, limit = grouping.detectable["bias"], float(fs["detection"]["step"]), float(fs["max_bias_gap"])
    assert grouping.planted_group == HIGHEST and found is not None and limit <= found <= 0.3
    passed, _, words = bias_check(tmp_path / "fair", fs)
    assert passed and "shown within threshold" in words and f"a bias of {found:g} score points planted" in words
    # planting exactly that bias into the run's held-out predictions: the audit shows it above the threshold
    _, low, words = bias_check(write_run(tmp_path / "planted", bias_for=(GROUPING, HIGHEST, -found)), fs)
    assert low > limit and "shown above threshold" in words
    # control: one step less is not shown above it
    _, low, words = bias_check(write_run(tmp_path / "less", bias_for=(GROUPING, HIGHEST, -(found - step))), fs)
    assert low <= limit and "shown above threshold" not in words


def test_a_wide_interval_is_inconclusive_not_a_pass(tmp_path: Path):
    """Noisy predictions (the demo's situation, few areas per group): the same audit cannot show the gap is
    within the threshold, and says so with what it could have detected."""
    passed, _, words = bias_check(write_run(tmp_path / "noisy", noise=0.4, months=2), settings())
    assert not passed and "not shown unfair (inconclusive)" in words and "detectable:" in words


def test_groupings_by_non_western_background_as_well_as_by_total_migration_background():
    fs = to_container(compose("default", group="report"))["fairness"]
    stats = cbs_statistics(fs)
    both = stats[["protected_share", "non_western_share"]]
    assert both.notna().all().all() and ((both["non_western_share"] <= both["protected_share"]).all())
    assert (both["non_western_share"] < both["protected_share"]).mean() > 0.9   # Western backgrounds exist
    labels = group_labels(stats, fs["groups"])
    assert {"migration_background", "non_western_background"} <= set(labels.columns)
    assert (labels["migration_background"] != labels["non_western_background"]).any()


@pytest.fixture
def genk(tmp_path: Path) -> Path:
    node = tmp_path / "genk"
    write_genk(node)
    return node


def test_a_transfer_city_is_audited_from_its_contracts_audit_column(genk: Path):
    config = {"federation": {"nodes": {"genk": {"node_dir": str(genk)}}}}
    stats, problems = contract_statistics(config)
    assert problems == [] and set(stats["statistic"]) == {"sectoren.aandeel_buitenlandse_herkomst"}
    # the areas are those of the city's own features
    built = build_features(load_contract("genk", CITY_WINDOW), genk)
    feature_areas = {str(a) for frame in built.blocks.values() for a in frame["area_code"]}
    assert set(stats.index) & feature_areas and set(stats.index) <= feature_areas | set(built.suppressed_areas)
    fs = to_container(compose("default", group="report"))["fairness"]
    groups = {GROUPING: {**fs["groups"][GROUPING], "bins": 2}}
    labels = audit_groups(cbs_statistics(fs), groups, stats)
    assert labels.loc[list(stats.index), GROUPING].notna().all()
    # control: a grouping not marked contract_audit leaves the city's areas without a group
    plain = audit_groups(cbs_statistics(fs), {GROUPING: {**groups[GROUPING], "contract_audit": False}}, stats)
    assert plain.reindex(list(stats.index))[GROUPING].isna().all()


def test_a_private_table_is_never_read_for_the_audit(genk: Path, monkeypatch):
    from clients.contracts import reading

    read = []
    original = reading.read_raw
    monkeypatch.setattr(reading, "read_raw", lambda spec, node_dir: read.append(spec.name) or original(spec, node_dir))
    contract_statistics({"federation": {"nodes": {"genk": {"node_dir": str(genk)}}}})
    private = {n for n, t in load_contract("genk", CITY_WINDOW).tables.items() if not t.privacy.is_public}
    assert read and not set(read) & private


def test_the_cli_says_an_inconclusive_gap_is_not_shown_to_hold(tmp_path: Path, capsys):
    from federation.cli import main

    run = write_run(tmp_path / "noisy", noise=0.4, months=2)
    assert main(["report", str(run), "fairness.resamples=60"]) == 3
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("NOT RELEASABLE: threshold fairness.")]
    assert rows and any("not shown to hold" in r and "not shown unfair (inconclusive)" in r and "detectable:" in r
                        for r in rows)
    assert not any("exceeded" in r and "inconclusive" in r for r in rows)


def test_a_node_whose_public_table_cannot_be_read_is_named_not_a_traceback(tmp_path: Path, genk: Path):
    config = {"federation": {"nodes": {"genk": {"node_dir": str(genk)}, "sant_boi": {"node_dir": str(tmp_path / "x")}}}}
    stats, problems = contract_statistics(config)
    assert len(problems) == 1 and problems[0].startswith("node 'sant_boi': ") and "\n" not in problems[0]
    assert set(stats["node"]) == {"genk"}   # control: the readable node is still audited
