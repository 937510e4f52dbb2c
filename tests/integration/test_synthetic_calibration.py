"""Heerlen's synthetic records against the real CBS figures they are calibrated to.

Tolerances (stated here, checked below):
- populations in every node's public/areas.csv and in register_buurt.parquet equal the CBS buurt
  figures exactly, for every buurt (also those under 100 inhabitants) and every CBS year;
- woninginbraak, vernieling_openbare_orde, geweld_seksueel: the expected annual count of a buurt is the
  CBS rate per 1,000 (the latest CBS year <= that year) x population / 1,000, and the generated annual
  count is exactly Poisson with that mean. Every buurt of >= 1,000 inhabitants must lie inside the
  two-sided Poisson 99.9% interval (a false alarm has probability 0.1% per check), every municipal
  category total per year inside its 99.9% interval, and the three categories together over the whole
  window within 5% of expectation;
- all police registrations together: within 10% of 58 per 1,000 inhabitants per year (Heerlen 2020).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import poisson

from devtools.synthetic import generate
from devtools.synthetic.generator import DEFAULT_CBS

CATEGORIES = {
    "woninginbraak": "Criminaliteit_Totaal_diefstal_uit_woning_schuur_ed",
    "vernieling_openbare_orde": "Criminaliteit_Vernieling_misdrijf_tegen_openbare_orde",
    "geweld_seksueel": "Criminaliteit_Gewelds__en_seksuele_misdrijven",
}


@pytest.fixture(scope="module")
def cbs() -> pd.DataFrame:
    """CBS buurt rows keyed by the latest year's code for each buurt name (the 2016 file mislabels one)."""
    frame = pd.read_csv(DEFAULT_CBS)
    buurt = frame[frame["niveau"] == "buurt"].copy()
    latest = buurt[buurt["jaar"] == buurt["jaar"].max()]
    buurt["code"] = buurt["Wijk_Buurt"].map(dict(zip(latest["Wijk_Buurt"], latest["code_derived"])))
    return buurt


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("heerlen")
    generate(out, cities=["heerlen"], seed=11, records=60_000, start="2018-01", months=24)
    return out


def test_populations_are_the_cbs_figures(nodes: Path, cbs: pd.DataFrame) -> None:
    truth = cbs.set_index(["code", "jaar"])["Bevolking_Aantal_inwoners"].astype(int)
    assert len(truth) == 57 * 5 and (truth < 100).any()
    for node in ("police", "municipality", "buurtteams"):
        areas = pd.read_csv(nodes / node / "public" / "areas.csv").set_index(["area_code", "year"])["population"]
        assert areas.reindex(truth.index).equals(truth), node
    register = pd.read_parquet(nodes / "municipality" / "raw" / "register_buurt.parquet")
    assert register.set_index(["buurtcode", "jaar"])["inwoners"].reindex(truth.index).equals(truth)


def test_register_carries_cbs_values(nodes: Path, cbs: pd.DataFrame) -> None:
    register = pd.read_parquet(nodes / "municipality" / "raw" / "register_buurt.parquet").set_index(["buurtcode", "jaar"])
    source = cbs.set_index(["code", "jaar"])
    pop = source["Bevolking_Aantal_inwoners"]
    expected = {
        "gem_inkomen_per_inwoner": source["Inkomen_Inkomen_van_personen_Gemiddeld_inkomen_per_inwoner"],
        "bijstand_per_1000": source["Sociale_zekerheid_Personen_per_soort_uitkering_Bijstand"] / pop * 1000,
        "aandeel_corporatiewoningen": source["Wonen_Woningen_naar_eigendom_Huurwoningen_In_bezit_woningcorporatie"] / 100,
        "jeugdzorg_pct": source["Zorg_Percentage_jongeren_met_jeugdzorg"],
        "wmo_per_1000": source["Zorg_Wmo_cliënten_relatief"],
        "aandeel_migratieachtergrond": (
            source["Bevolking_Personen_met_een_migratieachtergrond_Westers_totaal"]
            + source["Bevolking_Personen_met_een_migratieachtergrond_Niet_westers_Niet_westers_totaal"]) / pop,
    }
    assert not register.isna().any().any(), "missing CBS values must be imputed"
    for column, values in expected.items():
        present = values.dropna()
        assert len(present) > 50, column
        got = register[column].reindex(present.index)
        assert np.allclose(got, present, atol=1e-4), column


def _expected_and_counts(nodes: Path, cbs: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    incidents = pd.read_csv(nodes / "police" / "raw" / "incidents.csv", sep=";", encoding="cp1252")
    incidents["jaar"] = pd.to_datetime(incidents["datum_registratie"], format="%d-%m-%Y %H:%M").dt.year
    counts = incidents.groupby(["buurtcode", "jaar", "incidentsoort"]).size().unstack("incidentsoort")
    rows = []
    for year in (2018, 2019):
        pop = cbs[cbs["jaar"] == year].set_index("code")["Bevolking_Aantal_inwoners"]
        rates = cbs[cbs["jaar"] == min(year, 2018)].set_index("code")
        for cat, column in CATEGORIES.items():
            rows.append(pd.DataFrame({"buurtcode": pop.index, "jaar": year, "cat": cat, "population": pop.values,
                                      "expected": (rates[column] * pop / 1000).reindex(pop.index).values}))
    expected = pd.concat(rows).set_index(["buurtcode", "jaar", "cat"])
    observed = counts.stack().rename_axis(["buurtcode", "jaar", "cat"]).reindex(expected.index).fillna(0)
    return expected.assign(observed=observed), incidents


def test_calibrated_crime_rates(nodes: Path, cbs: pd.DataFrame) -> None:
    table, _ = _expected_and_counts(nodes, cbs)
    table = table.dropna(subset=["expected"])  # two tiny buurten without CBS crime rates
    big = table[table["population"] >= 1000]
    assert len(big) > 100
    lo, hi = poisson.ppf(0.0005, big["expected"]), poisson.ppf(0.9995, big["expected"])
    outside = big[(big["observed"] < lo) | (big["observed"] > hi)]
    assert outside.empty, outside
    totals = table.groupby(["jaar", "cat"])[["expected", "observed"]].sum()
    inside = (totals["observed"] >= poisson.ppf(0.0005, totals["expected"])) & \
             (totals["observed"] <= poisson.ppf(0.9995, totals["expected"]))
    assert inside.all(), totals
    assert abs(totals["observed"].sum() / totals["expected"].sum() - 1) < 0.05


def test_police_total_near_heerlen_rate(nodes: Path, cbs: pd.DataFrame) -> None:
    _, incidents = _expected_and_counts(nodes, cbs)
    pop = cbs[cbs["jaar"].isin([2018, 2019])]["Bevolking_Aantal_inwoners"].sum()  # inhabitant-years
    per_1000 = len(incidents) / pop * 1000
    assert 58 * 0.9 < per_1000 < 58 * 1.1, per_1000
    assert set(incidents["incidentsoort"]) == {*CATEGORIES, "drugs", "overlast", "diefstal_overig"}
