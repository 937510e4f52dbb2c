"""The community node joins the Heerlen federation as a fourth partner, and `pulse-twin feedback` turns the
run's kept community release into public pages: one per buurt and an index, Dutch by default with an English
switch, offline, no figure below the minimum population, every number traceable."""
from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from clients.app import app as client_app
from devtools.inprocess_grid import InProcessGrid
from devtools.synthetic.signals import generate_community
from federation.cli import main
from federation.errors import ConfigError
from federation.flower_config import encode
from server.app import run
from server.feedback.actions import load_actions
from server.feedback.pages import public_areas
from server.feedback.trace import untraceable
from tests.integration.test_vertical_inprocess import QUICK, heerlen_raw_nodes
from tests.support.contract_fixtures import generated_window
from tests.support.federation_fixtures import write_policy

# The generated months (heerlen_raw_nodes generates 15): the forecast scores its configured horizon (3) only
# after QUICK's min_history with test origins to spare, which four months of quarterly survey waves never give.
MONTHS = 15



@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("community_federation") / "nodes"
    nodes = heerlen_raw_nodes(root)          # police, municipality, buurtteams
    generate_community(root, seed=7, months=MONTHS)
    node = root / "community"
    assert main(["node", "init", "--partner", "community", "--node-dir", str(node)]) == 0
    write_policy(node, "community")
    nodes[len(nodes) + 1] = {"partner": "community", "data-dir": str(node)}
    for spec in nodes.values():        # the run's window, as a run sets it: every generated month
        window = generated_window(Path(spec["data-dir"]), months=MONTHS)
        assert main(["features", "--contract", spec["partner"], "--node-dir", spec["data-dir"], *window]) == 0
    out = root.parent / "run"
    run(InProcessGrid(client_app, nodes), {"overrides": encode(["federation=heerlen_community",
                                                                f"federation.data_root={root}", "node_wait_s=5",
                                                                *QUICK]),
                                           "run-name": "run", "run-dir": str(out)})
    return out


@pytest.fixture(scope="module")
def pages(run_dir) -> Path:
    assert main(["feedback", str(run_dir)]) == 0
    return run_dir / "feedback"


def test_the_community_node_is_a_fourth_partner_of_the_heerlen_federation(run_dir):
    held = pd.read_csv(run_dir / "holdout_predictions.csv")
    assert {"pred_alone_community", "pred_alone_police"} <= set(held.columns)
    kept = pd.read_csv(run_dir / "releases" / "community.csv")
    assert list(kept.columns) == ["area_code", "period", "series", "value", "noise_sd", "release"]
    assert set(kept["release"]) == {"run/community/community"} and kept["noise_sd"].gt(0).all()


def test_57_buurt_pages_and_an_index_in_dutch_and_english(pages):
    for folder, lang in ((pages, "nl"), (pages / "en", "en")):
        files = sorted(folder.glob("BU*.html"))
        assert len(files) == 57 and (folder / "index.html").is_file()
        for f in files[:5] + [folder / "index.html"]:
            text = f.read_text(encoding="utf-8")
            assert f'<html lang="{lang}">' in text and 'name="viewport"' in text
            switch = re.search(r'<a href="([^"]+)" hreflang', text).group(1)
            assert (f.parent / switch).resolve().is_file()
    assert "Wat bewoners meldden" in (pages / "index.html").read_text()
    assert "What residents reported" in (pages / "en" / "index.html").read_text()


def test_no_external_request_and_no_script(pages):
    for f in list(pages.glob("*.html")) + list((pages / "en").glob("*.html")):
        text = f.read_text(encoding="utf-8")
        assert not re.search(r'(src|href)="(https?:)?//', text), f
        assert "<script" not in text and "<link" not in text and "@import" not in text


def test_every_number_is_traceable_and_a_planted_one_is_not(pages):
    for f in list(pages.glob("*.html")) + list((pages / "en").glob("*.html")):
        assert untraceable(f.read_text(encoding="utf-8")) == [], f
    page = (pages / "index.html").read_text(encoding="utf-8")
    planted = page.replace("</table>", "</table><p>Er waren 42 meldingen</p>")
    assert untraceable(planted) == ["Er waren 42 meldingen"]


def test_every_rate_shown_is_the_sum_of_the_release_it_names(run_dir, pages):
    kept = pd.read_csv(run_dir / "releases" / "community.csv", dtype={"period": str})
    rate = re.compile(r'<span data-source="release:([^"]+)" data-series="([^"]+)" data-periods="([^"]+)">([\d.,]+)'
                      r'</span></span> per thousand')
    checked = 0
    for page in (pages / "en").glob("BU*.html"):
        for release, series, periods, shown in rate.findall(page.read_text(encoding="utf-8")):
            first, last = periods.split("..")
            rows = kept[(kept.area_code == page.stem) & kept.period.between(first, last)
                        & kept.series.isin(series.split(","))]
            assert set(rows.release) == {release} and len(rows) > 0
            assert float(shown.replace(",", "")) == pytest.approx(rows.value.sum(), abs=0.05)
            # shown only when the rate stands out of its own released noise
            assert rows.value.sum() >= 2 * (rows.noise_sd ** 2).sum() ** 0.5
            checked += 1
    assert checked > 0


def test_no_figure_for_a_buurt_below_the_minimum_population(pages):
    small = [a for a in public_areas().values() if a.population is not None and a.population < 100]
    assert small
    for a in small:
        text = (pages / f"{a.code}.html").read_text(encoding="utf-8")
        assert "data-source=\"release:" not in text and "minder dan" in text


def test_the_action_log_is_shown_as_a_timeline_with_its_entries(pages):
    text = (pages / "BU09173700.html").read_text(encoding="utf-8")
    assert 'data-source="action:A-2019-003"' in text and "Jongerenwerk" in text


@pytest.mark.parametrize("entry, message", [
    ("  - {id: X1, action: Bel jan@example.org, area: BU09171000, start: 2020-01-01, status: bezig, progress: 5, "
     "categories: [afval]}", "action 1, field 'action': holds an e-mail address"),
    ("  - {id: X1, action: Opruimen, naam: Jan, area: BU09171000, start: 2020-01-01, status: bezig, progress: 5, "
     "categories: [afval]}", "action 1: field 'naam' is not allowed"),
    ("  - {id: X1, action: Opruimen, area: BU0000, start: 2020-01-01, status: bezig, progress: 5, "
     "categories: [afval]}", "action 1, field 'area'"),
    ("  - {id: X1, action: Opruimen, area: BU09171000, start: 2020-01-01, status: bezig, progress: 150, "
     "categories: [afval]}", "action 1, field 'progress'"),
])
def test_a_bad_action_log_gets_one_clear_message(tmp_path, entry, message):
    path = tmp_path / "actions.yaml"
    path.write_text("actions:\n" + entry + "\n")
    with pytest.raises(ConfigError) as err:
        load_actions(path, set(public_areas()))
    assert str(path) in str(err.value) and message in str(err.value)


def test_a_run_without_the_community_node_gets_one_clear_message(tmp_path, capsys):
    assert main(["feedback", str(tmp_path)]) != 0
    err = capsys.readouterr().err
    assert "kept no release of the community node" in err and "heerlen_community" in err and "Traceback" not in err
