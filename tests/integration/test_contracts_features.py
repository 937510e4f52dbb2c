"""The Heerlen contracts turn small hand-made raw tables into the values worked out on paper in
tests/support/contract_fixtures, and the aggregation agrees with a naive row-by-row count on random data."""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clients.contracts import NodeFeatures, build_features, load_contract
from federation.blocks import block_schema
from federation.errors import ContractError
from tests.support.contract_fixtures import A1, A2, A3, HeerlenFixture, write_csv, WINDOW, window


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, NodeFeatures]:
    nodes = HeerlenFixture().write(tmp_path_factory.mktemp("heerlen"))
    return {name: build_features(load_contract(name, window(name)), node) for name, node in nodes.items()}


def cell(frame: pd.DataFrame, area: str, period: str, column: str) -> float:
    row = frame[(frame.area_code == area) & (frame.period == period)]
    assert len(row) == 1, f"expected one row for {area} {period}"
    return float(row[column].iloc[0])


def test_blocks_have_schema_columns_float_and_sorted_keys(built):
    for features in built.values():
        for block, frame in features.blocks.items():
            assert list(frame.columns) == ["area_code", "period", *block_schema(block).features]
            assert all(frame[f].dtype == np.float64 for f in block_schema(block).features)
            keys = list(zip(frame.area_code, frame.period))
            assert keys == sorted(keys) and len(set(keys)) == len(keys)
            # one row per (kept) area and covered month
            assert set(frame.period) == {"2019-11", "2019-12", "2020-01"}
            assert set(frame.area_code) == {A1, A2}


def test_police_counts_per_1000_use_the_population_of_the_period_year(built):
    safety = built["police"].blocks["safety"]
    assert cell(safety, A1, "2019-11", "burglary_per_1000") == pytest.approx(2.0)     # 2 / 1,000
    assert cell(safety, A1, "2019-11", "drugs_per_1000") == pytest.approx(1.0)
    assert cell(safety, A2, "2019-12", "vandalism_per_1000") == pytest.approx(0.5)    # 1 / 2,000
    assert cell(safety, A1, "2020-01", "nuisance_per_1000") == pytest.approx(0.8)     # 1 / 1,250 (2020)
    assert cell(safety, A1, "2019-12", "burglary_per_1000") == 0.0


def test_municipality_context_takes_the_register_year_or_the_latest_earlier_one(built):
    context = built["municipality"].blocks["context"]
    assert cell(context, A1, "2019-12", "log_population") == pytest.approx(np.log(1000))
    assert cell(context, A1, "2020-01", "log_population") == pytest.approx(np.log(1250))
    assert cell(context, A2, "2020-01", "log_population") == pytest.approx(np.log(2000))   # 2019 carried on
    assert cell(context, A1, "2020-01", "income_per_resident_k") == pytest.approx(23.5)
    assert cell(context, A2, "2019-11", "share_65_plus") == pytest.approx(0.20)


def test_municipality_social_open_and_new_cases(built):
    social = built["municipality"].blocks["social"]
    assert cell(social, A1, "2019-11", "benefit_active_per_1000") == pytest.approx(1.0)   # HH-A
    assert cell(social, A1, "2019-12", "benefit_active_per_1000") == pytest.approx(2.0)   # HH-A, HH-B
    assert cell(social, A1, "2020-01", "benefit_active_per_1000") == pytest.approx(2 / 1.25)
    assert cell(social, A2, "2019-11", "benefit_active_per_1000") == 0.0                  # ended in October
    assert cell(social, A1, "2019-12", "benefit_new_per_1000") == pytest.approx(1.0)
    assert cell(social, A1, "2019-11", "debt_assistance_per_1000") == pytest.approx(1.0)
    assert cell(social, A1, "2019-12", "debt_assistance_per_1000") == 0.0
    assert cell(social, A1, "2019-11", "public_space_reports_per_1000") == pytest.approx(2.0)
    assert cell(social, A1, "2019-11", "youth_nuisance_reports_per_1000") == pytest.approx(1.0)
    assert cell(social, A2, "2020-01", "public_space_reports_per_1000") == pytest.approx(0.5)
    assert cell(social, A1, "2019-11", "youth_care_pct") == pytest.approx(11.0)


def test_label_is_the_liveability_of_that_month_where_people_answered(built):
    label = built["municipality"].label
    assert list(label.columns) == ["area_code", "period", "label"]
    assert len(label) == 2
    assert cell(label, A1, "2019-11", "label") == pytest.approx(4.30)
    assert cell(label, A2, "2019-12", "label") == pytest.approx(3.90)


