"""Row filters (`where:` on a table), the `expr` op, zip input, and a small city onboarded from YAML alone:
a gzipped or zipped national table with thousands separators, no time dimension, one authority's rows kept
and shares derived by expressions."""
from __future__ import annotations

import gzip
import math
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml

from clients.contracts import build_features, load_contract
from clients.contracts import expr as E
from federation.errors import ContractError
from tests.support.contract_fixtures.small_city import AREAS, csv_text, write_small_city


def build(node: Path, **kw):
    path = write_small_city(node, **kw)
    return build_features(load_contract(path), node)


def refused(node: Path, **kw) -> str:
    with pytest.raises(ContractError) as err:
        build(node, **kw)
    return str(err.value)


def refused_rows(node: Path, rows: list[list[str]], **table):
    """The error for the small city whose national table holds `rows` (gzip)."""
    write_small_city(node, **table)
    with gzip.open(node / "raw/stats.csv.gz", "wt", encoding="utf-8") as fh:
        fh.write(csv_text(rows))
    with pytest.raises(ContractError) as err:
        build_features(load_contract(node / "contract.yaml"), node)
    return err


@pytest.mark.parametrize("packing", ["gzip", "zip"])
def test_small_city_onboards_from_yaml_alone(packing, tmp_path):
    """Authority NORTH's three areas; SOUTH's rows (not in the register, one with a bad cell) are dropped first."""
    built = build(tmp_path, packing=packing)
    ctx = built.blocks["context"].set_index("area_code")
    # SC:0002 has 0 households: household_size is missing (division by zero), so its row is left out
    assert list(ctx.index) == ["SC:0001", "SC:0003"] and set(ctx["period"]) == {"2021"}
    a = ctx.loc["SC:0001"]
    assert a["log_population"] == pytest.approx(math.log(1252))            # "1,252" read with thousands: ","
    assert a["share_0_15"] == pytest.approx(250 / 1252)
    assert a["household_size"] == pytest.approx(1252 / 626)
    assert a["income_per_resident_k"] == pytest.approx(30_048_000 / 1252 / 1000)
    assert a["benefits_per_1000"] == pytest.approx(12 * 1000 / 1252)
    assert ctx.loc["SC:0003", "share_low_income"] == pytest.approx(20 * 2 / 4000)
    assert built.stats["row_filters"]["stats"] == {"where": "authority = 'NORTH'", "rows_read": 5, "rows_kept": 3,
                                                  "rows_dropped": 2}
    assert built.stats["rows_incomplete_dropped"] == {"context": 1}


def test_without_the_filter_other_authorities_are_refused(tmp_path):
    msg = refused(tmp_path, where=None)
    assert "raw/stats.csv.gz, line 5" in msg and "column 'area': unknown area code '0101'" in msg


@pytest.mark.parametrize("where,kept", [
    ({"column": "authority", "in": ["NORTH", "SOUTH"]}, 5),
    ({"column": "authority", "not_in": ["SOUTH"]}, 3),
    ([{"column": "authority", "equals": "NORTH"}, {"column": "population", "min": 1500}], 2),
    ([{"column": "authority", "equals": "NORTH"}, {"column": "population", "max": 2000}], 2),
    ([{"column": "authority", "equals": "NORTH"}, {"column": "area", "not_in": ["0002"]}], 2),
])
def test_filter_conditions_combine_with_and(where, kept, tmp_path):
    path = write_small_city(tmp_path, where=where)
    if kept == 5:   # SOUTH's rows kept: their areas are not in the node's register
        with pytest.raises(ContractError, match="line 5 .* unknown area code '0101'"):
            build_features(load_contract(path), tmp_path)
        return
    from clients.contracts.reading import read_raw
    from clients.contracts.rowfilter import filter_rows

    spec = load_contract(path).tables["stats"]
    raw = filter_rows(read_raw(spec, tmp_path), spec)
    assert raw.filtered["rows_kept"] == kept and len(raw.frame) == kept


def test_rows_keep_their_line_numbers_after_the_filter(tmp_path):
    rows = [list(r) for r in AREAS]
    rows[2][3] = "-5"   # SC:0003 (line 4) has negative children
    err = refused_rows(tmp_path, rows)
    assert "line 4 (line number in the file" in str(err.value) and "column 'children'" in str(err.value)


@pytest.mark.parametrize("where,words", [
    ({"column": "region", "equals": "X"}, ["table 'stats', where", "column 'region' is not among"]),
    ({"column": "authority"}, ["column 'authority' has no condition"]),
    ({"column": "authority", "in": []}, ["`in` of column 'authority' is an empty list"]),
    ({"column": "authority", "min": 3}, ["min/max compare numbers", "type string"]),
    ({"column": "population", "equals": "many"}, ["column 'population' is numeric", "got 'many'"]),
    ({"column": "population", "min": 5, "max": 1}, ["min 5 is above max 1"]),
    ({"column": "authority", "equal": "X"}, ["unknown key(s) equal"]),
    ({"column": "authority", "equals": "NOWHERE"}, ["keeps none of the 5 rows"]),
])
def test_bad_filters_name_table_and_column(where, words, tmp_path):
    msg = refused(tmp_path, where=where)
    assert "contract.yaml" in msg or "stats.csv.gz" in msg
    for word in words:
        assert word in msg, msg


def test_a_filter_never_selects_by_a_protected_attribute(tmp_path):
    path = write_small_city(tmp_path)
    data = yaml.safe_load(path.read_text())
    data["tables"]["stats"]["columns"]["nationality"] = {"type": "string"}
    data["tables"]["stats"]["audit_columns"] = ["nationality"]
    data["tables"]["stats"]["where"] = {"column": "nationality", "equals": "X"}
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ContractError, match="where: column 'nationality' is a protected attribute"):
        load_contract(path)


