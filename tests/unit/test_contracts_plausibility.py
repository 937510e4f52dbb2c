"""Plausible-but-wrong exports are refused before they become features: numbers in another locale, shares
where percent is declared, times with a UTC offset, byte-order marks of another encoding, compressed and
truncated files, and files too large or too wide for an area-level export. One message each, naming the
file (and the row and column where there is one)."""
from __future__ import annotations

import gzip
from pathlib import Path

import pandas as pd
import pytest

from clients.contracts import build_features, load_contract
from clients.contracts.reading import MAX_COLUMNS, MAX_LINE_BYTES
from federation.errors import ContractError
from tests.support.contract_fixtures import A1, CITY_WINDOW, HeerlenFixture, WINDOW, window
from tests.support.contract_fixtures.cities import write_genk

GENK_BIG = "BE-GNK:71016A012"


def refuse(node: Path, contract: str, overrides: tuple[str, ...] = ()) -> str:
    with pytest.raises(ContractError) as err:
        build_features(load_contract(contract, overrides=[*window(contract), *overrides]), node)
    return str(err.value)


def value(frame: pd.DataFrame, area: str, period: str, column: str) -> float:
    row = frame[(frame.area_code == area) & (frame.period == period)]
    assert len(row) == 1
    return float(row[column].iloc[0])


@pytest.fixture
def fx() -> HeerlenFixture:
    return HeerlenFixture()


def _genk_income(node: Path, text: str) -> Path:
    path = node / "raw" / "sectoren_jaarcijfers.csv"
    frame = pd.read_csv(path, sep=";", dtype=str, encoding="utf-8-sig", keep_default_na=False)
    frame.loc[frame.jaar == "2019", "netto_belastbaar_inkomen_per_inwoner"] = text
    frame.to_csv(path, sep=";", index=False, encoding="utf-8-sig", lineterminator="\n")
    return node


# --- numbers in the declared locale ---------------------------------------------------------------------

def test_declared_thousands_separator_groups_digits(tmp_path):
    """Genk's export writes 18.607 EUR as "18.607" (decimal comma, thousands point): 18.6 thousand, not 0.019."""
    node = _genk_income(write_genk(tmp_path / "genk"), "18.607")
    context = build_features(load_contract("genk", CITY_WINDOW), node).blocks["context"]
    assert value(context, GENK_BIG, "2019-12", "income_per_resident_k") == pytest.approx(18.607)


def test_undeclared_thousands_separator_is_refused_not_read_as_decimals(tmp_path):
    node = _genk_income(write_genk(tmp_path / "genk"), "18.607")
    msg = refuse(node, "genk", ("tables.sectoren.thousands=null",))
    assert "raw/sectoren_jaarcijfers.csv, line 2" in msg and "column 'netto_belastbaar_inkomen_per_inwoner'" in msg
    assert "'18.607' holds '.', which is neither the declared decimal mark ','" in msg
    assert "thousands: '.'" in msg


def test_misplaced_thousands_separator_is_refused(tmp_path):
    node = _genk_income(write_genk(tmp_path / "genk"), "1.86,07")
    msg = refuse(node, "genk")
    assert "'1.86,07' has a misplaced thousands separator '.'" in msg


def test_amount_in_the_wrong_scale_is_outside_its_plausible_range(tmp_path):
    """Income in thousands where whole euros are declared: 18.607 is below Genk's plausible minimum."""
    node = _genk_income(write_genk(tmp_path / "genk"), "18,607")
    msg = refuse(node, "genk")
    assert "value 18.607 is below the minimum 1000" in msg and "netto_belastbaar_inkomen_per_inwoner" in msg


def test_thousands_must_differ_from_the_decimal_mark(tmp_path):
    write_genk(tmp_path / "genk")
    with pytest.raises(ContractError, match="thousands must be one of"):
        load_contract("genk", overrides=["tables.sectoren.thousands=','"])


# --- percent vs share ------------------------------------------------------------------------------------

def test_shares_where_percent_is_declared_are_refused(tmp_path, fx):
    fx.register["jeugdzorg_pct"] = 0.11       # the contract declares unit percent: 11.0
    msg = refuse(fx.write_municipality(tmp_path / "m"), "municipality")
    assert "register_buurt.parquet, column 'jeugdzorg_pct': all 5 values lie between 0 and 1" in msg
    assert "declares unit percent" in msg


