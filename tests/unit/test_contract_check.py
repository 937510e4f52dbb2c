"""`pulse-twin contract check` validates a contract without data (ok + summary, or ONE message, exit 2), and
docs/contract-reference.md is generated from the same schema the parser reads, so neither can drift."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from federation.cli import main
from federation.config import configs_dir
from clients.contracts import schema
from clients.contracts.reference import REFERENCE, render
from clients.contracts.registry import OPS, get_op
from tests.support.contract_fixtures.small_city import contract as small_city

PROJECT = sorted(p.stem for p in (configs_dir() / "contract").glob("*.yaml"))


def check(path: Path | str, capsys) -> tuple[int, str, str]:
    code = main(["contract", "check", str(path)])
    out = capsys.readouterr()
    return code, out.out, out.err


def write(tmp_path: Path, data, name: str = "city.yaml") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


@pytest.mark.parametrize("name", PROJECT)
def test_every_project_contract_checks_ok_with_a_summary(name, capsys):
    code, out, err = check(configs_dir() / "contract" / f"{name}.yaml", capsys)
    assert code == 0 and err == ""
    first, summary = out.splitlines()[:2]
    assert first.startswith("ok: ") and f"contract '{name}'" in summary
    assert "table(s)" in summary and "feature(s)" in summary and "unit:" in summary


def test_summary_names_tables_blocks_units_filters_and_periods(tmp_path, capsys):
    code, out, _ = check(write(tmp_path, small_city()), capsys)
    assert code == 0
    assert "1 table(s): stats (csv raw/stats.csv.gz" in out and "public statistics" in out
    assert "row filter authority = 'NORTH'" in out and "8 feature(s) in 1 block(s): context (8)" in out
    assert "one fixed period 2021" in out


def _edit(path: list, value):
    def apply(d):
        target = d
        for key in path[:-1]:
            target = target[key]
        if value is KeyError:
            del target[path[-1]]
        else:
            target[path[-1]] = value
    return apply


BAD = [
    # (edit, words the one message must hold)
    (_edit(["tables", "stats", "delimter"], ";"), ["table 'stats'", "unknown key(s) delimter"]),
    # the CSV reader takes one character; `auto` is not detected; an unknown encoding fails only at read time
    (_edit(["tables", "stats", "delimiter"], ";;"), ["table 'stats', delimiter", "exactly one character", "';;'"]),
    (_edit(["tables", "stats", "delimiter"], ""), ["table 'stats', delimiter", "exactly one character", "''"]),
    (_edit(["tables", "stats", "delimiter"], "auto"), ["table 'stats', delimiter", "'auto'", "not detected"]),
    (_edit(["tables", "stats", "delimiter"], '"'), ["table 'stats', delimiter", "the quote character"]),
    (_edit(["tables", "stats", "encoding"], "cp1252x"), ["table 'stats', encoding", "'cp1252x' is not a known text"]),
    (_edit(["tables", "stats", "encoding"], "base64"), ["table 'stats', encoding", "'base64' is not a known text"]),
    (_edit(["tables", "stats", "header"], "yes"), ["table 'stats'", "header must be a boolean"]),
    (_edit(["tables", "stats", "format"], "xlsx"), ["table 'stats'", "format must be one of csv, parquet"]),
    (_edit(["tables", "stats", "columns", "population", "type"], "number"), ["column 'population'", "type must be"]),
    (_edit(["tables", "stats", "columns", "population", "unit"], "procent"), ["column 'population'", "`unit`"]),
    (_edit(["tables", "stats", "privacy"], {"unit": "record", "max_cells": 0, "max_per_cell": 1}),
     ["privacy.max_cells", ">= 1"]),
    (_edit(["tables", "stats", "privacy"], {"unit": "record"}), ["privacy.max_cells is required"]),
    (_edit(["periods"], {"kind": "weekly"}), ["periods", "kind must be 'month' or 'fixed'"]),
    (_edit(["periods"], {"kind": "fixed", "value": "2021", "from": ["x.y"]}), ["periods", "unknown key(s) from"]),
    (_edit(["periods"], {"kind": "month", "from": ["stats.area"], "start": "2019-13", "end": "2020-01"}),
     ["periods.start: '2019-13' is not a month 'YYYY-MM'"]),
    (_edit(["periods"], {"kind": "month", "from": ["stats.area"], "start": "2020-06", "end": "2020-01"}),
     ["periods: start 2020-06 is after end 2020-01"]),
    (_edit(["periods"], {"kind": "month", "from": ["stats.area"], "start": "2019-01", "end": "2020-01"}),
     ["periods.from: 'stats.area' must be a date"]),
    # issue 26: the grid is the declared window, never the records' dates
    (_edit(["periods"], {"kind": "month", "end": "2020-01"}), ["periods.start is required", "rule: public_grid"]),
    (_edit(["periods"], {"kind": "month", "start": "2019-01", "end": "2020-01", "min_share": 1.5}),
     ["periods.min_share must be a share"]),
    (_edit(["periods"], {"kind": "month", "start": "2019-01", "end": "2020-01", "missing": "zero"}),
     ["missing must be one of refuse, mark"]),
    # issue 27: paths inside the node directory, sane bounds, underscore keys, public grid, cadence, pseudonyms
    (_edit(["tables", "stats", "path"], "/etc/passwd"), ["table 'stats', path", "absolute path", "rule: node_dir_paths"]),
    (_edit(["tables", "stats", "path"], "../police/raw/incidents.csv"), ["climbs out with '..'", "rule: node_dir_paths"]),
    (_edit(["area_register", "path"], "C:\\data\\areas.csv"), ["area_register.path", "absolute path"]),
    (_edit(["tables", "stats", "columns", "population", "max"], 1e308), ["column 'population', max", "rule: sane_bounds"]),
    (_edit(["tables", "stats", "privacy"], {"unit": "record", "max_cells": 1, "max_per_cell": 1,
                                            "clip": {"population": [0, 1e308]}}), ["privacy.clip.population",
                                                                                   "rule: sane_bounds"]),
    (_edit(["_min_population"], 5000), ["_min_population", "'min_population'", "rule: underscore_keys"]),
    (_edit(["tables", "stats", "_where"], {"column": "region", "equals": "x"}), ["tables.stats._where",
                                                                                 "rule: underscore_keys"]),
    (_edit(["tables", "stats", "privacy"], {"unit": "record", "max_cells": 1, "max_per_cell": 1,
                                            "pseudonym_format": "[a-z"}), ["pseudonym_format", "unit 'record'"]),
    (_edit(["tables", "stats", "cadence"], {"every": 0}), ["cadence.every", ">= 1"]),
    (_edit(["tables", "stats", "cadence"], {"months": ["2019-1"]}), ["cadence.months", "not a month"]),
    (_edit(["tables", "stats", "privacy"], {"unit": "record", "max_cells": 1, "max_per_cell": 1,
                                            "max_clipped_share": 2}), ["max_clipped_share must be a share"]),
    (_edit(["tables", "stats", "columns", "authority"], {"type": "date", "format": "%d-%Q"}),
     ["column 'authority'", "format '%d-%Q' is not a usable strptime format"]),
    (_edit(["min_population"], "100"), ["min_population must be"]),
    (_edit(["blocks", "context", "log_population", "op"], "area_valeu"), ["feature 'log_population'", "unknown op"]),
    (_edit(["blocks", "context", "log_population", "apply"], "sqrt"), ["feature 'log_population'", "apply must be one of"]),
    (_edit(["blocks", "context", "log_population", "scale"], "1000"), ["feature 'log_population'", "scale must be a number"]),
    (_edit(["blocks", "context", "log_population", "column"], "inhabitants"),
     ["feature 'log_population'", "column 'inhabitants'", "not a column of table 'stats'"]),
    (_edit(["blocks", "context", "share_0_15", "expr"], "children /"),
     ["feature 'share_0_15'", "position 11", "ends where"]),
    (_edit(["blocks", "context", "share_0_15", "expr"], "kids / population"),
     ["feature 'share_0_15'", "position 1", "column 'kids'"]),
    (_edit(["blocks", "context", "share_0_15"], KeyError), ["feature 'share_0_15'", "not produced"]),
    (_edit(["tables", "stats", "where"], {"column": "region", "equals": "NORTH"}),
     ["table 'stats', where", "column 'region'"]),
    (_edit(["privacy_unit", "row"], "person"), ["privacy_unit.row must be 'area-period'"]),
]


@pytest.mark.parametrize("edit,words", BAD, ids=[" ".join(w) for _, w in BAD])
def test_a_bad_contract_gives_one_message_naming_file_and_key(edit, words, tmp_path, capsys):
    data = small_city()
    edit(data)
    path = write(tmp_path, data)
    code, out, err = check(path, capsys)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert str(path) in err
    for word in words:
        assert word in err, (word, err)


@pytest.mark.parametrize("text,words", [
    ("tables: [a, b\n", ["not valid YAML"]),
    ("- just\n- a list\n", ["city.yaml: a contract must be a mapping of keys", "this file is a list"]),
    ("", ["city.yaml: the contract is empty"]),
    ("# nothing but a comment\n", ["city.yaml: the contract is empty"]),
    ("just a sentence\n", ["city.yaml: a contract must be a mapping of keys", "this file is a single value"]),
])
def test_broken_yaml_is_one_message(text, words, tmp_path, capsys):
    path = write(tmp_path, text)
    code, _, err = check(path, capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert all(w in err for w in words), err


def test_missing_file_is_one_message(tmp_path, capsys):
    code, _, err = check(tmp_path / "nope.yaml", capsys)
    assert code == 2 and "nope.yaml: contract file not found" in err


def test_reference_is_up_to_date():
    assert REFERENCE.read_text(encoding="utf-8") == render(), (
        "docs/contract-reference.md is out of date: run python -m clients.contracts.reference")


def test_reference_documents_every_key_and_every_op_parameter():
    text = render()
    for section in schema.SECTIONS:
        assert f"## `{section.name}`" in text
        for key in section.keys:
            assert f"| `{key.name}` |" in text
    for name in OPS:
        op = get_op(name)
        assert f"### `{name}`" in text and op.example and op.params
        assert set(op.required) | set(op.optional) == {p.name for p in op.params}
        for param in op.params:
            assert f"| `{param.name}` |" in text


def test_parser_accepts_exactly_the_schema_keys(tmp_path, capsys):
    """The unknown-key message lists the schema's keys: the parser reads them from there."""
    data = small_city()
    data["tables"]["stats"]["columns"]["population"]["bogus"] = 1
    code, _, err = check(write(tmp_path, data), capsys)
    assert code == 2 and ", ".join(sorted(schema.COLUMN.names())) in err


def test_reference_command_prints_the_same_text(capsys, tmp_path):
    assert main(["contract", "reference"]) == 0
    assert capsys.readouterr().out == render()
    out = tmp_path / "ref.md"
    assert main(["contract", "reference", "--out", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == render()


def test_a_missing_file_argument_names_only_the_file_not_the_optional_overrides(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["contract", "check"])
    err = capsys.readouterr().err
    assert stop.value.code == 2
    assert "required: FILE" in err and "KEY=VALUE" not in err