def test_a_bad_number_in_a_filter_column_names_its_row(tmp_path):
    rows = [list(r) for r in AREAS]
    rows[3][2] = "lots"
    err = refused_rows(tmp_path, rows, where={"column": "population", "min": 1})
    assert "line 5" in str(err.value) and "'lots' is not a number" in str(err.value)


# --- the expression language ---------------------------------------------------------------------------

@pytest.mark.parametrize("text,expected", [
    ("a / b", [0.5, np.nan, np.nan]),
    ("a + b * 2", [5.0, 3.0, np.nan]),
    ("(a + b) * 2", [6.0, 6.0, np.nan]),
    ("-a - -b", [1.0, -3.0, np.nan]),
    ("a / b / 2", [0.25, np.nan, np.nan]),
    ("1e3 * a / (b - b + 1)", [1000.0, 3000.0, np.nan]),
    ("a * .5", [0.5, 1.5, 1.0]),
])
def test_expressions_evaluate_with_missing_for_division_by_zero(text, expected):
    values = {"a": np.array([1.0, 3.0, 2.0]), "b": np.array([2.0, 0.0, np.nan])}
    out = E.evaluate(E.parse(text), values, 3)
    np.testing.assert_allclose(out, expected, equal_nan=True)
    assert not np.isinf(out).any()


@pytest.mark.parametrize("text,position,words", [
    ("a /", 3, "ends where"),
    ("a b", 2, "unexpected 'b' after a complete expression"),
    ("(a + b", 6, "expected ')'"),
    ("a.b", 1, "attribute access is not allowed"),
    ("log(a)", 0, "function call"),
    ("__import__(os)", 0, "function call"),
    ("open('x')", 5, "unexpected character"),
    ("a ** 2", 3, "unexpected '*'"),
    ("a % 2", 2, "only + - * /"),
    ("a[0]", 1, "indexing is not allowed"),
    ("", 0, "empty"),
    ("a; b", 1, "unexpected character ';'"),
])
def test_syntax_errors_name_the_position(text, position, words):
    with pytest.raises(E.ExprError) as err:
        E.parse(text)
    assert err.value.position == position and words in str(err.value)


def test_expr_reads_only_numeric_declared_columns(tmp_path):
    path = write_small_city(tmp_path)
    data = yaml.safe_load(path.read_text())
    data["blocks"]["context"]["share_0_15"]["expr"] = "children / authority"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ContractError) as err:
        load_contract(path)
    assert "feature 'share_0_15'" in str(err.value) and "column 'authority'" in str(err.value)
    assert "position 12 of expr" in str(err.value) and "must be integer or float" in str(err.value)


def test_expr_needs_a_published_table(tmp_path):
    path = write_small_city(tmp_path)
    data = yaml.safe_load(path.read_text())
    data["tables"]["stats"]["privacy"] = {"unit": "record", "max_cells": 1, "max_per_cell": 1}
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ContractError, match="op (area_value|expr) reads published values"):
        load_contract(path)


# --- zip input -----------------------------------------------------------------------------------------

def test_zip_with_several_members_needs_member(tmp_path):
    members = {"stats.csv": csv_text(), "readme.txt": "about"}
    msg = refused(tmp_path / "a", packing="zip", members=members)
    assert "stats.zip: the zip archive holds 2 files (stats.csv, readme.txt)" in msg and "`member:`" in msg
    built = build(tmp_path / "b", packing="zip", members=members, member="stats.csv")
    assert len(built.blocks["context"]) == 2


def test_zip_errors_are_one_clear_message(tmp_path):
    assert "the zip archive is empty" in refused(tmp_path / "a", packing="zip", members={})
    msg = refused(tmp_path / "b", packing="zip", members={"x.csv": csv_text()}, member="stats.csv")
    assert "has no member 'stats.csv' (it holds: x.csv)" in msg
    write_small_city(tmp_path / "c", packing="zip")
    good = (tmp_path / "c/raw/stats.zip").read_bytes()
    (tmp_path / "c/raw/stats.zip").write_bytes(good[:40])
    with pytest.raises(ContractError, match="not a readable zip archive"):
        build_features(load_contract(tmp_path / "c/contract.yaml"), tmp_path / "c")
    damaged = bytearray(good)
    damaged[60] ^= 0xFF     # inside the deflated member
    (tmp_path / "c/raw/stats.zip").write_bytes(bytes(damaged))
    with pytest.raises(ContractError, match=r"stats.zip \(member stats.csv\): the zip member is truncated or damaged"):
        build_features(load_contract(tmp_path / "c/contract.yaml"), tmp_path / "c")


def test_rows_in_a_zip_member_are_named_in_it(tmp_path):
    rows = [list(r) for r in AREAS]
    rows[0][2] = "1.252"   # a decimal point where thousands are ","
    msg = refused(tmp_path, packing="zip", members={"stats.csv": csv_text(rows)})
    assert "stats.zip (member stats.csv), line 2" in msg and "column 'population'" in msg


def test_member_on_a_plain_file_is_refused(tmp_path):
    assert "is not a zip archive" in refused(tmp_path, member="stats.csv")


def test_zip_member_stream_is_closed(tmp_path):
    write_small_city(tmp_path, packing="zip")
    from clients.contracts.reading import source_of

    src = source_of(tmp_path / "raw/stats.zip", None)
    with src.open() as fh:
        assert fh.read().decode().startswith("area;authority")
    assert zipfile.is_zipfile(tmp_path / "raw/stats.zip")
