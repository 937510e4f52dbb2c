"""Bad raw input is refused with ONE ContractError naming the file, the row (and how it is counted) and
the column, for every class of mistake an export can make."""
from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from clients.contracts import build_features, load_contract
from federation.errors import ContractError
from tests.support.contract_fixtures import A1, HeerlenFixture, WINDOW, window

CSV_LINE = "(line number in the file, header = line 1)"


def refuse(node: Path, contract: str) -> str:
    with pytest.raises(ContractError) as err:
        build_features(load_contract(contract, window(contract)), node)
    return str(err.value)


@pytest.fixture
def fx() -> HeerlenFixture:
    return HeerlenFixture()


def test_missing_file(tmp_path, fx):
    node = fx.write_police(tmp_path / "police")
    (node / "raw" / "incidents.csv").unlink()
    msg = refuse(node, "police")
    assert "raw/incidents.csv: file not found" in msg and "incidents" in msg


def test_missing_area_register(tmp_path, fx):
    node = fx.write_police(tmp_path / "police")
    (node / "public" / "areas.csv").unlink()
    assert "public/areas.csv: file not found" in refuse(node, "police")


def test_missing_column(tmp_path, fx):
    fx.incidents = fx.incidents.drop(columns=["prioriteit"])
    msg = refuse(fx.write_police(tmp_path / "police"), "police")
    assert "raw/incidents.csv: missing column(s) 'prioriteit' in the header (line 1)" in msg


def test_a_renamed_column_is_named_with_the_one_the_file_has_instead(tmp_path, fx):
    fx.incidents = fx.incidents.rename(columns={"buurtcode": "buurt_code"})
    msg = refuse(fx.write_police(tmp_path / "police"), "police")
    assert "missing column(s) 'buurtcode'" in msg
    assert "The file has 'buurt_code' instead, which the contract does not declare (renamed?)" in msg


def test_unexpected_column(tmp_path, fx):
    fx.casussen["opmerking"] = "vrije tekst"
    msg = refuse(fx.write_buurtteams(tmp_path / "bt"), "buurtteams")
    assert "raw/casussen.csv: unexpected column(s) 'opmerking' in the header (line 1)" in msg


def test_text_in_integer_column_names_line_and_column(tmp_path, fx):
    fx.incidents.loc[2, "prioriteit"] = "abc"        # third data row: line 4
    msg = refuse(fx.write_police(tmp_path / "police"), "police")
    assert f"raw/incidents.csv, line 4 {CSV_LINE}, column 'prioriteit': 'abc' is not an integer" in msg


def test_fraction_in_integer_column(tmp_path, fx):
    fx.incidents.loc[0, "prioriteit"] = "2.5"
    msg = refuse(fx.write_police(tmp_path / "police"), "police")
    assert f"line 2 {CSV_LINE}, column 'prioriteit': '2.5' is not an integer" in msg


def test_text_in_float_column(tmp_path, fx):
    fx.casussen.loc[1, "contacturen"] = "vier"
    msg = refuse(fx.write_buurtteams(tmp_path / "bt"), "buurtteams")
    assert f"raw/casussen.csv, line 3 {CSV_LINE}, column 'contacturen': 'vier' is not a number" in msg


def test_unparseable_datetime(tmp_path, fx):
    fx.incidents.loc[4, "datum_registratie"] = "31-02-2020 10:00"   # no 31 February
    msg = refuse(fx.write_police(tmp_path / "police"), "police")
    assert (f"line 6 {CSV_LINE}, column 'datum_registratie': '31-02-2020 10:00' is not a valid datetime "
            "in format '%d-%m-%Y %H:%M'") in msg


def test_datetime_in_wrong_format(tmp_path, fx):
    fx.meldingen.loc[0, "gemeld_op"] = "02-11-2019 08:00"
    msg = refuse(fx.write_municipality(tmp_path / "mun"), "municipality")
    assert "raw/meldingen_openbare_ruimte.csv, line 2" in msg and "is not a valid datetime" in msg


def test_unparseable_date(tmp_path, fx):
    fx.casussen.loc[2, "datum_aanmelding"] = "2020-13-01"
    msg = refuse(fx.write_buurtteams(tmp_path / "bt"), "buurtteams")
    assert f"line 4 {CSV_LINE}, column 'datum_aanmelding': '2020-13-01' is not a valid date" in msg


def test_unknown_area_code(tmp_path, fx):
    fx.incidents.loc[3, "buurtcode"] = "BU09179999"
    msg = refuse(fx.write_police(tmp_path / "police"), "police")
    assert f"line 5 {CSV_LINE}, column 'buurtcode': unknown area code 'BU09179999'" in msg
    assert "public/areas.csv" in msg


def test_negative_amount(tmp_path, fx):
    fx.casussen.loc[0, "contacturen"] = "-3"
    msg = refuse(fx.write_buurtteams(tmp_path / "bt"), "buurtteams")
    assert f"line 2 {CSV_LINE}, column 'contacturen': negative value -3" in msg


def test_negative_population_in_register(tmp_path, fx):
    fx.areas.loc[1, "population"] = "-10"
    msg = refuse(fx.write_police(tmp_path / "police"), "police")
    assert f"public/areas.csv, line 3 {CSV_LINE}, column 'population': negative value -10" in msg


def test_duplicate_id(tmp_path, fx):
    fx.incidents.loc[4, "registratienummer"] = fx.incidents.loc[1, "registratienummer"]
    msg = refuse(fx.write_police(tmp_path / "police"), "police")
    assert (f"line 6 {CSV_LINE}, column 'registratienummer': duplicate id 'PL2300-2019-0000002' "
            f"(first seen at line 3") in msg