def test_percent_where_a_share_is_declared_is_refused(tmp_path, fx):
    fx.register["aandeel_0_15"] = 15.0        # the contract declares unit share: 0.15
    msg = refuse(fx.write_municipality(tmp_path / "m"), "municipality")
    assert "column 'aandeel_0_15': value 15 is above the maximum 1 (the contract declares unit share)" in msg
    assert "a percentage where a share is declared?" in msg


def test_percent_column_with_real_percentages_builds(tmp_path, fx):
    fx.register["jeugdzorg_pct"] = [11.0, 12.5, 0.5, 9.0, 10.0]   # one small value among percentages is fine
    built = build_features(load_contract("municipality", window("municipality")), fx.write_municipality(tmp_path / "m"))
    assert value(built.blocks["social"], A1, "2019-11", "youth_care_pct") == pytest.approx(11.0)


def test_unknown_unit_is_refused():
    with pytest.raises(ContractError, match="`unit` is for numeric columns and one of share, percent, per_1000"):
        load_contract("municipality", overrides=[*window("municipality"), "tables.register.columns.jeugdzorg_pct.unit=procent"])


# --- times with a UTC offset -----------------------------------------------------------------------------

def test_offset_in_a_format_without_one_is_named(tmp_path, fx):
    fx.meldingen.loc[0, "gemeld_op"] = "2019-11-02T08:00:00+01:00"
    msg = refuse(fx.write_municipality(tmp_path / "m"), "municipality")
    assert "column 'gemeld_op': '2019-11-02T08:00:00+01:00' is not a valid datetime" in msg
    assert "carries a UTC offset: add %z to the format and declare the table's `timezone:`" in msg


def test_offsets_without_a_declared_zone_are_refused(tmp_path, fx):
    fx.meldingen["gemeld_op"] = fx.meldingen["gemeld_op"] + "+00:00"
    msg = refuse(fx.write_municipality(tmp_path / "m"), "municipality",
                 ("tables.meldingen.columns.gemeld_op.format='%Y-%m-%dT%H:%M:%S%z'",))
    assert "meldingen_openbare_ruimte.csv, line 2" in msg and "carries a UTC offset: declare the table's `timezone:`" in msg


def test_offsets_are_counted_in_the_declared_zone(tmp_path, fx):
    """23:30 UTC on 30 November is 00:30 on 1 December in Heerlen: the report counts in December."""
    fx.meldingen["gemeld_op"] = ["2019-11-02T08:00:00+01:00", "2019-11-30T23:30:00+00:00", "2020-01-10T12:00:00+01:00",
                                 "2019-12-05T09:00:00+01:00"]
    contract = load_contract("municipality", overrides=[*window("municipality"), 
        "tables.meldingen.columns.gemeld_op.format='%Y-%m-%dT%H:%M:%S%z'", "+tables.meldingen.timezone=Europe/Amsterdam"])
    social = build_features(contract, fx.write_municipality(tmp_path / "m")).blocks["social"]
    assert value(social, A1, "2019-11", "public_space_reports_per_1000") == pytest.approx(1.0)
    assert value(social, A1, "2019-12", "youth_nuisance_reports_per_1000") == pytest.approx(1.0)


def test_unknown_time_zone_is_refused():
    with pytest.raises(ContractError, match="timezone 'Europe/Heerlen' is not an IANA time zone"):
        load_contract("municipality", overrides=[*window("municipality"), "+tables.meldingen.timezone=Europe/Heerlen"])


# --- encodings, byte-order marks, compression ------------------------------------------------------------

def _rewrite(path: Path, encoding: str) -> None:
    text = path.read_bytes().decode("cp1252")
    path.write_bytes(text.encode(encoding))


