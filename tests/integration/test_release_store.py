"""Issue 26 item 9: the release store merges new cells and keeps old ones; a cell already released is re-used,
never re-drawn, whatever the window or the bounds did in between; new cells are charged as one full release."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clients.contracts import build_features, load_contract
from clients.release import DpRelease
from dp_accounting import get_accountant

DELTA = 1e-5
W1 = ["periods.start=2019-01", "periods.end=2019-04"]
W2 = ["periods.start=2019-03", "periods.end=2019-06"]


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    from devtools.synthetic.generator import generate

    out = tmp_path_factory.mktemp("store")
    generate(out=out, cities=["heerlen"], seed=5, records=20_000, months=6)
    return out


def release(node, partner: str, overrides: list[str], run_id: str, keep: bool = True):
    dp = DpRelease(node, 3.0, DELTA, run_id, keep=keep)
    built = build_features(load_contract(partner, overrides), node, release=dp)
    dp.commit()   # as after the guard charged it
    return dp, built


def store(node, table: str) -> pd.DataFrame:
    (data,) = (node / "state" / "releases" / table).glob("*.parquet")
    return pd.read_parquet(data).sort_values(["area_code", "period"]).reset_index(drop=True)


@pytest.mark.parametrize("partner,table", [("police", "incidents"), ("buurtteams", "casussen")])
def test_moving_the_window_and_back_redraws_nothing(root, tmp_path, partner, table):
    import shutil

    node = tmp_path / partner
    shutil.copytree(root / partner, node)
    first, b1 = release(node, partner, W1, "r1")
    kept = store(node, table)
    moved, b2 = release(node, partner, W2, "r2")
    merged = store(node, table)
    # The store keeps the first window's cells as drawn and adds the new months: six months, none re-drawn.
    assert sorted(set(kept["period"])) == ["2019-01", "2019-02", "2019-03", "2019-04"]
    assert sorted(set(merged["period"])) == [f"2019-0{m}" for m in range(1, 7)]
    pd.testing.assert_frame_equal(merged.merge(kept[["area_code", "period"]])[kept.columns], kept)
    back, b3 = release(node, partner, W1, "r3")
    assert [c.table for c in first.charges] == [table]
    # The moved window draws only its two new months, charged as one full release of the table.
    (increment,) = moved.charges
    assert increment.sensitivity == first.charges[0].sensitivity and moved.report[table]["new_cells"] > 0
    assert moved.report[table]["reused_cells"] == moved.report[table]["new_cells"]   # 2 of 4 months kept
    # Back to the first window: every cell is in the store, nothing is drawn or charged, the values are the same.
    assert back.charges == [] and back.reused == [table] and back.report[table]["new_cells"] == 0
    key = b1.aggregates[table].series[0].key
    assert np.array_equal(b1.aggregates[table].values[key], b3.aggregates[table].values[key])
    charged = first.charges + moved.charges + back.charges
    assert get_accountant("prv").epsilon(charged, DELTA) == pytest.approx(
        get_accountant("prv").epsilon(first.charges * 2, DELTA))
    # Control: without the store (keep=False, as before the merge) the way back re-draws and charges again.
    again, b4 = release(node, partner, W1, "r4", keep=False)
    assert len(again.charges) == 1 and not np.array_equal(b1.aggregates[table].values[key],
                                                          b4.aggregates[table].values[key])


def test_changing_a_bound_and_back_redraws_nothing(root, tmp_path):
    import shutil

    node = tmp_path / "police"
    shutil.copytree(root / "police", node)
    first, b1 = release(node, "police", W1, "r1")
    changed, _ = release(node, "police", [*W1, "tables.incidents.privacy.max_per_cell=2"], "r2")
    back, b3 = release(node, "police", W1, "r3")
    assert len(first.charges) == 1 and len(changed.charges) == 1    # another bound is another release
    assert changed.charges[0].sensitivity == pytest.approx(2 * first.charges[0].sensitivity)
    assert back.charges == [] and back.reused == ["incidents"]
    key = b1.aggregates["incidents"].series[0].key
    assert np.array_equal(b1.aggregates["incidents"].values[key], b3.aggregates["incidents"].values[key])


def test_a_store_of_the_earlier_layout_is_still_read(root, tmp_path):
    """A node that kept its release as state/releases/<table>.parquet before the merge store re-uses it."""
    import json
    import shutil

    node = tmp_path / "police"
    shutil.copytree(root / "police", node)
    first, b1 = release(node, "police", W1, "r1")
    (meta_path,) = (node / "state" / "releases" / "incidents").glob("*.json")
    meta = json.loads(meta_path.read_text())
    frame = pd.read_parquet(meta_path.with_suffix(".parquet")).drop(columns=["_noise_multiplier"])
    shutil.rmtree(meta_path.parent)
    frame.to_parquet(node / "state" / "releases" / "incidents.parquet", index=False)
    (node / "state" / "releases" / "incidents.json").write_text(json.dumps(meta))
    back, b2 = release(node, "police", W1, "r2")
    assert back.charges == [] and back.charged_runs("incidents") == ["r1"]
    key = b1.aggregates["incidents"].series[0].key
    assert np.array_equal(b1.aggregates["incidents"].values[key], b2.aggregates["incidents"].values[key])