def test_buurtteams_open_cases_by_domain_intakes_and_contact_hours(built):
    care = built["buurtteams"].blocks["care"]
    assert cell(care, A1, "2019-11", "open_debt_per_1000") == pytest.approx(1.0)          # K1
    assert cell(care, A1, "2019-12", "open_housing_per_1000") == pytest.approx(1.0)       # K1 until 20 Dec
    assert cell(care, A1, "2020-01", "open_housing_per_1000") == 0.0
    assert cell(care, A1, "2020-01", "open_mental_health_per_1000") == pytest.approx(0.8)  # K2, 1 / 1,250
    assert cell(care, A2, "2020-01", "open_debt_per_1000") == pytest.approx(0.5)          # K3
    assert cell(care, A1, "2019-12", "new_intakes_per_1000") == pytest.approx(1.0)        # K2
    assert cell(care, A1, "2019-12", "mean_contact_hours") == pytest.approx(7.0)          # (10 + 4) / 2
    assert cell(care, A2, "2019-11", "open_youth_per_1000") == pytest.approx(0.5)         # K0, 1 / 2,000
    assert cell(care, A2, "2019-11", "mean_contact_hours") == pytest.approx(2.0)          # K0 only
    assert cell(care, A2, "2019-12", "mean_contact_hours") == 0.0                         # no open file


def test_case_export_window_starts_at_the_first_closing_month(built):
    # K0 was opened in March 2019, but the export's window starts in November (first closing month)
    assert built["buurtteams"].stats["periods"] == {"first": "2019-11", "last": "2020-01", "count": 3}


def test_suppressed_area_is_gone_from_every_block_and_listed(built):
    for features in built.values():
        assert features.suppressed_areas == [A3]
        for frame in features.blocks.values():
            assert A3 not in set(frame.area_code)
    assert A3 not in set(built["municipality"].label.area_code)


def test_min_population_override_suppresses_more(tmp_path):
    node = HeerlenFixture().write_police(tmp_path / "police")
    features = build_features(load_contract("police", overrides=[*WINDOW, "min_population=1500"]), node)
    assert features.suppressed_areas == [A1, A3]           # A1 has 1,000 and 1,250
    assert set(features.blocks["safety"].area_code) == {A2}
    none = build_features(load_contract("police", overrides=[*WINDOW, "min_population=0"]), node)
    assert none.suppressed_areas == [] and A3 in set(none.blocks["safety"].area_code)
    assert cell(none.blocks["safety"], A3, "2019-11", "burglary_per_1000") == pytest.approx(1000 / 60)


def test_periods_can_be_clamped_by_override(tmp_path):
    node = HeerlenFixture().write_police(tmp_path / "police")
    features = build_features(load_contract("police", overrides=["periods.start=2019-12", "periods.end=2020-01"]), node)
    assert sorted(set(features.blocks["safety"].period)) == ["2019-12", "2020-01"]
    assert features.stats["periods"] == {"first": "2019-12", "last": "2020-01", "count": 2}


def test_stats_report_rows_read_and_per_block(built):
    stats = built["municipality"].stats
    assert stats["rows_read"] == {"register": 5, "uitkeringen": 4, "meldingen": 4, "enquete": 3}
    assert stats["rows_per_block"] == {"context": 6, "social": 6}
    assert stats["label_rows"] == 2


def test_privacy_unit_k_is_counted_per_household(built):
    # HH-B: bijstand open 2019-12..2020-01 and debt help 2019-11, all in A1: three area-month rows.
    assert built["municipality"].stats["observed_max_rows_per_person"] == 3
    assert built["municipality"].privacy_unit_k == 37
    assert built["buurtteams"].stats["observed_max_rows_per_person"] == 2
    assert built["police"].stats["observed_max_rows_per_person"] is None   # no pseudonym in the export


def test_declared_k_below_what_the_data_shows_is_refused(tmp_path):
    node = HeerlenFixture().write_municipality(tmp_path / "mun")
    with pytest.raises(ContractError) as err:
        build_features(load_contract("municipality", overrides=[*window("municipality"), "privacy_unit.max_rows_per_person=2"]), node)
    msg = str(err.value)
    assert "configs/contract/municipality.yaml" in msg
    assert "max_rows_per_person is 2, but one 'huishouden_pseudoniem' in the data touches 3 area-period rows" in msg