@pytest.mark.parametrize("encoding,family", [("utf-16", "UTF-16"), ("utf-8-sig", "UTF-8"), ("utf-32", "UTF-32")])
def test_byte_order_mark_of_another_encoding_is_named(tmp_path, fx, encoding, family):
    node = fx.write_police(tmp_path / "p")
    _rewrite(node / "raw" / "incidents.csv", encoding)
    msg = refuse(node, "police")
    assert f"raw/incidents.csv: the file starts with a {family} byte-order mark, but the contract declares encoding cp1252" in msg
    assert f"encoding: {family.lower()}" in msg


def test_utf16_export_builds_when_declared(tmp_path, fx):
    node = fx.write_police(tmp_path / "p")
    expected = build_features(load_contract("police", WINDOW), node).blocks["safety"]
    _rewrite(node / "raw" / "incidents.csv", "utf-16")
    got = build_features(load_contract("police", overrides=[*WINDOW, "tables.incidents.encoding=utf-16"]), node)
    pd.testing.assert_frame_equal(got.blocks["safety"], expected)


def test_gzip_compressed_export_is_read(tmp_path, fx):
    node = fx.write_police(tmp_path / "p")
    path = node / "raw" / "incidents.csv"
    expected = build_features(load_contract("police", WINDOW), node).blocks["safety"]
    path.write_bytes(gzip.compress(path.read_bytes()))
    pd.testing.assert_frame_equal(build_features(load_contract("police", WINDOW), node).blocks["safety"], expected)


def test_truncated_gzip_is_named(tmp_path, fx):
    node = fx.write_police(tmp_path / "p")
    path = node / "raw" / "incidents.csv"
    whole = gzip.compress(path.read_bytes() * 20)
    path.write_bytes(whole[: len(whole) // 2])
    msg = refuse(node, "police")
    assert "raw/incidents.csv: the gzip-compressed file is truncated or damaged" in msg


# --- resource limits --------------------------------------------------------------------------------------

def _header(node: Path, header: str) -> None:
    path = node / "raw" / "incidents.csv"
    lines = path.read_text(encoding="cp1252").split("\n")
    path.write_text("\n".join([header, *lines[1:]]), encoding="cp1252")


def test_huge_header_field_is_refused_without_a_csv_error(tmp_path, fx):
    node = fx.write_police(tmp_path / "p")
    _header(node, "registratienummer;" + "x" * 300_000)
    msg = refuse(node, "police")
    assert "raw/incidents.csv, line 1 (header): a column name of 300,000 characters" in msg


def test_a_million_header_columns_are_refused_early(tmp_path, fx):
    node = fx.write_police(tmp_path / "p")
    _header(node, ";".join(f"c{i}" for i in range(1_000_000)))
    msg = refuse(node, "police")
    assert f"raw/incidents.csv, line 1 (line number in the file, header = line 1): longer than {MAX_LINE_BYTES:,} bytes" in msg


def test_too_many_header_columns_are_refused(tmp_path, fx):
    node = fx.write_police(tmp_path / "p")
    _header(node, ";".join("c" for _ in range(MAX_COLUMNS + 1)))
    msg = refuse(node, "police")
    assert f"line 1 (header): {MAX_COLUMNS + 1:,} columns (at most {MAX_COLUMNS:,})" in msg


def test_overlong_data_line_names_its_line(tmp_path, fx):
    fx.incidents.loc[3, "incidentsoort"] = "y" * (MAX_LINE_BYTES + 10)
    msg = refuse(fx.write_police(tmp_path / "p"), "police")
    assert "raw/incidents.csv, line 5 (line number in the file, header = line 1): longer than" in msg


def test_file_over_the_declared_size_is_refused(tmp_path, fx):
    node = fx.write_police(tmp_path / "p")
    msg = refuse(node, "police", ("+tables.incidents.max_bytes=200",))
    assert "raw/incidents.csv: more than 200 bytes (the table's `max_bytes`)" in msg


def test_parquet_cell_holding_a_list_is_refused(tmp_path, fx):
    node = fx.write_municipality(tmp_path / "m")
    path = node / "raw" / "uitkeringen.parquet"
    frame = pd.read_parquet(path)
    frame["startdatum"] = [[d] for d in frame["startdatum"]]
    frame.to_parquet(path, index=False)
    msg = refuse(node, "municipality")
    assert "raw/uitkeringen.parquet, column 'startdatum': stores list<" in msg and "re-export it flat" in msg