def test_duplicate_area_year_in_register(tmp_path, fx):
    fx.areas = pd.concat([fx.areas, fx.areas.iloc[[0]]], ignore_index=True)
    msg = refuse(fx.write_police(tmp_path / "police"), "police")
    assert f"line 7 {CSV_LINE}, column 'area_code': area '{A1}' appears twice for year 2019" in msg


def test_empty_table(tmp_path, fx):
    fx.incidents = fx.incidents.iloc[0:0]
    msg = refuse(fx.write_police(tmp_path / "police"), "police")
    assert "raw/incidents.csv: the table is empty (no data rows" in msg


def test_empty_file(tmp_path, fx):
    node = fx.write_police(tmp_path / "police")
    (node / "raw" / "incidents.csv").write_bytes(b"")
    assert "raw/incidents.csv: the file is empty" in refuse(node, "police")


def test_bytes_invalid_in_declared_encoding(tmp_path, fx):
    node = fx.write_police(tmp_path / "police")
    path = node / "raw" / "incidents.csv"
    lines = path.read_bytes().split(b"\n")
    lines[3] = lines[3].replace(b"drugs", b"dr\x81gs")   # 0x81 is undefined in Windows-1252
    path.write_bytes(b"\n".join(lines))
    msg = refuse(node, "police")
    assert f"raw/incidents.csv, line 4 {CSV_LINE}, column 'incidentsoort': byte 0x81" in msg
    assert "is not valid cp1252" in msg


def test_latin1_bytes_in_utf8_file(tmp_path, fx):
    node = fx.write_buurtteams(tmp_path / "bt")
    path = node / "raw" / "casussen.csv"
    path.write_bytes(path.read_bytes().replace(b"HH-Y", b"HH-\xe9"))   # Latin-1 e-acute, invalid UTF-8
    msg = refuse(node, "buurtteams")
    assert f"raw/casussen.csv, line 4 {CSV_LINE}, column 'huishouden_pseudoniem': byte 0xe9" in msg
    assert "is not valid utf-8" in msg


def test_utf8_byte_order_mark_is_accepted(tmp_path, fx):
    node = fx.write_buurtteams(tmp_path / "bt")
    path = node / "raw" / "casussen.csv"
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert len(build_features(load_contract("buurtteams", WINDOW), node).blocks["care"]) == 6


def test_unknown_category(tmp_path, fx):
    fx.incidents.loc[1, "incidentsoort"] = "inbraak"
    msg = refuse(fx.write_police(tmp_path / "police"), "police")
    assert f"line 3 {CSV_LINE}, column 'incidentsoort': unknown category 'inbraak' (allowed: woninginbraak," in msg


def test_unknown_item_in_multi_category(tmp_path, fx):
    fx.casussen.loc[2, "leefgebieden"] = "schulden|verslaving"
    msg = refuse(fx.write_buurtteams(tmp_path / "bt"), "buurtteams")
    assert f"line 4 {CSV_LINE}, column 'leefgebieden': unknown category 'verslaving' in a '|'-separated list" in msg


def test_missing_value_in_required_column(tmp_path, fx):
    fx.casussen.loc[1, "buurtcode"] = ""
    msg = refuse(fx.write_buurtteams(tmp_path / "bt"), "buurtteams")
    assert f"line 3 {CSV_LINE}, column 'buurtcode': missing value" in msg


def test_interval_ending_before_it_starts(tmp_path, fx):
    fx.casussen.loc[1, "datum_afsluiting"] = "2019-10-01"
    msg = refuse(fx.write_buurtteams(tmp_path / "bt"), "buurtteams")
    assert (f"line 3 {CSV_LINE}, column 'datum_afsluiting': datum_afsluiting 2019-10-01 is before "
            "datum_aanmelding 2019-11-05") in msg


def test_parquet_rows_are_counted_from_one(tmp_path, fx):
    fx.register.loc[2, "inwoners"] = -5                 # third row of the Parquet file
    msg = refuse(fx.write_municipality(tmp_path / "mun"), "municipality")
    assert ("raw/register_buurt.parquet, row 3 (1-based Parquet row index), column 'inwoners': "
            "negative value -5") in msg


def test_parquet_text_in_date_column(tmp_path, fx):
    node = fx.write_municipality(tmp_path / "mun")
    frame = pd.read_parquet(node / "raw" / "uitkeringen.parquet")
    frame["startdatum"] = frame["startdatum"].astype(str)
    frame.loc[1, "startdatum"] = "15-12-2019"
    frame.to_parquet(node / "raw" / "uitkeringen.parquet", index=False)
    msg = refuse(node, "municipality")
    assert "raw/uitkeringen.parquet, row 2 (1-based Parquet row index), column 'startdatum': '15-12-2019'" in msg


def test_line_numbers_follow_the_file_when_a_quoted_field_spans_lines(tmp_path, fx):
    node = fx.write_police(tmp_path / "police")
    path = node / "raw" / "incidents.csv"
    text = path.read_text(encoding="cp1252").split("\n")
    # the first record gets a quoted id with a line break: every later record moves one line down
    text[1] = text[1].replace("PL2300-2019-0000001", '"PL2300-2019\n-0000001"')
    text[4] = text[4].rsplit(";", 1)[0] + ";x"   # 4th record: line 5 without the break, line 6 with it
    path.write_text("\n".join(text), encoding="cp1252")
    msg = refuse(node, "police")
    assert f"line 6 {CSV_LINE}, column 'prioriteit': 'x' is not an integer" in msg


def test_one_message_counts_further_offending_rows(tmp_path, fx):
    fx.incidents["prioriteit"] = "hoog"
    msg = refuse(fx.write_police(tmp_path / "police"), "police")
    assert re.search(r"line 2 .*'hoog' is not an integer \(5 more row\(s\) like it\)", msg)
    assert msg.count("\n") == 0