def test_a_household_moving_between_areas_touches_both(tmp_path):
    fx = HeerlenFixture()
    fx.casussen.loc[3, "huishouden_pseudoniem"] = "HH-X"     # K3 (A2, Jan 2020) is HH-X's too
    node = fx.write_buurtteams(tmp_path / "bt")
    assert build_features(load_contract("buurtteams", WINDOW), node).stats["observed_max_rows_per_person"] == 3


# ---- agreement with a naive count on random records ------------------------------------------------

MONTHS = pd.period_range("2019-01", "2019-06", freq="M")


@lru_cache(maxsize=None)
def buurtteams_without_suppression():
    return load_contract("buurtteams", overrides=[*WINDOW, "min_population=0"])


record = st.tuples(st.sampled_from([A1, A2]), st.integers(0, 5), st.integers(-1, 7),
                   st.sampled_from(["schulden", "wonen", "schulden|wonen", "jeugd"]))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(record, min_size=1, max_size=30))
def test_open_cases_match_a_row_by_row_count(tmp_path_factory, records):
    fx = HeerlenFixture()
    # K-anchor closes in the first month, so the export window starts there (periods.not_before)
    rows = [{"casusnummer": "K-anchor", "huishouden_pseudoniem": "H-anchor", "buurtcode": A1,
             "datum_aanmelding": "2019-01-10", "datum_afsluiting": "2019-01-20", "leefgebieden": "schulden",
             "contacturen": "1"}]
    for i, (area, start, length, domains) in enumerate(records):
        opened = MONTHS[start].start_time + pd.Timedelta(days=3)
        closed = "" if length < 0 else (opened + pd.DateOffset(months=length)).strftime("%Y-%m-%d")
        rows.append({"casusnummer": f"K{i}", "huishouden_pseudoniem": f"H{i}", "buurtcode": area,
                     "datum_aanmelding": opened.strftime("%Y-%m-%d"), "datum_afsluiting": closed,
                     "leefgebieden": domains, "contacturen": str(i)})
    fx.casussen = pd.DataFrame(rows)
    node = fx.write_buurtteams(tmp_path_factory.mktemp("bt"))
    last = pd.Period(max(pd.Timestamp(r["datum_aanmelding"]) for r in rows), freq="M")
    first = pd.Period(min(pd.Timestamp(r["datum_aanmelding"]) for r in rows), freq="M")
    # the window as a run sets it; random intakes may leave a month without one, which is no export gap here
    contract = load_contract("buurtteams", ["min_population=0", f"periods.start={first}", f"periods.end={last}",
                                            "periods.from=[]"])
    care = build_features(contract, node).blocks["care"]
    for area, pop in ((A1, 1000), (A2, 2000)):
        for month in pd.period_range(first, last, freq="M"):
            open_debt, hours = 0, []
            for r in rows:
                start = pd.Period(r["datum_aanmelding"], freq="M")
                end = pd.Period(r["datum_afsluiting"], freq="M") if r["datum_afsluiting"] else None
                if r["buurtcode"] == area and start <= month and (end is None or end >= month):
                    hours.append(float(r["contacturen"]))
                    open_debt += "schulden" in r["leefgebieden"].split("|")
            got = care[(care.area_code == area) & (care.period == str(month))]
            assert float(got["open_debt_per_1000"].iloc[0]) == pytest.approx(open_debt / pop * 1000)
            assert float(got["mean_contact_hours"].iloc[0]) == pytest.approx(np.mean(hours) if hours else 0.0)


def test_every_register_area_gets_rows_even_without_records(tmp_path):
    fx = HeerlenFixture()
    fx.incidents = fx.incidents[fx.incidents.buurtcode == A1].reset_index(drop=True)
    node = fx.write_police(tmp_path / "p")
    # A1's records leave 2019-12 without any incident: a month missing from the export, refused by default
    with pytest.raises(ContractError, match=r"(?s)1 month\(s\) of the window 2019-11 to 2020-01 .*rule: complete_periods"
                                            r".*incidents.datum_registratie: no record in 2019-12\n"):
        build_features(load_contract("police", WINDOW), node)
    built = build_features(load_contract("police", [*WINDOW, "periods.missing=mark"]), node)
    safety = built.blocks["safety"]
    a2 = safety[safety.area_code == A2]
    assert list(a2.period) == ["2019-11", "2020-01"]          # 2019-12 marked missing, not zero
    assert (a2.drop(columns=["area_code", "period"]).to_numpy() == 0).all()
    assert built.missing_periods == {"safety": ["2019-12"]}
    assert built.stats["missing_months"] == {"incidents": ["2019-12"]}


