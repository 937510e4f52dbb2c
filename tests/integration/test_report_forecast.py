"""The report on a forecasting run: the gate on skill over the naive forecast, the naive forecast beside the
model's, the warning list only where the model has skill, and no change shown inside its interval."""
import json
import re

import pandas as pd
import pytest

from federation.cli import main
from server.forecast.gate import texts as forecast_texts
from server.report.forecast import beyond_noise, change_words, read_forecast
from tests.support.report_fixtures import write_run

NOT_RELEASABLE = 3


def report(run_dir, capsys, *extra):
    code = main(["report", str(run_dir), *extra])
    out = capsys.readouterr().out
    return code, out, (run_dir / "report" / "report.html").read_text()


def test_a_model_with_skill_is_releasable_and_its_warning_list_is_shown(tmp_path, capsys):
    run = write_run(tmp_path / "run", skill=(0.2, 0.1, 0.3))
    code, out, page = report(run, capsys)
    assert code == 0, out
    verdict = page.split("id='skill-verdict'>")[1].split("</div>")[0]
    assert verdict.index("lang='nl'") < verdict.index("lang='en'")      # Dutch first
    dutch, english = verdict.split("lang='en'")
    assert "beter dan de beste naïeve voorspelling" in dutch and "+0,100" in dutch and "+0.100" not in dutch
    assert "+0.100" in english                                          # each language writes its own numbers
    naive = read_forecast(run).naive_name                               # named in the gate's own words
    assert forecast_texts()["nl"]["naive_names"][naive] in dutch
    assert forecast_texts()["en"]["naive_names"][naive] in english
    warnings = page.split("<div id='warnings'>")[1].split("</div>")[0]
    listed = pd.read_csv(run / "forecast" / "warnings.csv", dtype={"area_code": str})
    falls = listed[listed["beyond_noise"] & (listed["change"] < 0)]
    assert len(falls) > 3 and all(code in warnings for code in falls["area_code"])
    inside = listed[~listed["beyond_noise"]]
    assert not any(f">{code}<" in warnings for code in inside["area_code"])


@pytest.mark.parametrize("skill", [(0.05, -0.02, 0.11), (-0.3, -0.5, -0.1)])
def test_a_model_whose_skill_interval_reaches_zero_is_not_releasable_and_the_naive_forecast_is_the_guide(
        tmp_path, capsys, skill):
    run = write_run(tmp_path / "run", skill=skill)
    code, out, page = report(run, capsys)
    assert code == NOT_RELEASABLE
    assert "NOT RELEASABLE: threshold forecast.min_skill_lo exceeded" in out
    nl, en = out.index("NIET VRIJGEGEVEN"), out.index("NOT RELEASABLE: the model forecasts")
    assert nl < en and "naïeve voorspelling is de betere leidraad" in out and "naive forecast is the" in out
    assert "class='refused' id='skill-verdict'" in page
    # the model's warning list is withheld; the naive ranking is shown instead
    assert "data-withheld='true'" in page and "last period&#x27;s change" in page
    # the naive forecast stands beside the model's in the area table and on the map
    assert "naive forecast" in page and 'data-fill-naive="#' in page
    data = json.loads(page.split('id="report-data">')[1].split("</script>")[0])
    assert all(a["naive"] is not None for a in data["areas"].values() if not a["suppressed"])


def test_a_run_without_forecast_is_refused_by_default(tmp_path, capsys):
    run = write_run(tmp_path / "run", skill=None)
    code, out, page = report(run, capsys)
    assert code == NOT_RELEASABLE and "threshold forecast.min_skill_lo exceeded" in out
    assert "NIET VRIJGEGEVEN" in page
    code, _, _ = report(run, capsys, "forecast.require=false")
    assert code == 0


def test_a_predicted_change_inside_its_interval_is_never_shown_as_a_change(tmp_path, capsys):
    run = write_run(tmp_path / "run")
    w = pd.read_csv(run / "forecast" / "warnings.csv", dtype={"area_code": str})
    # one area whose change is large but whose interval holds 0, marked beyond the noise by mistake
    w.loc[1, ["change", "change_lo", "change_hi", "beyond_noise"]] = [-0.3, -0.6, 0.01, True]
    w.to_csv(run / "forecast" / "warnings.csv", index=False)
    code, out, page = report(run, capsys)
    forecast = read_forecast(run)
    table = page.split("<h2>Areas, ranked</h2>")[1].split("</table>")[0]
    data = json.loads(page.split('id="report-data">')[1].split("</script>")[0])
    for _, a in forecast.areas.iterrows():
        if a["area_code"] not in data["areas"]:
            continue
        row = table.split(f"<td>{a['area_code']}</td>")[1].split("</tr>")[0]
        texts = data["areas"][a["area_code"]]["change_text"]
        if a["change_lo"] <= 0 <= a["change_hi"]:
            assert "geen verandering buiten de ruis / no change beyond the noise" in row
            assert not re.search(r"[+-]\d\.\d{3}", row.split("naive")[0].split("</td>")[-2])
            assert texts == ["geen verandering buiten de ruis", "no change beyond the noise"]
        else:
            assert f"{a['change']:+.3f}" in row and "no change" not in row
    assert "-0.300" not in table.split(f"<td>{w.loc[1, 'area_code']}</td>")[1].split("</tr>")[0]


def test_change_words_follow_the_interval_alone():
    assert not beyond_noise(-0.5, -0.7, 0.0) and not beyond_noise(0.2, float("nan"), 0.3)
    assert beyond_noise(-0.2, -0.3, -0.1) and beyond_noise(0.2, 0.1, 0.3)
    assert change_words(-0.5, -0.9, 0.1)[0] == ("nl", "geen verandering buiten de ruis")
    assert change_words(-0.2, -0.3, -0.1)[1] == ("en", "change -0.200 (interval -0.300 to -0.100)")
    assert change_words(-0.2, -0.3, -0.1)[0] == ("nl", "verandering -0,200 (interval -0,300 tot -0,100)")
