"""Mistakes a new partner makes in a node's files, each refused with one message saying what is wrong and
only advice that can be followed: a cut CSV record (one message, not a missing value per absent column and a
date read as a bad format), a contract table whose `delimiter` or `encoding` no reader takes (refused when
the contract loads, naming file, table and key, not as a TypeError at build time), the area register
written with another delimiter or encoding (its form is fixed: no contract key to declare), and a site
policy that is not valid YAML (line and column, no copy of the parser's caret drawing)."""
from __future__ import annotations

from pathlib import Path

import pytest

from clients.contracts import build_features, load_contract
from clients.site_policy import load_site_policy
from federation.errors import ConfigError, ContractError
from tests.support.contract_fixtures import HeerlenFixture, WINDOW, write_csv

CSV_LINE = "(line number in the file, header = line 1)"


def refuse(node: Path, overrides: tuple[str, ...] = ()) -> str:
    with pytest.raises(ContractError) as err:
        build_features(load_contract("police", overrides=[*WINDOW, *overrides]), node)
    return str(err.value)


@pytest.fixture
def police(tmp_path: Path) -> Path:
    return HeerlenFixture().write_police(tmp_path / "police")


def _incidents(node: Path) -> Path:
    return node / "raw" / "incidents.csv"


# --- a cut record -------------------------------------------------------------------------------------------

def test_a_file_cut_mid_line_is_one_message_naming_the_line(police: Path):
    path = _incidents(police)
    lines = path.read_text(encoding="cp1252").rstrip("\n").split("\n")
    lines[-1] = "PL2300-2019-0000005;11-11-2019 "                # the export stopped here
    path.write_text("\n".join(lines), encoding="cp1252")
    msg = refuse(police)
    assert msg == (f"{path}, line {len(lines)} {CSV_LINE}: 2 of 5 fields; the file ends mid-line "
                   "(truncated export?)")


def test_a_short_record_inside_the_file_is_one_message(police: Path):
    path = _incidents(police)
    lines = path.read_text(encoding="cp1252").split("\n")
    lines[3] = ";".join(lines[3].split(";")[:3])
    path.write_text("\n".join(lines), encoding="cp1252")
    msg = refuse(police)
    assert msg == f"{path}, line 4 {CSV_LINE}: 3 of 5 fields; a cut or damaged record (re-export the file)"


def test_an_empty_last_field_is_no_short_record(police: Path):
    """A nullable last column left empty still has all its fields (the delimiters are there)."""
    path = _incidents(police)
    text = path.read_text(encoding="cp1252").replace(";overlast;3\n", ";overlast;\n")
    path.write_text(text, encoding="cp1252")
    built = build_features(load_contract("police", overrides=[*WINDOW, "+tables.incidents.columns.prioriteit.nullable=true"]),
                           police)
    assert "safety" in built.blocks


def test_a_date_without_a_time_gets_no_utc_offset_hint(police: Path):
    """'31-12-2019' ends in '-2019', which is no UTC offset: the hint to add %z would send a person astray."""
    path = _incidents(police)
    path.write_text(path.read_text(encoding="cp1252").replace("03-11-2019 10:15", "03-11-2019"), encoding="cp1252")
    msg = refuse(police)
    assert "'03-11-2019' is not a valid datetime in format '%d-%m-%Y %H:%M'" in msg and "UTC offset" not in msg


# --- delimiter and encoding of a table: refused when the contract loads ---------------------------------------

@pytest.mark.parametrize("override, words", [
    ("tables.incidents.delimiter=';;'", ["delimiter: must be exactly one character", "';;'"]),
    ("tables.incidents.delimiter=''", ["delimiter: must be exactly one character", "''"]),
    ("tables.incidents.delimiter=auto", ["delimiter: must be exactly one character", "'auto'", "not detected"]),
    ("tables.incidents.encoding=cp1252x", ["encoding: 'cp1252x' is not a known text encoding"]),
])
def test_a_delimiter_or_encoding_no_reader_takes_is_refused_at_load(override: str, words: list[str]):
    with pytest.raises(ContractError) as err:
        load_contract("police", overrides=[*WINDOW, override])
    msg = str(err.value)
    assert msg.startswith("configs/contract/police.yaml: table 'incidents', ") and "Traceback" not in msg
    assert all(w in msg for w in words), msg


# --- the area register: its form is fixed, so the advice is to re-export it --------------------------------

def test_an_area_register_written_with_semicolons_is_told_to_re_export(police: Path):
    path = police / "public" / "areas.csv"
    write_csv(HeerlenFixture().areas, path, delimiter=";")
    msg = refuse(police)
    assert f"{path}: missing column(s) 'area_code'" in msg
    assert "at ';', but this file is always read as utf-8 CSV with ',': re-export it that way" in msg
    assert "contract" not in msg and "declare" not in msg


def test_an_area_register_in_cp1252_is_told_to_re_export_as_utf8(police: Path):
    path = police / "public" / "areas.csv"
    areas = HeerlenFixture().areas
    areas.loc[0, "area_name"] = "Eerste buurt à l'est"
    write_csv(areas, path, encoding="cp1252")
    msg = refuse(police)
    assert f"{path}, line 2 {CSV_LINE}, column 'area_name': byte 0xe0" in msg
    assert msg.endswith("this file is always read as utf-8 (re-export it in utf-8)") and "contract" not in msg


def test_an_area_register_with_another_byte_order_mark_is_told_to_re_export(police: Path):
    path = police / "public" / "areas.csv"
    write_csv(HeerlenFixture().areas, path, encoding="utf-16")
    msg = refuse(police)
    assert "starts with a UTF-16 byte-order mark; this file is always read as utf-8: re-export it in utf-8" in msg
    assert "declare" not in msg


def test_an_area_register_with_an_extra_column_is_told_to_remove_it(police: Path):
    path = police / "public" / "areas.csv"
    areas = HeerlenFixture().areas.assign(note="x")
    write_csv(areas, path)
    msg = refuse(police)
    assert "unexpected column(s) 'note'" in msg and "the file has exactly the columns area_code" in msg
    assert "contract" not in msg


def test_a_raw_table_still_gets_the_contract_advice(police: Path):
    """Control: for the partner's own tables the contract is the place to declare the delimiter."""
    write_csv(HeerlenFixture().incidents, _incidents(police), encoding="cp1252", delimiter="|")
    msg = refuse(police)
    assert "declare delimiter '|' in the contract, or re-export with ';'" in msg


# --- the site policy -----------------------------------------------------------------------------------------

def test_a_site_policy_with_a_yaml_syntax_error_is_one_line_naming_the_place(tmp_path: Path):
    path = tmp_path / "site_policy.yaml"
    path.write_text("partner: police\nprivacy:\n  epsilon_lifetime: 24\n - stray\n  accountant: prv\n")
    with pytest.raises(ConfigError) as err:
        load_site_policy(tmp_path)
    msg = str(err.value)
    assert msg == (f"{path}: not valid YAML (line 4, column 2): expected <block end>, but found "
                   "'<block sequence start>'")
