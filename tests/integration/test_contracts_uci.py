"""The UCI contract reads the REAL Communities and Crime file (the repository's sibling ../shared/data),
keeps every protected column out of the features, and refuses a contract that tries to use one."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from federation.config import APP_ROOT, configs_dir
from clients.contracts import NodeFeatures, build_features, load_contract
from clients.contracts.protected import load_rules
from clients.contracts.reading import attribute_names
from federation.errors import ContractError

UCI_DIR = APP_ROOT.parent / "shared" / "data" / "uci_communities_crime"
# Named as protected by the brief: race shares, per-capita income by race, foreign birth, immigration,
# language; and the racial make-up of the police force.
PROTECTED = {
    "racepctblack", "racePctWhite", "racePctAsian", "racePctHisp", "whitePerCap", "blackPerCap", "indianPerCap",
    "AsianPerCap", "OtherPerCap", "HispPerCap", "PctForeignBorn", "NumImmig", "PctImmigRecent", "PctImmigRec5",
    "PctImmigRec8", "PctImmigRec10", "PctRecentImmig", "PctRecImmig5", "PctRecImmig8", "PctRecImmig10",
    "PctNotSpeakEnglWell", "PctSpeakEnglOnly", "RacialMatchCommPol", "PctPolicWhite", "PctPolicBlack",
    "PctPolicHisp", "PctPolicAsian", "PctPolicMinor",
}


@pytest.fixture(scope="module")
def uci() -> NodeFeatures:
    assert (UCI_DIR / "communities.data").is_file(), f"the real UCI data is expected in {UCI_DIR}"
    return build_features(load_contract("uci_communities"), UCI_DIR)


def test_all_1994_communities_with_one_period(uci):
    socio = uci.blocks["uci_socio_economic"]
    assert len(socio) == 1994 and socio["area_code"].is_unique
    assert set(socio["period"]) == {"1990"}
    assert len(uci.label) == 1994 and uci.label["label"].between(0, 1).all()
    assert len(uci.blocks["uci_social_assistance"]) == 1994
    assert uci.stats["rows_read"] == {"communities": 1994}


def test_police_block_only_where_lemas_answered(uci):
    police = uci.blocks["uci_police"]
    data = (UCI_DIR / "communities.data").read_text().splitlines()
    names = attribute_names(UCI_DIR / "communities.names")
    col = names.index("LemasSwornFT")
    answered = sum(1 for line in data if line.split(",")[col] != "?")
    assert len(police) == answered and 0 < answered < 0.2 * len(data)
    assert not police.drop(columns=["area_code", "period"]).isna().any().any()


def test_area_codes_carry_the_state_and_the_line(uci):
    first = (UCI_DIR / "communities.data").read_text().splitlines()[0].split(",")
    code = f"US-{int(first[0]):02d}-0001"
    row = uci.label[uci.label.area_code == code]
    names = attribute_names(UCI_DIR / "communities.names")
    assert float(row["label"].iloc[0]) == pytest.approx(float(first[names.index("ViolentCrimesPerPop")]))


def test_no_protected_column_is_a_feature():
    contract = load_contract("uci_communities")
    rules = load_rules()
    used = {str(f.params["column"]) for f in contract.features()}
    assert not used & PROTECTED
    assert not [c for c in used if rules.match_name(c)]
    assert PROTECTED <= set(contract.tables["communities"].audit_columns)


def test_partition_by_state_and_census_region(uci):
    part = uci.partition
    assert len(part) == 1994 and part["area_code"].is_unique
    assert set(part["region"]) == {"Northeast", "Midwest", "South", "West"}
    assert part["partition"].nunique() == 46
    # California (FIPS 6) is West, New Jersey (34) Northeast, Texas (48) South, Ohio (39) Midwest
    region = part.drop_duplicates("partition").set_index("partition")["region"]
    assert (region["6"], region["34"], region["48"], region["39"]) == ("West", "Northeast", "South", "Midwest")


def test_values_are_the_normalised_ones(uci):
    values = uci.blocks["uci_socio_economic"].drop(columns=["area_code", "period"]).to_numpy()
    assert values.min() >= 0 and values.max() <= 1 and np.isfinite(values).all()


def contract_variant(tmp_path: Path, edit) -> Path:
    data = yaml.safe_load((configs_dir() / "contract" / "uci_communities.yaml").read_text())
    edit(data)
    path = tmp_path / "uci_variant.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_adding_a_protected_column_as_feature_is_refused(tmp_path):
    def edit(d):
        d["blocks"]["uci_socio_economic"]["population"]["column"] = "racepctblack"
    with pytest.raises(ContractError) as err:
        load_contract(contract_variant(tmp_path, edit))
    assert "feature 'population': column 'racepctblack'" in str(err.value) and "audit column" in str(err.value)

    def edit_hidden(d):
        edit(d)
        d["tables"]["communities"]["audit_columns"].remove("racepctblack")
    with pytest.raises(ContractError) as err:
        load_contract(contract_variant(tmp_path, edit_hidden))
    assert "column 'racepctblack'" in str(err.value) and "rule 'protected_attributes.race'" in str(err.value)


def test_protected_column_of_the_file_must_be_an_audit_column(tmp_path):
    path = contract_variant(tmp_path, lambda d: d["tables"]["communities"]["audit_columns"].remove("PctForeignBorn"))
    with pytest.raises(ContractError) as err:
        build_features(load_contract(path), UCI_DIR)
    msg = str(err.value)
    assert "column 'PctForeignBorn'" in msg and "protected_attributes.foreign_born" in msg and "audit_columns" in msg
