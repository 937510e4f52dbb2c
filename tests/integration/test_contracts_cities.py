"""Transfer cities onboard with a YAML contract only: their own encodings, delimiters, decimal commas,
date formats, units and area codes give the same federation-wide blocks and label."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clients.contracts import build_features, load_contract
from tests.support.contract_fixtures import CITY_WINDOW
from federation.blocks import block_schema
from federation.errors import ContractError
from tests.support.contract_fixtures.cities import WRITERS

BLOCKS = {"genk": {"context", "safety", "social"}, "sant_boi": {"context", "social", "care"},
          "piraeus": {"context", "safety"}}
KEY = {"genk": "BE-GNK:71016A012", "sant_boi": "ES-SBL:0820003012", "piraeus": "GR-PIR:DK3-07"}
SMALL = {"genk": "BE-GNK:71016B001", "sant_boi": "ES-SBL:0820001001", "piraeus": "GR-PIR:DK1-01"}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("cities")
    return {city: build_features(load_contract(city, CITY_WINDOW), write(root / city)) for city, write in WRITERS.items()}


def value(frame: pd.DataFrame, area: str, period: str, column: str) -> float:
    row = frame[(frame.area_code == area) & (frame.period == period)]
    assert len(row) == 1
    return float(row[column].iloc[0])


@pytest.mark.parametrize("city", list(WRITERS))
def test_city_produces_its_blocks_in_schema_order_and_its_label(built, city):
    features = built[city]
    assert set(features.blocks) == BLOCKS[city]
    for block, frame in features.blocks.items():
        assert list(frame.columns) == ["area_code", "period", *block_schema(block).features]
        assert set(frame.area_code) == {KEY[city]}
        assert sorted(set(frame.period)) == ["2019-12", "2020-01"]
        assert not frame.isna().any().any()
    assert features.suppressed_areas == [SMALL[city]]
    assert features.label is not None and set(features.label.area_code) == {KEY[city]}


def test_genk_decimal_comma_whole_euros_and_bom(built):
    f = built["genk"]
    context = f.blocks["context"]
    assert value(context, KEY["genk"], "2019-12", "income_per_resident_k") == pytest.approx(23.5)
    assert value(context, KEY["genk"], "2020-01", "income_per_resident_k") == pytest.approx(24.0005)
    assert value(context, KEY["genk"], "2020-01", "log_population") == pytest.approx(np.log(2500))
    assert value(context, KEY["genk"], "2019-12", "share_0_15") == pytest.approx(0.16)
    safety, social = f.blocks["safety"], f.blocks["social"]
    assert value(safety, KEY["genk"], "2019-12", "burglary_per_1000") == pytest.approx(0.5)
    assert value(safety, KEY["genk"], "2020-01", "drugs_per_1000") == pytest.approx(0.4)
    assert value(social, KEY["genk"], "2019-12", "benefit_new_per_1000") == pytest.approx(0.5)
    assert value(social, KEY["genk"], "2020-01", "benefit_active_per_1000") == pytest.approx(0.4)
    assert value(social, KEY["genk"], "2019-12", "debt_assistance_per_1000") == pytest.approx(0.5)
    assert value(social, KEY["genk"], "2020-01", "debt_assistance_per_1000") == 0.0
    assert value(social, KEY["genk"], "2019-12", "public_space_reports_per_1000") == pytest.approx(1.0)
    assert value(social, KEY["genk"], "2019-12", "youth_nuisance_reports_per_1000") == pytest.approx(0.5)
    assert value(f.label, KEY["genk"], "2019-12", "label") == pytest.approx(4.20)
    assert value(f.label, KEY["genk"], "2020-01", "label") == pytest.approx(3.90)


def test_sant_boi_latin1_accents_percentages_and_care_block(built):
    f = built["sant_boi"]
    assert value(f.blocks["context"], KEY["sant_boi"], "2019-12", "share_0_15") == pytest.approx(0.155)
    assert value(f.blocks["context"], KEY["sant_boi"], "2019-12", "share_low_income") == pytest.approx(0.21)
    social, care = f.blocks["social"], f.blocks["care"]
    assert value(social, KEY["sant_boi"], "2019-12", "youth_nuisance_reports_per_1000") == pytest.approx(0.5)
    assert value(social, KEY["sant_boi"], "2019-12", "debt_assistance_per_1000") == pytest.approx(0.5)
    assert value(social, KEY["sant_boi"], "2020-01", "benefit_new_per_1000") == pytest.approx(0.4)
    assert value(social, KEY["sant_boi"], "2019-12", "youth_care_pct") == pytest.approx(6.0)
    assert value(care, KEY["sant_boi"], "2019-12", "open_debt_per_1000") == pytest.approx(0.5)
    assert value(care, KEY["sant_boi"], "2020-01", "open_mental_health_per_1000") == pytest.approx(0.4)
    assert value(care, KEY["sant_boi"], "2019-12", "open_housing_per_1000") == 0.0
    assert value(care, KEY["sant_boi"], "2019-12", "mean_contact_hours") == pytest.approx(12.0)
    assert value(f.label, KEY["sant_boi"], "2019-12", "label") == pytest.approx(4.00)
    # U1 has a debt file (open from May 2019) and a social-services file: two months in the window
    assert f.stats["observed_max_rows_per_person"] == 2


def test_piraeus_tabs_parquet_register_and_label(built):
    f = built["piraeus"]
    assert value(f.blocks["safety"], KEY["piraeus"], "2019-12", "burglary_per_1000") == pytest.approx(0.5)
    assert value(f.blocks["safety"], KEY["piraeus"], "2020-01", "violence_per_1000") == pytest.approx(0.4)
    assert value(f.blocks["context"], KEY["piraeus"], "2019-12", "benefits_per_1000") == pytest.approx(45.0)
    assert value(f.label, KEY["piraeus"], "2020-01", "label") == pytest.approx(4.30)


def test_native_code_without_prefix_must_be_in_the_register(tmp_path):
    node = WRITERS["piraeus"](tmp_path / "piraeus")
    path = node / "raw" / "symvanta.tsv"
    path.write_text(path.read_text().replace("DK3-07", "DK9-99", 1))
    with pytest.raises(ContractError) as err:
        build_features(load_contract("piraeus", CITY_WINDOW), node)
    assert "line 2 (line number in the file, header = line 1), column 'kodikos_geitonias': unknown area code " \
           "'DK9-99' (as GR-PIR:<code>)" in str(err.value)


def test_sant_boi_export_in_utf8_instead_of_latin1_is_refused(tmp_path):
    # UTF-8 bytes of 'ó' decode as two Latin-1 characters, so the category no longer matches its list
    node = WRITERS["sant_boi"](tmp_path / "sb")
    path = node / "raw" / "incidencias_via_publica.csv"
    path.write_bytes(path.read_text(encoding="latin-1").encode("utf-8"))
    with pytest.raises(ContractError) as err:
        build_features(load_contract("sant_boi", CITY_WINDOW), node)
    assert "unknown category" in str(err.value) and "column 'tipo'" in str(err.value)
