"""Reading Heerlen's buurten from the CBS file: codes by name, exact populations, documented imputation."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from server.report.cbs import load_heerlen
from devtools.synthetic.generator import DEFAULT_CBS

YEARS = [2016, 2017, 2018, 2019, 2020, 2021]
INCOME = "Inkomen_Inkomen_van_personen_Gemiddeld_inkomen_per_inwoner"
YOUTH = "Zorg_Percentage_jongeren_met_jeugdzorg"


@pytest.fixture(scope="module")
def areas():
    return load_heerlen(DEFAULT_CBS, YEARS)


@pytest.fixture(scope="module")
def raw() -> pd.DataFrame:
    return pd.read_csv(DEFAULT_CBS)


def test_buurten_and_populations(areas, raw) -> None:
    assert areas.count == 57 and len(set(areas.codes)) == 57
    col = {c: i for i, c in enumerate(areas.codes)}
    beitel, egstraat = col["BU09174200"], col["BU09174100"]
    # the 2016 rows carry a neighbour's code in the source; they are matched by name
    assert areas.population[beitel, 0] == 70 and areas.population[egstraat, 0] == 2100
    assert (areas.population[:, 5] == areas.population[:, 4]).all()  # 2021 carries 2020 forward
    total_2020 = raw[(raw["niveau"] == "buurt") & (raw["jaar"] == 2020)]["Bevolking_Aantal_inwoners"].sum()
    assert areas.population[:, 4].sum() == total_2020
    for values in (*areas.attributes.values(), *areas.calibrated.values()):
        assert not np.isnan(values).any()


def test_missing_values_take_the_nearest_year_then_the_wijk_then_the_gemeente(areas, raw) -> None:
    buurt = raw[raw["niveau"] == "buurt"].pivot_table(index="code_derived", columns="jaar", values=INCOME, aggfunc="last")
    income = areas.attributes["income_k"]
    checked = 0
    for i, code in enumerate(areas.codes):
        own = buurt.loc[code] if code in buurt.index else None
        if own is not None and np.isnan(own.get(2018, np.nan)) and not np.isnan(own.get(2017, np.nan)):
            assert income[i, YEARS.index(2018)] == own[2017]
            assert income[i, YEARS.index(2020)] == own[2017]  # 2019-2020 not published: nearest year
            checked += 1
    assert checked > 20
    # crime: published 2016-2018, later years use the latest available year
    burglary = areas.calibrated["burglary"]
    assert (burglary[:, YEARS.index(2020)] == burglary[:, YEARS.index(2018)]).all()
    # a buurt with no youth-care figure in any year takes its wijk's (same year)
    wijk = raw[(raw["niveau"] == "wijk") & (raw["jaar"] == 2018)].set_index("code_derived")[YOUTH]
    youth = areas.attributes["youth_care_pct"]
    own_youth = raw[raw["niveau"] == "buurt"].groupby("code_derived")[YOUTH].apply(lambda s: s.isna().all())
    fallbacks = 0
    for i, code in enumerate(areas.codes):
        w = wijk.get("WK" + code[2:8], np.nan)
        if own_youth.get(code, False) and not np.isnan(w):
            assert youth[i, YEARS.index(2018)] == w
            fallbacks += 1
    assert fallbacks >= 1
    # nothing published for the buurt nor its wijk: the gemeente's figure
    gemeente = raw[(raw["niveau"] == "gemeente") & (raw["jaar"] == 2018)][INCOME].iloc[0]
    assert income[areas.codes.index("BU09172300"), YEARS.index(2018)] == gemeente