def test_write_csv_helper_round_trips(tmp_path):
    # the fixture writer itself: Windows-1252 with ';' as the police export is
    path = write_csv(pd.DataFrame({"a": ["é"], "b": ["1"]}), tmp_path / "x.csv", "cp1252", ";")
    assert path.read_bytes() == b"a;b\n\xe9;1\n"


def test_a_future_date_is_refused_and_named(tmp_path):
    """One record dated 2099 is refused naming its file, row and column."""
    from federation.cli import main as cli_main

    data = HeerlenFixture()
    data.incidents.loc[2, "datum_registratie"] = "14-03-2099 10:00"
    node = data.write_police(tmp_path / "police")
    with pytest.raises(ContractError, match=r"dated 2099-03, after this month") as err:
        build_features(load_contract("police", WINDOW), node)
    assert "incidents.csv" in str(err.value) and "datum_registratie" in str(err.value) and "line 4" in str(err.value)
    assert cli_main(["features", "--contract", "police", "--node-dir", str(node), *WINDOW]) != 0
    assert not (node / "features" / "safety.parquet").exists()


def test_the_grid_is_the_declared_window_whatever_the_records_dates(tmp_path):
    """The node's months are the contract's (or the run's) window, never the records': a record dated a month
    earlier, or in 1900, adds no period and no row (issue 26: the released grid is public)."""
    data = HeerlenFixture()
    node = data.write_police(tmp_path / "police")
    before = build_features(load_contract("police", WINDOW), node)
    # the keys (and so the PSI key set) are the public grid: register areas above min_population x the window
    grid = {(a, p) for a in (A1, A2) for p in ("2019-11", "2019-12", "2020-01")}
    assert set(zip(before.blocks["safety"].area_code, before.blocks["safety"].period)) == grid
    for date in ("15-10-2019 10:00", "01-01-1900 00:00"):
        data.incidents.loc[2, "datum_registratie"] = date
        node = data.write_police(tmp_path / date[:2])
        after = build_features(load_contract("police", WINDOW), node)
        assert sorted(set(after.blocks["safety"].period)) == ["2019-11", "2019-12", "2020-01"]
        assert after.blocks["safety"][["area_code", "period"]].equals(before.blocks["safety"][["area_code", "period"]])
    # control: the window is what sets the grid
    wider = build_features(load_contract("police", ["periods.start=2019-11", "periods.end=2020-01",
                                                    "periods.missing=mark"]), node)
    assert len(set(wider.blocks["safety"].period)) == 3


def test_a_contract_without_a_window_is_refused_before_any_data(tmp_path):
    with pytest.raises(ContractError, match=r"periods.start is required: the node's months are set by the contract "
                                            r"or the run .*rule: public_grid"):
        load_contract("police", ["periods.start=null"])


def test_a_nul_byte_in_a_csv_is_refused_naming_line_and_column(tmp_path):
    """A NUL byte inside "1403" must not become 14: the file is refused where the byte is."""
    node = HeerlenFixture().write_municipality(tmp_path / "municipality")
    path = node / "raw" / "meldingen_openbare_ruimte.csv"
    lines = path.read_bytes().split(b"\n")
    lines[2] = lines[2].replace(b",", b"\x00,", 1)
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(ContractError, match=r"meldingen_openbare_ruimte.csv, line 3 .*column 'melding_id'.*NUL byte"):
        build_features(load_contract("municipality", window("municipality")), node)


def test_an_integer_beyond_int64_is_refused_never_wrapped(tmp_path):
    """A population of 10^20 must not wrap around to a negative count and suppress its buurt."""
    data = HeerlenFixture()
    data.areas["population"] = data.areas["population"].astype(object)
    data.areas.loc[2, "population"] = "100000000000000000000"
    node = data.write_police(tmp_path / "police")
    with pytest.raises(ContractError, match=r"areas.csv, line 4 .*'population'.*too large for an integer"):
        build_features(load_contract("police", WINDOW), node)


def test_a_wrong_delimiter_is_named_as_such(tmp_path):
    from tests.support.contract_fixtures import write_csv

    data = HeerlenFixture()
    node = data.write_police(tmp_path / "police")
    write_csv(data.incidents, node / "raw" / "incidents.csv", encoding="cp1252", delimiter=",")
    with pytest.raises(ContractError, match=r"splits into the declared columns at ',', not at the declared delimiter ';'"):
        build_features(load_contract("police", WINDOW), node)
