"""Partners' records see liveability's changes coming in the default world, and not at all in the null world.

Heerlen is generated twice with the same seed: `default` and `null` (profiles/worlds/null.yaml). Both have
the same liveability and the same survey (asserted); only what the partners' records read differs. From
the records alone (`devtools.synthetic.calibration`: the survey label per buurt and wave, the partners'
recent rises in youth-nuisance reports, police registrations, benefit and debt intakes and buurtteam
intakes), the next wave's label three months ahead is forecast leaving whole buurten out. The skill of a
linear model on the label's own history over the best trailing mean is the floor; adding the partners'
rises must raise the skill in the default world (by 0.11-0.13 over seeds 1-4) and must not in the null
world (-0.02..+0.01 over seeds 1-4: the partners add only fitting noise).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from devtools.synthetic import generate
from devtools.synthetic.calibration import check


@pytest.fixture(scope="module")
def measured() -> dict[str, dict[str, float]]:
    return {world: check("heerlen", world, seed=2, records=100_000, horizons=(3,))[0] for world in ("default", "null")}


def test_default_world_partners_lead_liveability(measured: dict[str, dict[str, float]]) -> None:
    default = measured["default"]
    assert default["n"] > 300
    assert default["skill_partners"] - default["skill_history"] >= 0.05, default
    assert default["skill_oracle"] >= 0.15, default  # the true drivers: the information the records carry noisily


def test_null_world_partners_carry_nothing_beyond_the_label_history(measured: dict[str, dict[str, float]]) -> None:
    null, default = measured["null"], measured["default"]
    assert null["skill_history"] == pytest.approx(default["skill_history"])  # the same label in both worlds
    assert null["skill_partners"] - null["skill_history"] <= 0.02, null
    assert null["skill_oracle"] <= 0.03, null  # even the drivers partners read say nothing here


def test_worlds_share_liveability_and_survey_but_not_the_partners(tmp_path) -> None:
    for world in ("default", "null"):
        generate(tmp_path / world, cities=["heerlen"], seed=3, records=100_000, world=world)
    survey = [pd.read_csv(tmp_path / w / "municipality" / "raw" / "bewonersenquete.csv") for w in ("default", "null")]
    assert survey[0].equals(survey[1])
    assert sorted(survey[0]["peilmaand"].unique())[:5] == ["2019-01", "2019-04", "2019-07", "2019-10", "2020-01"]
    assert survey[0]["peilmaand"].nunique() == 12  # quarterly waves over the profile's 36 months
    per_wave = survey[0].groupby(["buurtcode", "peilmaand"]).size()
    areas = pd.read_csv(tmp_path / "default" / "municipality" / "public" / "areas.csv")
    big = set(areas.loc[areas["population"] >= 200, "area_code"])
    sizes = per_wave[per_wave.index.get_level_values(0).isin(big)]
    assert sizes.min() >= 20 and sizes.max() <= 60 and np.median(sizes) > 20
    police = [pd.read_csv(tmp_path / w / "police" / "raw" / "incidents.csv", sep=";", encoding="cp1252") for w in ("default", "null")]
    assert not police[0].equals(police[1])
