"""Bounds one person cannot dodge by spelling, no path out of the node directory, no month silently zero,
public tables that are published figures, clipping as a plausibility check, whole builds (issues 26 and 27).
Each test has a control case that shows it able to fail."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from clients.contracts import build_features, load_contract
from clients.contracts.output import BuildHeld, write_features
from clients.contracts.series import TableAggregate
from federation.cli import main
from federation.errors import ConfigError, ContractError
from tests.support.contract_fixtures import A1, A2, HeerlenFixture, WINDOW, window
from tests.support.contract_fixtures.small_city import contract as small_city

# ---- 27.1: one household, many spellings -------------------------------------------------------------

SPELLINGS = ["HH-Q", "hh-q", " HH-Q", "HH-Q ", "Hh-Q", "\uff28\uff28\uff0d\uff31", "HH -Q", "h h-q", "HH-Q\t", "hH-q"]


def _one_household_many_spellings(spellings: list[str]) -> HeerlenFixture:
    """Ten intakes of ONE household in A1, 2019-12, each file spelling its pseudonym another way."""
    fx = HeerlenFixture()
    extra = pd.DataFrame([{"casusnummer": f"KQ{i}", "huishouden_pseudoniem": name, "buurtcode": A1,
                           "datum_aanmelding": "2019-12-03", "datum_afsluiting": "2019-12-20",
                           "leefgebieden": "wonen", "contacturen": "1"} for i, name in enumerate(spellings)])
    fx.casussen = pd.concat([fx.casussen, extra], ignore_index=True)
    return fx


def _intakes_a1_december(tmp_path: Path, fx: HeerlenFixture, *overrides: str) -> float:
    care = build_features(load_contract("buurtteams", [*WINDOW, *overrides]), fx.write_buurtteams(tmp_path)).blocks["care"]
    row = care[(care.area_code == A1) & (care.period == "2019-12")]
    return float(row["new_intakes_per_1000"].iloc[0])   # A1 has 1,000 residents: per 1,000 = count


def test_the_bound_holds_whatever_the_pseudonym_spelling(tmp_path, monkeypatch):
    # K2 (HH-Y) and the household's ten files: max_per_cell 1 keeps ONE of the household's intakes in the cell
    fx = _one_household_many_spellings(SPELLINGS)
    assert _intakes_a1_december(tmp_path / "folded", fx) == pytest.approx(2.0)
    built = build_features(load_contract("buurtteams", WINDOW), fx.write_buurtteams(tmp_path / "stats"))
    spell = built.stats["pseudonyms"]["casussen"]["huishouden_pseudoniem"]
    assert spell["spellings"] == 14 and spell["units"] == 5 and spell["merged_spellings"] == 9
    # control: without folding, each spelling is a unit of its own and the bound is dodged
    import clients.contracts.pseudonyms as pseudonyms

    monkeypatch.setattr(pseudonyms, "normalise", lambda values: values.astype(object))
    monkeypatch.setattr(pseudonyms, "_fold", lambda text: text)
    unfolded = _intakes_a1_december(tmp_path / "unfolded", fx, "~tables.casussen.privacy.pseudonym_format")
    assert unfolded == pytest.approx(11.0)


def test_a_pseudonym_not_of_the_declared_form_is_refused_and_near_duplicates_are_counted(tmp_path):
    fx = _one_household_many_spellings(["HH-Q", "HHQ"])
    built = build_features(load_contract("buurtteams", WINDOW), fx.write_buurtteams(tmp_path / "near"))
    assert built.stats["pseudonyms"]["casussen"]["huishouden_pseudoniem"]["near_duplicates"] == 2
    control = build_features(load_contract("buurtteams", WINDOW), HeerlenFixture().write_buurtteams(tmp_path / "c"))
    assert control.stats["pseudonyms"]["casussen"]["huishouden_pseudoniem"]["near_duplicates"] == 0
    bad = _one_household_many_spellings(["HH Q/1"])
    with pytest.raises(ContractError, match=r"casussen.csv, line 6 .*column 'huishouden_pseudoniem'.*declared form "
                                            r".*rule: pseudonym_format"):
        build_features(load_contract("buurtteams", WINDOW), bad.write_buurtteams(tmp_path / "bad"))


# ---- 27.2: `public` means one row per area and period -----------------------------------------------

def test_a_record_level_table_declared_public_is_refused(tmp_path):
    node = HeerlenFixture().write_police(tmp_path / "police")
    public = [*WINDOW, "~tables.incidents.privacy.max_cells", "~tables.incidents.privacy.max_per_cell",
              "tables.incidents.privacy.unit=public"]
    with pytest.raises(ContractError, match=r"table 'incidents' is declared public, but line 3 .* repeats an earlier "
                                            r"row's area and period .*rule: public_area_level"):
        build_features(load_contract("police", public), node)
    assert len(build_features(load_contract("police", WINDOW), node).blocks["safety"]) == 6   # control


def test_a_public_register_with_two_rows_for_one_area_and_year_is_refused(tmp_path):
    fx = HeerlenFixture()
    node = fx.write_municipality(tmp_path / "ok")
    assert build_features(load_contract("municipality", window("municipality")), node).blocks["context"] is not None   # control
    fx.register = pd.concat([fx.register, fx.register.iloc[[0]]], ignore_index=True)
    with pytest.raises(ContractError, match=r"table 'register' is declared public.*\(jaar\).*rule: public_area_level"):
        build_features(load_contract("municipality", window("municipality")), fx.write_municipality(tmp_path / "dup"))


def test_the_area_register_table_must_be_public(tmp_path):
    data = small_city()
    data["area_register"] = {"table": "stats"}
    data["min_population"] = None
    ok = tmp_path / "ok.yaml"
    ok.write_text(yaml.safe_dump(data))
    assert load_contract(ok).register_table == "stats"   # control: a public table may list the areas
    data["tables"]["stats"]["privacy"] = {"unit": "record", "max_cells": 1, "max_per_cell": 1}
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(ContractError, match=r"area_register.table: 'stats' protects one record .*rule: public_grid"):
        load_contract(bad)


# ---- 27.3: paths stay inside the node directory -----------------------------------------------------

def test_a_symlink_out_of_the_node_directory_is_refused(tmp_path):
    fx = HeerlenFixture()
    other = fx.write_police(tmp_path / "other")
    node = tmp_path / "police"
    fx.write_police(node)
    (node / "raw" / "incidents.csv").unlink()
    (node / "raw" / "incidents.csv").symlink_to(other / "raw" / "incidents.csv")
    with pytest.raises(ContractError, match=r"incidents.csv \(table 'incidents' of the contract\): resolves to .*"
                                            r"outside the node directory .*rule: node_dir_paths"):
        build_features(load_contract("police", WINDOW), node)
    # control: a symlink that stays inside the node directory is read
    (node / "raw" / "incidents.csv").unlink()
    (node / "exports").mkdir()
    os.replace(other / "raw" / "incidents.csv", node / "exports" / "incidents.csv")
    (node / "raw" / "incidents.csv").symlink_to(node / "exports" / "incidents.csv")
    assert len(build_features(load_contract("police", WINDOW), node).blocks["safety"]) == 6


def test_paths_out_of_the_node_directory_are_refused_by_the_contract_check(tmp_path):
    node = HeerlenFixture().write_police(tmp_path / "police")
    for path in (str(node / "raw" / "incidents.csv"), "../police/raw/incidents.csv", "raw/../../x.csv"):
        with pytest.raises(ContractError, match=r"rule: node_dir_paths"):
            load_contract("police", [*WINDOW, f"tables.incidents.path='{path}'"])
    assert load_contract("police", [*WINDOW, "tables.incidents.path=raw/./incidents.csv"])   # control


def test_a_directory_given_as_a_file_is_named_as_such(tmp_path):
    node = HeerlenFixture().write_police(tmp_path / "police")
    (node / "raw" / "incidents.csv").unlink()
    (node / "raw" / "incidents.csv").mkdir()
    with pytest.raises(ContractError, match=r"incidents.csv \(table 'incidents' of the contract\): is a directory, "
                                            r"not a file"):
        build_features(load_contract("police", WINDOW), node)
    (node / "raw" / "incidents.csv").rmdir()
    with pytest.raises(ContractError, match=r"incidents.csv: file not found"):   # control: the other message
        build_features(load_contract("police", WINDOW), node)


# ---- 27.4: periods complete or marked ---------------------------------------------------------------

def _police_volume(december: int) -> HeerlenFixture:
    fx = HeerlenFixture()
    rows = []
    for month, n in (("11-2019", 20), ("12-2019", december), ("01-2020", 20)):
        rows += [{"registratienummer": f"PL-{month}-{i}", "datum_registratie": f"{i % 28 + 1:02d}-{month} 10:00",
                  "buurtcode": A1 if i % 2 else A2, "incidentsoort": "overlast", "prioriteit": "2"} for i in range(n)]
    fx.incidents = pd.DataFrame(rows)
    return fx


def test_a_month_far_below_the_usual_volume_is_missing(tmp_path):
    node = _police_volume(december=2).write_police(tmp_path / "low")
    with pytest.raises(ContractError, match=r"incidents.datum_registratie: 2019-12 holds 2 records, below 0.25 of the "
                                            r"usual 20 a month"):
        build_features(load_contract("police", WINDOW), node)
    # controls: a lower threshold accepts it; an ordinary month does not trip the check
    assert build_features(load_contract("police", [*WINDOW, "periods.min_share=0.05"]), node).stats["missing_months"] == {}
    normal = _police_volume(december=15).write_police(tmp_path / "normal")
    assert build_features(load_contract("police", WINDOW), normal).stats["missing_months"] == {}


def _noise(amount: float):
    """A stand-in release that adds `amount` to every cell of every series (noise lands in empty cells too)."""
    def release(ctx, aggregates: dict[str, TableAggregate]) -> dict[str, TableAggregate]:
        for agg in aggregates.values():
            if not agg.privacy.is_public:
                agg.values = {k: v + amount for k, v in agg.values.items()}
        return aggregates
    return release


def test_a_survey_cadence_makes_non_wave_months_missing_never_a_value(tmp_path):
    assert load_contract("municipality").tables["enquete"].cadence.every == 3   # the project's quarterly waves
    node = HeerlenFixture().write_municipality(tmp_path / "m")   # respondents in 2019-11 (A1) and 2019-12 (A2)
    plain = build_features(load_contract("municipality", window("municipality")), node, release=_noise(3.0))
    assert "2020-01" in set(plain.label.period)        # control: noise in an empty month reads as a label there
    waves = [*WINDOW, "tables.enquete.cadence.every=2", "tables.enquete.cadence.first=2019-11"]
    built = build_features(load_contract("municipality", waves), node, release=_noise(3.0))
    assert set(built.label.period) == {"2019-11", "2020-01"}   # 2019-12 is no wave: missing, whatever was drawn
    assert built.missing_periods == {"label": ["2019-12"]}
    assert np.isfinite(built.label["label"]).all()


def test_a_wave_without_respondents_is_a_missing_month(tmp_path):
    node = HeerlenFixture().write_municipality(tmp_path / "m")
    waves = [*WINDOW, "tables.enquete.cadence.every=2", "tables.enquete.cadence.first=2019-11",
             "periods.from=[meldingen.gemeld_op,enquete.peilmaand]"]
    with pytest.raises(ContractError, match=r"enquete.peilmaand: no record in 2020-01"):
        build_features(load_contract("municipality", waves), node)
    every_month = [*window("municipality"), "periods.from=[meldingen.gemeld_op,enquete.peilmaand]"]
    with pytest.raises(ContractError, match=r"enquete.peilmaand: no record in 2020-01"):   # control: same without waves
        build_features(load_contract("municipality", every_month), node)
    marked = build_features(load_contract("municipality", [*waves, "periods.missing=mark"]), node)
    assert marked.stats["missing_months"] == {"enquete": ["2020-01"]}
    assert marked.missing_periods["label"] == ["2019-12", "2020-01"]


def test_the_window_must_not_precede_the_first_closed_file(tmp_path):
    node = HeerlenFixture().write_buurtteams(tmp_path / "bt")
    with pytest.raises(ContractError, match=r"periods.start 2019-10 precedes the first month of "
                                            r"casussen.datum_afsluiting \(2019-11\)"):
        build_features(load_contract("buurtteams", ["periods.start=2019-10", "periods.end=2020-01",
                                                    "periods.missing=mark"]), node)
    assert build_features(load_contract("buurtteams", WINDOW), node).stats["periods"]["first"] == "2019-11"


# ---- 27.5: clipping as a plausibility check ---------------------------------------------------------

def test_a_mostly_clipped_column_holds_the_build(tmp_path):
    fx = HeerlenFixture()
    node = fx.write_municipality(tmp_path / "m")
    write_features(build_features(load_contract("municipality", window("municipality")), node), node)   # control: accepted
    first = (node / "features" / "manifest.json").read_text()
    from tests.support.contract_fixtures import SCORES

    for column in SCORES:   # the survey on another scale (x10)
        fx.enquete[column] = (fx.enquete[column].astype(float) * 10).map(str)
    node = fx.write_municipality(node)
    built = build_features(load_contract("municipality", window("municipality")), node)
    assert any(line.startswith("enquete.score_woningvoorraad: ") and "rule: clip_plausibility" in line
               for line in built.stats["clipped"])
    with pytest.raises(BuildHeld, match=r"enquete.score_sociale_samenhang: \d+\.\d% of its 3 values lie outside the "
                                        r"clip bounds \[-0.4, 0.4\]"):
        write_features(built, node)
    assert (node / "features" / "manifest.json").read_text() == first     # the accepted build stays
    write_features(built, node, accept=True)                               # the operator may accept it


# ---- 27.6: whole builds, override once --------------------------------------------------------------

def test_a_build_replaces_the_features_as_a_whole(tmp_path):
    node = HeerlenFixture().write_municipality(tmp_path / "m")
    write_features(build_features(load_contract("municipality", window("municipality")), node), node)
    assert (node / "features" / "social.parquet").is_file() and (node / "features" / "label.parquet").is_file()
    dropped = load_contract("municipality", [*window("municipality"), "~blocks.social", "label=null"])
    write_features(build_features(dropped, node), node, accept=True)
    assert not (node / "features" / "social.parquet").exists()
    assert not (node / "features" / "label.parquet").exists()
    assert (node / "features" / "context.parquet").is_file()   # control: what the build produced is there


def test_a_setting_overridden_twice_is_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"min_population=2: 'min_population' is also set by min_population=1"):
        load_contract("police", [*WINDOW, "min_population=1", "min_population=2"])
    assert load_contract("police", [*WINDOW, "min_population=2"]).min_population == 2   # control
    # the same value twice loses nothing (a tool pinning a path the person also gave)
    assert load_contract("police", [*WINDOW, "tables.incidents.path=raw/incidents.csv",
                                    "tables.incidents.path='raw/incidents.csv'"]).tables["incidents"].path


def test_contract_check_lists_the_anchor_keys_it_ignores(capsys):
    assert main(["contract", "check", "municipality"]) == 0
    out = capsys.readouterr().out
    assert "Ignored (YAML anchors only): _register, _open." in out
    assert "every month 2019-01 to 2021-12 (complete in meldingen.gemeld_op; a missing month is refused)" in out


def test_an_underscore_key_that_spells_a_real_key_is_refused(tmp_path):
    data = small_city()
    ok = tmp_path / "ok.yaml"
    ok.write_text(yaml.safe_dump({**data, "_anchor": {"op": "expr"}}))
    assert load_contract(ok).ignored_keys == ("_anchor",)   # control
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**data, "_min_population": 5000}))
    with pytest.raises(ContractError, match=r"_min_population: spells the contract key 'min_population'"):
        load_contract(bad)


def test_the_features_command_says_which_months_were_missing(tmp_path, capsys):
    fx = HeerlenFixture()
    fx.incidents = fx.incidents[fx.incidents.buurtcode == A1].reset_index(drop=True)   # 2019-12 empty
    node = fx.write_police(tmp_path / "p")
    assert main(["features", "--contract", "police", "--node-dir", str(node), *WINDOW]) == 2   # refused
    assert "incidents.datum_registratie: no record in 2019-12" in capsys.readouterr().err
    assert main(["features", "--contract", "police", "--node-dir", str(node), *WINDOW, "periods.missing=mark"]) == 0
    out = capsys.readouterr().out
    assert "table incidents: months missing from the export, marked missing (never zero): 2019-12" in out
    assert "safety: no rows in 2019-12" in out


def test_a_directory_given_as_the_contract_is_named_as_such(tmp_path):
    (tmp_path / "contract.yaml").mkdir()
    with pytest.raises(ConfigError, match=r"contract.yaml: is a directory, not a contract file"):
        load_contract(tmp_path / "contract.yaml")
    with pytest.raises(ConfigError, match=r"other.yaml: contract file not found"):   # control: the other message
        load_contract(tmp_path / "other.yaml")


def test_a_tools_defaults_give_way_to_a_persons_overrides():
    from federation.config import layered

    assert layered(["local.rounds=30", "seed=0"], ["local.rounds=2"]) == ["seed=0", "local.rounds=2"]
    assert layered(["local.rounds=30"], []) == ["local.rounds=30"]   # control: nothing given, defaults stay
