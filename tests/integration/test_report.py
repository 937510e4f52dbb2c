"""`pulse-twin report`: the gate refuses when a threshold is crossed, receipts come from the ledger,
intervals are checked on held-out areas, and bad input gets one line naming the file."""
import json
import re

import numpy as np
import pandas as pd
import pytest

from federation.cli import main
from server.report.gate import gate_checks
from server.report.intervals import conformal_intervals, conformal_quantile
from server.report.mia import membership_audit
from tests.support.report_fixtures import SUPPRESSED, write_run

NOT_RELEASABLE = 3


def report(run_dir, capsys, *extra):
    code = main(["report", str(run_dir), *extra])
    out = capsys.readouterr()
    page = (run_dir / "report" / "report.html").read_text() if (run_dir / "report" / "report.html").is_file() else ""
    return code, out.out, out.err, page


def test_fair_run_is_releasable_with_coverage_printed_and_receipts_from_the_ledger(tmp_path, capsys):
    run = write_run(tmp_path / "run")
    code, out, err, page = report(run, capsys)
    assert code == 0, out + err
    coverage = float(re.search(r"interval coverage on held-out areas: ([\d.]+)%", out).group(1)) / 100
    assert abs(coverage - 0.90) <= 0.05
    assert "Releasable" in page and "Not releasable" not in page
    assert page.count('class="area predicted"') == 53 and page.count('class="area suppressed"') == len(SUPPRESSED)
    for partner in ("police", "municipality", "buurtteams"):
        ledger = json.loads((run / "privacy" / f"{partner}.json").read_text())
        block = page.split(f"data-partner='{partner}'")[1].split("</details>")[0]
        shown = {float(x) for x in re.findall(r"epsilon <b>([\d.]+)</b>", block)}
        assert shown == {round(ledger["epsilon"], 2)}
        assert "Nederlands" in block and "English" in block and f"delta {ledger['delta']:g}" in block
    for png in ("map.png", "yardstick.png", "fairness.png", "intervals.png"):
        assert (run / "report" / png).stat().st_size > 1000


def test_gate_refuses_when_one_group_of_areas_is_biased(tmp_path, capsys):
    run = write_run(tmp_path / "run", bias_for=("migration_background", "3 of 3 (highest)", 0.15))
    code, out, _, page = report(run, capsys)
    assert code == NOT_RELEASABLE
    assert "NOT RELEASABLE: threshold fairness.max_bias_gap exceeded" in out
    assert "Not releasable." in page and "fairness.max_bias_gap" in page.split("id='gate'")[1].split("</div>")[0]


def test_a_threshold_from_the_yaml_decides(tmp_path, capsys):
    run = write_run(tmp_path / "run")
    code, out, _, _ = report(run, capsys, "fairness.max_mae_gap=0.0")
    assert code == NOT_RELEASABLE and "threshold fairness.max_mae_gap exceeded" in out
    code, out, _, _ = report(run, capsys, "intervals.level=0.5", "intervals.max_coverage_gap=0.0")
    assert code == NOT_RELEASABLE and "threshold intervals.max_coverage_gap exceeded" in out


def test_a_model_no_better_than_the_mean_is_said_first_and_not_fit_for_use(tmp_path, capsys):
    run = write_run(tmp_path / "run")
    held = pd.read_csv(run / "holdout_predictions.csv")
    held["pred"] = held["y_dp"].mean() + np.random.default_rng(1).normal(0, 0.2, len(held))
    held.to_csv(run / "holdout_predictions.csv", index=False)
    code, out, _, page = report(run, capsys)
    assert code == NOT_RELEASABLE
    assert out.splitlines()[0].startswith("NOT FIT FOR USE")
    assert page.index("NOT FIT FOR USE") < page.index("id='gate'") < page.index("<h2>Map")
    assert "threshold min_r2 exceeded" in out


