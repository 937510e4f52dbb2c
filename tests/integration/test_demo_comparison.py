"""The demo's table: federated DP and the pooled yardstick scored on the same folds of areas, or refused."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from devtools.demo import comparison_table, fold_ratios
from federation.dataset import area_folds
from federation.errors import PulseTwinError
from server.report.yardstick_result import YardstickResult

AREAS = [f"BU0917{i:04d}" for i in range(20)]
PERIODS = ["2021-01", "2021-02", "2021-03"]


def write_inputs(tmp_path: Path, run_folds: dict[str, int], pooled_folds: dict[str, int]) -> tuple[Path, Path, Path]:
    rng = np.random.default_rng(0)
    keys = pd.MultiIndex.from_product([AREAS, PERIODS], names=["area_code", "period"]).to_frame(index=False)
    truth = rng.normal(4.0, 0.3, len(keys))
    label = keys.assign(period=(pd.PeriodIndex(keys["period"], freq="M") + 1).astype(str), label=truth)
    label.to_parquet(tmp_path / "label.parquet")
    run = tmp_path / "run"
    (run / "privacy").mkdir(parents=True)
    keys.assign(y_dp=truth + rng.normal(0, 0.1, len(keys)), pred=truth + rng.normal(0, 0.15, len(keys)),
                fold=keys["area_code"].map(run_folds), pred_alone_police=truth + rng.normal(0, 0.3, len(keys))
                ).to_csv(run / "holdout_predictions.csv", index=False)
    result = YardstickResult("heerlen", models={"pooled": {"r2": 0.0, "mae": 0.0, "n": 0}})
    result.predictions = {
        "pooled (all blocks, non-private)": keys.assign(y=truth, pred=truth + rng.normal(0, 0.1, len(keys)),
                                                        fold=keys["area_code"].map(pooled_folds)),
        "police alone (safety)": keys.assign(y=truth, pred=truth + rng.normal(0, 0.25, len(keys)),
                                             fold=keys["area_code"].map(pooled_folds)),
    }
    result.to_json(tmp_path / "baseline.json")
    return run, tmp_path / "baseline.json", tmp_path / "label.parquet"


def test_federated_and_pooled_are_scored_on_the_same_rows_and_folds(tmp_path):
    folds = area_folds(AREAS, 5, 0)
    run, baseline, label = write_inputs(tmp_path, folds, folds)
    table = comparison_table(run, baseline, label)
    n = len(AREAS) * len(PERIODS)
    assert "pooled (all blocks, non-private) (exact)" in table and "police alone (its own DP release)" in table
    assert all(line.split()[-1] == str(n) for line in table.splitlines()[1:5]), table
    assert "over 20 areas, 5 folds" in table
    scored = pd.read_csv(run / "holdout_predictions.csv")
    scored["label"] = pd.read_parquet(label)["label"].to_numpy()
    scored["exact_0"] = YardstickResult.from_json(baseline).predictions["pooled (all blocks, non-private)"]["pred"]
    ratio = fold_ratios(scored)
    assert len(ratio["folds"]) == 5 and f"federated / pooled: {ratio['all']:.2f}" in table


def test_different_folds_are_refused(tmp_path):
    run, baseline, label = write_inputs(tmp_path, area_folds(AREAS, 5, 0), area_folds(AREAS, 5, 1))
    with pytest.raises(PulseTwinError, match="same folds"):
        comparison_table(run, baseline, label)
