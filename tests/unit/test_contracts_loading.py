"""Contracts load through Hydra (name or path, with overrides), and a contract that does not produce
exactly the federation's features, or names ops and parameters that do not exist, is refused."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from federation.config import configs_dir
from clients.contracts import load_contract
from federation.blocks import block_schema
from federation.errors import ConfigError, ContractError

HEERLEN = ("police", "municipality", "buurtteams")


def variant(tmp_path: Path, name: str, edit) -> Path:
    """A copy of configs/contract/<name>.yaml changed by `edit(data)`, as a file of its own."""
    data = yaml.safe_load((configs_dir() / "contract" / f"{name}.yaml").read_text())
    edit(data)
    path = tmp_path / f"{name}_variant.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def refused(path: Path) -> str:
    with pytest.raises(ContractError) as err:
        load_contract(path)
    assert str(path) in str(err.value)
    return str(err.value)


@pytest.mark.parametrize("name", HEERLEN + ("uci_communities",))
def test_project_contracts_load_and_follow_the_block_schemas(name):
    contract = load_contract(name)
    assert str(contract.path) == f"configs/contract/{name}.yaml"
    for block, features in contract.blocks.items():
        assert tuple(f.name for f in features) == block_schema(block).features


def test_blocks_and_label_per_partner():
    assert set(load_contract("police").blocks) == {"safety"}
    municipality = load_contract("municipality")
    assert set(municipality.blocks) == {"context", "social"} and municipality.label.op == "liveability"
    assert set(load_contract("buurtteams").blocks) == {"care"}


def test_overrides_change_fields():
    contract = load_contract("police", overrides=["min_population=200", "privacy_unit.max_rows_per_person=48"])
    assert contract.min_population == 200 and contract.max_rows_per_person == 48
    assert load_contract("police").min_population == 100


def test_override_of_a_missing_key_is_a_config_error_naming_the_setting_a_typo_meant():
    with pytest.raises(ConfigError) as err:
        load_contract("police", overrides=["min_populaton=200"])
    assert "min_populaton: no such setting; did you mean min_population?" in str(err.value)
    with pytest.raises(ConfigError) as err:
        load_contract("police", overrides=["periods.strat=2019-02"])
    assert "did you mean periods.start?" in str(err.value)
    with pytest.raises(ConfigError) as err:   # nothing close: how to add a new setting
        load_contract("police", overrides=["tables.incidents.columns.zone=x"])
    assert "(to add it: +tables.incidents.columns.zone=VALUE)" in str(err.value) and "did you mean" not in str(err.value)


def test_unknown_contract_name_lists_the_choices():
    with pytest.raises(ConfigError) as err:
        load_contract("polize")
    assert "no configuration 'polize'" in str(err.value) and "police" in str(err.value)


def test_load_by_path_with_overrides(tmp_path):
    path = variant(tmp_path, "police", lambda d: None)
    contract = load_contract(path, overrides=["min_population=300"])
    assert contract.path == path and contract.min_population == 300


def test_feature_not_in_the_block_schema_is_refused(tmp_path):
    def edit(d):
        d["blocks"]["safety"]["arson_per_1000"] = dict(d["blocks"]["safety"]["drugs_per_1000"])
    msg = refused(variant(tmp_path, "police", edit))
    assert "block 'safety', feature 'arson_per_1000': not a feature of configs/block/safety.yaml" in msg


def test_missing_feature_is_refused(tmp_path):
    msg = refused(variant(tmp_path, "police", lambda d: d["blocks"]["safety"].pop("drugs_per_1000")))
    assert "block 'safety': feature 'drugs_per_1000' of configs/block/safety.yaml is not produced" in msg


def test_unknown_block_is_refused(tmp_path):
    msg = refused(variant(tmp_path, "police", lambda d: d["blocks"].update(weather=d["blocks"]["safety"])))
    assert "block 'weather': no usable block schema configs/block/weather.yaml" in msg


def test_unknown_op_is_refused(tmp_path):
    msg = refused(variant(tmp_path, "police",
                          lambda d: d["blocks"]["safety"]["drugs_per_1000"].update(op="sum_of_everything")))
    assert "block 'safety', feature 'drugs_per_1000': unknown op 'sum_of_everything'" in msg


def test_unknown_op_parameter_is_refused(tmp_path):
    msg = refused(variant(tmp_path, "police",
                          lambda d: d["blocks"]["safety"]["drugs_per_1000"].update(per_10000=True)))
    assert "feature 'drugs_per_1000': op 'count' has no parameter(s) per_10000" in msg


def test_where_value_outside_the_categories_is_refused(tmp_path):
    msg = refused(variant(tmp_path, "police",
                          lambda d: d["blocks"]["safety"]["drugs_per_1000"].update(where={"incidentsoort": "drug"})))
    assert "feature 'drugs_per_1000': where incidentsoort = 'drug' is not an allowed value" in msg


def test_column_of_the_wrong_type_for_its_role_is_refused(tmp_path):
    msg = refused(variant(tmp_path, "police",
                          lambda d: d["blocks"]["safety"]["drugs_per_1000"].update(time="prioriteit")))
    assert "column 'prioriteit' of table 'incidents' has type integer; as time it must be date or datetime" in msg


def test_unknown_column_is_refused(tmp_path):
    msg = refused(variant(tmp_path, "buurtteams",
                          lambda d: d["blocks"]["care"]["mean_contact_hours"].update(column="uren")))
    assert "feature 'mean_contact_hours': column 'uren' (value) is not a column of table 'casussen'" in msg


def test_unknown_top_level_key_is_refused(tmp_path):
    assert "unknown key(s) min_populaton" in refused(variant(tmp_path, "police", lambda d: d.update(min_populaton=5)))


def test_privacy_unit_must_be_area_period_with_a_positive_k(tmp_path):
    msg = refused(variant(tmp_path, "police", lambda d: d["privacy_unit"].update(row="person")))
    assert "privacy_unit.row must be 'area-period'" in msg
    msg = refused(variant(tmp_path, "police", lambda d: d["privacy_unit"].update(max_rows_per_person=0)))
    assert "privacy_unit.max_rows_per_person must be a positive integer" in msg


def test_missing_privacy_unit_is_refused(tmp_path):
    assert "privacy_unit must be a mapping" in refused(variant(tmp_path, "police", lambda d: d.pop("privacy_unit")))


def test_min_population_defaults_to_100(tmp_path):
    assert load_contract(variant(tmp_path, "police", lambda d: d.pop("min_population"))).min_population == 100


def test_contract_files_are_found_from_another_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert load_contract("police").name == "police"
