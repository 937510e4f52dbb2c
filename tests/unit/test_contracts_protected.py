"""Protected attributes and person identifiers never become features: refused by column name (before any
data is read) and by content (BSNs, names, addresses); audit columns and pseudonyms keep their roles."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from federation.config import configs_dir
from clients.contracts import build_features, load_contract
from clients.contracts.protected import dutch_11_test, load_rules
from federation.errors import ContractError
from tests.support.contract_fixtures import HeerlenFixture, WINDOW


def variant(tmp_path: Path, name: str, edit) -> Path:
    data = yaml.safe_load((configs_dir() / "contract" / f"{name}.yaml").read_text())
    edit(data)
    path = tmp_path / f"{name}_variant.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def refused_at_load(path: Path) -> str:
    with pytest.raises(ContractError) as err:
        load_contract(path)
    return str(err.value)


# ---- by name -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("column, rule", [
    ("aandeel_migratieachtergrond", "protected_attributes.migration_background"),
    ("etniciteit", "protected_attributes.ethnicity"),
    ("racePctWhite", "protected_attributes.race"),
    ("nationaliteit", "protected_attributes.nationality"),
    ("pct_nacionalidad_extranjera", "protected_attributes.nationality"),
    ("religie", "protected_attributes.religion"),
    ("aandeel_buitenlandse_herkomst", "protected_attributes.origin"),
    ("geboorteland", "protected_attributes.country_of_birth"),
    ("PctForeignBorn", "protected_attributes.foreign_born"),
    ("PctImmigRecent", "protected_attributes.immigrant"),
    ("PctNotSpeakEnglWell", "protected_attributes.home_language"),
    ("thuistaal", "protected_attributes.home_language"),
    ("bsn", "person_identifiers.bsn"),
    ("burgerservicenummer", "person_identifiers.bsn"),
    ("achternaam", "person_identifiers.name"),
    ("naam", "person_identifiers.name"),
    ("woonadres", "person_identifiers.address"),
    ("straatnaam", "person_identifiers.address"),
    ("huisnummer", "person_identifiers.address"),
    ("postcode", "person_identifiers.address"),
    ("geboortedatum", "person_identifiers.birth_date"),
    ("e_mail", "person_identifiers.email"),
    ("telefoonnummer", "person_identifiers.phone"),
])
def test_name_rules_catch_protected_and_identifying_columns(column, rule):
    match = load_rules().match_name(column)
    assert match is not None and match.label == rule


@pytest.mark.parametrize("column", [
    "totaal_inwoners", "NumStreet", "PctHousNoPhone", "pctWSocSec", "PctBornSameState", "periodos",
    "gem_inkomen_per_inwoner", "leefgebieden", "huishouden_pseudoniem", "incidentsoort", "medIncome",
])
def test_name_rules_leave_ordinary_columns_alone(column):
    assert load_rules().match_name(column) is None


def test_protected_register_column_as_feature_is_refused_as_audit_column(tmp_path):
    path = variant(tmp_path, "municipality",
                   lambda d: d["blocks"]["context"]["share_low_income"].update(column="aandeel_migratieachtergrond"))
    msg = refused_at_load(path)
    assert str(path) in msg
    assert ("block 'context', feature 'share_low_income': column 'aandeel_migratieachtergrond' of table 'register' "
            "(value) is an audit column") in msg


def test_protected_column_not_declared_as_audit_is_refused(tmp_path):
    path = variant(tmp_path, "municipality", lambda d: d["tables"]["register"].update(audit_columns=[]))
    msg = refused_at_load(path)
    assert ("table 'register': column 'aandeel_migratieachtergrond' is a protected attribute by rule "
            "'protected_attributes.migration_background'") in msg


def test_protected_column_used_through_an_op_is_refused_naming_the_rule(tmp_path):
    def edit(d):
        d["tables"]["enquete"]["columns"]["score_herkomst"] = {"type": "float"}
        d["tables"]["enquete"]["audit_columns"] = ["score_herkomst"]
        d["label"]["dimensions"][4] = "score_herkomst"
    msg = refused_at_load(variant(tmp_path, "municipality", edit))
    assert "label: column 'score_herkomst' of table 'enquete' (dimension score) is an audit column" in msg

    def edit_undeclared(d):
        edit(d)
        d["tables"]["enquete"]["audit_columns"] = []
    msg = refused_at_load(variant(tmp_path, "municipality", edit_undeclared))
    assert "column 'score_herkomst' is a protected attribute by rule 'protected_attributes.origin'" in msg


def test_person_identifier_as_filter_is_refused_naming_feature_column_and_rule(tmp_path):
    def edit(d):
        d["tables"]["incidents"]["columns"]["bsn_melder"] = {"type": "string"}
        d["blocks"]["safety"]["drugs_per_1000"]["where"] = {"bsn_melder": "123456782"}
    msg = refused_at_load(variant(tmp_path, "police", edit))
    assert ("block 'safety', feature 'drugs_per_1000': column 'bsn_melder' of table 'incidents' (filter (where)) "
            "is refused by rule 'person_identifiers.bsn'") in msg


def test_pseudonym_as_feature_input_is_refused(tmp_path):
    path = variant(tmp_path, "buurtteams", lambda d: d["blocks"]["care"]["new_intakes_per_1000"].update(
        where={"huishouden_pseudoniem": "HH-X"}))
    msg = refused_at_load(path)
    assert ("feature 'new_intakes_per_1000': column 'huishouden_pseudoniem' of table 'casussen' (filter (where)) "
            "is a person pseudonym") in msg


# ---- by content ----------------------------------------------------------------------------------------

def bsns(n: int, seed: int = 0) -> list[str]:
    """Valid-looking BSNs: 8 random digits and the ninth chosen to pass the 11-test."""
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < n:
        d = list(rng.integers(0, 10, size=8))
        total = sum(w * x for w, x in zip(range(9, 1, -1), d))
        last = total % 11
        if last <= 9 and any(d):
            out.append("".join(map(str, d + [last])))
    return out


def test_dutch_11_test():
    assert dutch_11_test(pd.Series(["111222333", "123456782", "123456789", "12345678", "abc", "000000000"])).tolist() \
        == [True, True, False, False, False, False]
    assert dutch_11_test(pd.Series(bsns(50))).all()


def police_with_reference_column(tmp_path: Path, values: list[str]) -> tuple[Path, Path]:
    """The police node with an extra string column `kenmerk` that one feature filters on."""
    fx = HeerlenFixture()
    n = len(values)
    base = fx.incidents
    fx.incidents = pd.concat([base] * (n // len(base) + 1), ignore_index=True).iloc[:n].copy()
    fx.incidents["registratienummer"] = [f"PL-{i}" for i in range(n)]
    fx.incidents["kenmerk"] = values
    node = fx.write_police(tmp_path / "police")

    def edit(d):
        d["tables"]["incidents"]["columns"]["kenmerk"] = {"type": "string"}
        d["blocks"]["safety"]["theft_other_per_1000"]["where"] = {"kenmerk": values[0]}
    return node, variant(tmp_path, "police", edit)


def build_refused(node: Path, contract: Path) -> str:
    with pytest.raises(ContractError) as err:
        build_features(load_contract(contract, WINDOW), node)
    return str(err.value)


def test_column_holding_bsns_is_refused_by_content(tmp_path):
    node, contract = police_with_reference_column(tmp_path, bsns(30))
    msg = build_refused(node, contract)
    assert str(contract) in msg and "feature 'theft_other_per_1000': column 'kenmerk'" in msg
    assert "look like 9 digits passing the Dutch 11-test" in msg and "content rule 'bsn'" in msg
    assert bsns(30)[0] not in msg          # the message never repeats a BSN


def test_column_holding_personal_names_is_refused_by_content(tmp_path):
    first = ["Jan", "Maria", "Fatima", "Pieter", "Anna", "Mohamed", "Sanne", "Kees", "Eva", "Tom", "Lotte", "Bram"]
    last = ["de Vries", "Jansen", "van den Berg", "Bakker", "El Amrani", "Visser", "Smit", "de Jong"]
    names = [f"{f} {l}" for f in first for l in last][:40]
    node, contract = police_with_reference_column(tmp_path, names)
    msg = build_refused(node, contract)
    assert "column 'kenmerk'" in msg and "content rule 'personal_name'" in msg


def test_column_holding_addresses_is_refused_by_content(tmp_path):
    streets = ["Akerstraat", "Geleenstraat", "Pancratiusplein", "Willemstraat", "Schinkelstraat"]
    addresses = [f"{s} {n}" for s in streets for n in range(1, 9)]
    node, contract = police_with_reference_column(tmp_path, addresses)
    assert "content rule 'exact_address'" in build_refused(node, contract)
    postcodes = [f"64{i:02d} {a}B" for i in range(12) for a in "AC"]
    node, contract = police_with_reference_column(tmp_path / "pc", postcodes)
    assert "content rule 'exact_address'" in build_refused(node, contract)


def test_ordinary_codes_pass_the_content_rules(tmp_path):
    codes = [f"TEAM-{i:03d}" for i in range(40)]
    node, contract = police_with_reference_column(tmp_path, codes)
    assert len(build_features(load_contract(contract, WINDOW), node).blocks["safety"]) > 0


# ---- by meaning: stems and compounds in six languages ---------------------------------------------------

PLAIN_NAMES = ["aandeel_niet_westers", "aandeel_buitenlanders", "aandeel_vreemdelingen", "pct_statushouders",
               "aandeel_moslims", "share_foreigners", "Ausländeranteil", "part_étrangers", "pct_extranjeros",
               "ποσοστό_αλλοδαπών", "aandeelNietWesterseMigratie", "asielzoekers_per_1000", "pct_religious",
               # a group named by its country or people of origin, and a common misspelling
               "share_marokkaanse_inwoners", "share_turkse_inwoners", "aandeel_surinaamse_bewoners",
               "pct_inwoners_marokkaans", "pct_alochtonen", "aandeel_huidskleur_donker", "pct_lhbti"]


@pytest.mark.parametrize("column", PLAIN_NAMES)
def test_a_protected_attribute_under_a_plain_name_is_refused_naming_the_concept(tmp_path, column):
    """The register column carrying a protected share, fed into a feature: refused before any data is read."""
    def edit(d):
        d["tables"]["register"]["columns"][column] = {"type": "float", "min": 0}
        d["blocks"]["context"]["share_low_income"].update(column=column)
    msg = refused_at_load(variant(tmp_path, "municipality", edit))
    assert f"column '{column}' is a protected attribute by rule 'protected_" in msg


def test_protected_meaning_in_a_filter_value_a_feature_name_or_the_description_is_refused(tmp_path):
    def filter_value(d):
        d["tables"]["meldingen"]["columns"]["categorie"]["values"].append("overlast_asielzoekers")
        d["blocks"]["social"]["youth_nuisance_reports_per_1000"]["where"] = {"categorie": "overlast_asielzoekers"}
    msg = refused_at_load(variant(tmp_path, "municipality", filter_value))
    assert "where categorie = 'overlast_asielzoekers' names a protected attribute by its meaning: concept foreigners" in msg

    def description(d):
        d["description"] = "Register figures, incl. het aandeel niet-westerse inwoners"
    msg = refused_at_load(variant(tmp_path, "municipality", description))
    assert "the contract's description" in msg and "concept migration_background" in msg

    rules = load_rules()
    assert rules.concept_in("Flüchtlinge") is not None and rules.concept_in("μετανάστες") is not None


@pytest.mark.parametrize("text", ["totaal_inwoners", "open_debt_per_1000", "share_social_housing", "meldingen",
                                  "wmo_per_1000", "aandeel_corporatiewoningen", "burglary", "drugs", "foreclosure",
                                  "openbare_ruimte", "overlast_jeugd", "herinrichting",
                                  "separable", "aromatic", "carpool", "afrikaanderbuurt", "polishing_hours"])
def test_the_concept_lexicon_leaves_ordinary_words_alone(text):
    assert load_rules().concept_in(text) is None
