"""Issue 26 item 11: a record without its pseudonym is refused (in no series), never merged with the others into
one unit; refusing it gives exactly the build without it."""
from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from clients.contracts import build_features, load_contract
from clients.contracts.series import unit_ids
from clients.contracts.spec import TablePrivacy

NULLABLE = ["+tables.casussen.columns.huishouden_pseudoniem.nullable=true", "periods.end=2019-06"]


def test_unit_ids_give_no_unit_to_a_missing_or_blank_pseudonym():
    data = pd.DataFrame({"p": ["a", None, "b", "  ", "a", None]})
    ids = unit_ids(data, TablePrivacy(unit="p", max_cells=2))
    assert ids[0] == ids[4] >= 0 and ids[2] >= 0 and ids[0] != ids[2]
    assert (ids[[1, 3, 5]] == -1).all()   # control: before, the three shared one id, as one unit


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    from devtools.synthetic.generator import generate

    out = tmp_path_factory.mktemp("pseudonym")
    generate(out=out, cities=["heerlen"], seed=5, records=20_000, months=6)
    return out / "buurtteams"


def test_a_record_without_a_pseudonym_is_refused_not_merged(node, tmp_path):
    raw = pd.read_csv(node / "raw" / "casussen.csv", dtype=str, keep_default_na=False)
    # three open cases of different households in the window, their pseudonym blanked
    picked = raw.index[raw["datum_aanmelding"] >= "2019-01-01"][:3]
    blank, absent = tmp_path / "blank", tmp_path / "absent"
    for target in (blank, absent):
        shutil.copytree(node, target)
    raw.assign(huishouden_pseudoniem=raw["huishouden_pseudoniem"].where(~raw.index.isin(picked), "")).to_csv(
        blank / "raw" / "casussen.csv", index=False)
    raw.drop(index=picked).to_csv(absent / "raw" / "casussen.csv", index=False)
    contract = load_contract("buurtteams", NULLABLE)
    with_blanks, without = build_features(contract, blank), build_features(contract, absent)
    agg, ref = with_blanks.aggregates["casussen"], without.aggregates["casussen"]
    assert agg.stats["records_without_unit"] == 3 and ref.stats["records_without_unit"] == 0
    for s in agg.series:
        assert np.array_equal(agg.values[s.key], ref.values[s.key]), s.key
    # Control: the records were counted before they lost their pseudonym (the comparison can fail).
    full = build_features(contract, node).aggregates["casussen"]
    assert any(not np.array_equal(full.values[s.key], ref.values[s.key]) for s in agg.series)