@pytest.mark.parametrize("damage, named", [
    (lambda run: (run / "holdout_predictions.csv").unlink(), "holdout_predictions.csv: file not found"),
    (lambda run: (run / "config.json").write_text("{not json"), "config.json: not valid JSON"),
    (lambda run: (run / "predictions.csv").write_text("area_code,period\nBU1,2020-01\n"),
     "predictions.csv: column 'predicted_period' is missing"),
    (lambda run: (run / "privacy" / "police.json").write_text("[]"), "police.json: not a node privacy report"),
    (lambda run: (run / "status.json").write_text('{"state": "failed"}'), "status.json: the run did not complete"),
])
def test_bad_input_is_one_line_naming_the_file(tmp_path, capsys, damage, named):
    run = write_run(tmp_path / "run")
    damage(run)
    code, out, err, _ = report(run, capsys)
    assert code == 2 and named in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_missing_run_directory(tmp_path, capsys):
    code, _, err, _ = report(tmp_path / "nowhere", capsys)
    assert code == 2 and "no such run directory" in err


def test_conformal_coverage_is_checked_per_held_out_area():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"area_code": np.repeat([f"A{i}" for i in range(30)], 10), "y": rng.normal(0, 1, 300)})
    frame["pred"] = frame["y"] + rng.normal(0, 0.1, 300)
    iv = conformal_intervals(frame, 0.9)
    assert abs(iv.coverage - 0.9) <= 0.05 and iv.areas == 30
    # One area predicted badly: its own interval, calibrated on the others, misses its rows.
    frame.loc[frame["area_code"] == "A3", "pred"] += 5
    assert conformal_intervals(frame, 0.9).per_area["A3"] == 0.0
    assert conformal_quantile(np.array([1.0, 2.0]), 0.9) == float("inf")


def test_membership_audit_catches_a_model_that_remembers_its_training_areas():
    settings = {"min_r2": 0.0, "intervals": {"max_coverage_gap": 0.05},
                "fairness": {"require": False, "min_areas_per_group": 2}, "mia": {"max_auc": 0.6, "require": True}}

    def rows(areas, error):
        return pd.DataFrame({"area_code": np.repeat(areas, 4), "y": 0.0, "pred": np.repeat(error, 4)})

    rng = np.random.default_rng(0)
    members = rows([f"M{i}" for i in range(40)], rng.uniform(0.0, 0.05, 40))     # remembered: tiny errors
    outside = rows([f"H{i}" for i in range(10)], rng.uniform(0.1, 0.3, 10))
    leaky = membership_audit(members, outside)
    assert leaky.auc == 1.0
    checks = gate_checks(settings, True, 0.5, None, None, leaky, horizontal=True)
    assert [c.name for c in checks if not c.passed] == ["intervals.max_coverage_gap", "mia.max_auc"]
    same = membership_audit(rows([f"M{i}" for i in range(40)], rng.uniform(0.1, 0.3, 40)), outside)
    assert same.auc < 0.8
    assert not [c for c in gate_checks(settings, True, 0.5, None, None, None, True) if c.name == "mia.require"][0].passed


@pytest.mark.parametrize("interval,passes,verdict", [((0.01, 0.15), False, "not shown unfair (inconclusive)"),
                                                     ((0.07, 0.12), False, "shown above threshold"),
                                                     ((0.00, 0.05), True, "shown within threshold")])
def test_a_fairness_gap_is_judged_by_its_interval_over_areas(interval, passes, verdict):
    """An equivalence test: only an interval wholly below the threshold passes; one that holds it is
    inconclusive, not a pass (the control: the same point estimate with a narrow interval passes)."""
    from server.report.fairness import FairnessAudit, GroupingResult

    settings = {"min_r2": 0.0, "intervals": {"max_coverage_gap": 0.05},
                "fairness": {"require": True, "min_areas_per_group": 2, "max_bias_gap": 0.06,
                             "evidence_level": 0.9}, "mia": {"max_auc": 0.6, "require": True}}
    point = 0.03 if passes or verdict.startswith("not") else 0.08
    grouping = GroupingResult("income", "income quintile", pd.DataFrame(), ["1", "5"], gaps={"bias": point},
                              intervals={"bias": interval}, planted_group="5", detectable={"bias": 0.09})
    [check] = [c for c in gate_checks(settings, True, 0.5, None, FairnessAudit([grouping], 10, spread=0.12), None,
                                      False) if c.name == "fairness.max_bias_gap"]
    assert check.passed is passes
    assert f"(sd 0.120)): {verdict}" in check.text
    assert "threshold 0.06 = 0.50 x the spread of predicted scores across areas (sd 0.120)" in check.text
    assert "a bias of 0.09 score points planted into group '5' is the smallest this audit shows" in check.text
    assert f"interval over areas {interval[0]:.3f} to {interval[1]:.3f}" in check.text
