"""`pulse-twin report` on damaged run folders: a partner's privacy receipt missing, forecast artefacts cut off,
an epsilon in a privacy report that its release history does not give, settings out of their range. Each is
refused or stated plainly, naming the file or the setting; never a page that contradicts itself."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
import yaml

from dp_accounting import Release, get_accountant
from federation.cli import main
from server.forecast.sensitivity import DRIVER_COLUMNS, DRIVERS_FILE
from server.report.drivers import run_drivers
from server.report.forecast import MODEL, read_forecast
from server.report.inputs import ReportInputError
from server.report.lang import text
from server.report.settings import GROUP_BINS, NUMERIC, check_settings
from tests.support.report_fixtures import PARTNERS, write_run

NOT_RELEASABLE, CANNOT = 3, 2
CONFIG = Path(__file__).resolve().parents[2] / "configs" / "report" / "default.yaml"


def report(run_dir: Path, capsys, *extra: str) -> tuple[int, str]:
    code = main(["report", str(run_dir), *extra])
    out = capsys.readouterr()
    return code, out.out + out.err


def page(run_dir: Path) -> str:
    return (run_dir / "report" / "report.html").read_text()


# 1. a partner's privacy receipt missing

def test_a_missing_privacy_receipt_refuses_the_report_and_is_said_on_the_page_and_the_console(tmp_path, capsys):
    run = write_run(tmp_path / "run")
    (run / "privacy" / "police.json").unlink()
    code, out = report(run, capsys)
    assert code == NOT_RELEASABLE, out
    assert "NOT RELEASABLE: threshold privacy.require exceeded" in out and "police" in out.split("privacy.require")[1]
    assert "privacy receipt of partner police is missing" in out
    html = page(run)
    missing = html.split("class='receipt missing' data-partner='police'>")[1].split("</div></div>")[0]
    path = str(run / "privacy" / "police.json")
    for code_ in ("nl", "en"):   # the words of the language files, Dutch first
        assert text(code_, "receipt.missing", partner="police", path=path) in missing.replace("&#x27;", "'")
    assert missing.index("lang='nl'") < missing.index("lang='en'")
    for partner in set(PARTNERS) - {"police"}:   # the others' receipts are still there
        assert f"class='receipt' data-partner='{partner}'" in html


def test_with_privacy_require_false_a_missing_receipt_is_only_said(tmp_path, capsys):
    run = write_run(tmp_path / "run")
    (run / "privacy" / "police.json").unlink()
    code, out = report(run, capsys, "privacy.require=false")
    assert code == 0, out
    assert "privacy receipt of partner police is missing" in out
    assert "data-partner='police'" in page(run) and "privacy receipt of partner police is missing" in page(run)


def test_control_a_complete_run_has_no_missing_receipt(tmp_path, capsys):
    run = write_run(tmp_path / "run")
    code, out = report(run, capsys)
    assert code == 0, out
    assert "missing" not in out and "receipt missing" not in page(run)


# 2. forecast artefacts cut off

def _cut_mid_row(path: Path, lines: int) -> int:
    """Keep the header and `lines` - 1 rows, then half of the next row; returns that row's line number."""
    rows = path.read_text().splitlines()
    last = rows[lines]
    path.write_text("\n".join(rows[:lines]) + "\n" + last[: len(last) // 2])
    return lines + 1


def test_a_predictions_file_cut_mid_row_is_refused_naming_the_file_and_line(tmp_path, capsys):
    run = write_run(tmp_path / "run", skill=(0.05, -0.02, 0.11))
    line = _cut_mid_row(run / "forecast" / "predictions.csv", 30)
    code, out = report(run, capsys)
    assert code == CANNOT, out
    assert f"forecast/predictions.csv: line {line} has" in out and "cut off" in out
    assert not (run / "report" / "report.html").exists()


def test_a_predictions_file_cut_at_a_row_boundary_names_the_rows_it_lacks(tmp_path, capsys):
    run = write_run(tmp_path / "run", skill=(0.05, -0.02, 0.11))
    path = run / "forecast" / "predictions.csv"
    frame = pd.read_csv(path, dtype=str)
    kept = frame.iloc[: len(frame) // 3]
    kept.to_csv(path, index=False)
    naive = MODEL   # the model's rows are checked first
    lacking = sorted(set(frame["area_code"]) - set(kept.loc[kept["model"] == naive, "area_code"]))
    code, out = report(run, capsys)
    assert code == CANNOT, out
    assert "forecast/predictions.csv: no forecast" in out and f"for {len(lacking)} of the" in out
    assert lacking[0] in out


def test_a_warnings_file_cut_is_refused_too(tmp_path):
    run = write_run(tmp_path / "run")
    path = run / "forecast" / "warnings.csv"
    frame = pd.read_csv(path, dtype=str)
    frame.iloc[:-3].to_csv(path, index=False)
    with pytest.raises(ReportInputError, match=r"warnings\.csv: no row at horizon 3 for 3 of the"):
        read_forecast(run)


def test_a_drivers_file_that_lacks_an_areas_drivers_is_refused(tmp_path):
    run = write_run(tmp_path / "run")
    rows = [{**{c: "" for c in DRIVER_COLUMNS}, "area_code": a, "block": "social", "driver": d, "value": 1.0,
             "city_median": 0.5, "shift": 0.01, "shift_lo": 0.0, "shift_hi": 0.02}
            for a in ("BU09171000", "BU09171001") for d in ("debt", "benefits")]
    path = run / "forecast" / DRIVERS_FILE
    pd.DataFrame(rows[:-1], columns=DRIVER_COLUMNS).to_csv(path, index=False)
    with pytest.raises(ReportInputError, match="area BU09171001 lacks 1 of the 2 drivers"):
        run_drivers(run)
    pd.DataFrame(rows, columns=DRIVER_COLUMNS).to_csv(path, index=False)   # control: whole, it is read
    assert len(run_drivers(run)) == len(rows)


# 3. an epsilon the release history does not give

def _history_epsilon(report: dict) -> float:
    """What the file's own history gives: each table's releases at its noise multiplier, the file's accountant."""
    history = [Release(mechanism="gaussian", noise_multiplier=z, sample_rate=1.0, steps=1, run_id="t", round=0,
                       kind="dp-aggregate") for t in report["tables"] for z in t["noise_multipliers"]]
    return get_accountant(report["accountant"]).epsilon(history, report["delta"])


def test_an_edited_epsilon_is_refused_naming_the_file(tmp_path, capsys):
    run = write_run(tmp_path / "run")
    path = run / "privacy" / "police.json"
    data = json.loads(path.read_text())
    real = _history_epsilon(data)
    data["epsilon"] = data["epsilon_aggregates"] = real / 6
    for table in data["tables"]:
        table["epsilon"] = real / 6
    for line in data["runs"]:
        line["epsilon_alone"] = line["epsilon_cumulative"] = real / 6
    path.write_text(json.dumps(data))
    code, out = report(run, capsys)
    assert code == CANNOT, out
    assert str(path) in out and f"{real / 6:.4f}" in out and f"{real:.4f}" in out


def test_control_the_receipts_print_the_epsilon_their_history_gives(tmp_path, capsys):
    run = write_run(tmp_path / "run")
    code, out = report(run, capsys)
    assert code == 0, out
    html = page(run)
    for partner in PARTNERS:
        real = _history_epsilon(json.loads((run / "privacy" / f"{partner}.json").read_text()))
        box = html.split(f"data-partner='{partner}'>")[1].split("</details>")[0]
        assert f"<b>{real:.2f}</b>" in box and f"<b>{real:.2f}".replace(".", ",") + "</b>" in box


def test_a_report_without_the_history_to_recompute_prints_no_epsilon_and_the_gate_refuses(tmp_path, capsys):
    run = write_run(tmp_path / "run")
    path = run / "privacy" / "police.json"
    data = json.loads(path.read_text())   # as an earlier version wrote a row-level line: no schedule
    data["row_level"] = {"unit": "area-period row", "releases": 2, "steps": 40, "epsilon": 1.0,
                         "second_opinion_epsilon": 1.1, "group": None}
    data["releases"] += 2
    path.write_text(json.dumps(data))
    code, out = report(run, capsys)
    assert code == NOT_RELEASABLE, out
    assert "threshold privacy.require exceeded" in out and "police.json: its epsilon cannot be recomputed" in out
    box = page(run).split("data-partner='police'>")[1].split("</details>")[0]
    assert f"<b>{text('nl', 'receipt.not_recomputed')}</b>" in box
    assert f"<b>{text('en', 'receipt.not_recomputed')}</b>" in box
    assert not any(f"<b>{v}</b>" in box for v in (f"{data['epsilon']:.2f}", f"{data['epsilon']:.2f}".replace(".", ",")))


# 4. settings out of their range

@pytest.mark.parametrize("override,key", [
    ("fairness.resamples=0", "fairness.resamples"), ("intervals.level=1.5", "intervals.level"),
    ("intervals.level=0", "intervals.level"), ("fairness.evidence_level=1", "fairness.evidence_level"),
    ("fairness.detection.step=0", "fairness.detection.step"), ("min_r2=1", "min_r2"),
    ("fairness.groups.income_quintile.bins=1", "fairness.groups.income_quintile.bins"),
    ("mia.max_auc=1.5", "mia.max_auc"), ("fairness.max_mae_gap=-0.1", "fairness.max_mae_gap")])
def test_a_setting_out_of_its_range_is_refused_naming_it_and_the_range(tmp_path, capsys, override, key):
    run = write_run(tmp_path / "run")
    code, out = report(run, capsys, override)
    assert code == CANNOT, out
    assert f"report setting {key} = " in out and "must be" in out
    assert "unexpected error" not in out and not (run / "report" / "report.html").exists()


def _numeric_leaves(node, prefix=""):
    for key, value in node.items():
        if isinstance(value, dict):
            yield from _numeric_leaves(value, f"{prefix}{key}.")
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            yield f"{prefix}{key}", value


def test_every_numeric_setting_of_the_config_has_a_range_its_default_lies_in():
    settings = yaml.safe_load(CONFIG.read_text())
    leaves = dict(_numeric_leaves(settings))
    assert len(leaves) > 10
    for key, value in leaves.items():
        allowed = GROUP_BINS if key.startswith("fairness.groups.") and key.endswith(".bins") else NUMERIC.get(key)
        assert allowed is not None, f"{key} has no allowed range in server/report/settings.py"
        assert allowed.holds(float(value)) and math.isfinite(value)
    assert check_settings(settings) is settings
