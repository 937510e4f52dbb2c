"""The federation without one partner (`federation.without`, skill.json model `without:<partner>`): scored in
the same rolling evaluation as the federation with it and the partner alone (same areas, origins and folds),
from released panels only, and blind to the left-out partner's releases."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from federation.errors import ConfigError
from server.forecast.evaluate import Learned
from server.forecast.models import Ridge
from server.forecast.panel import ExactDataError, Panel
from server.forecast.run import ForecastConfig, forecast
from server.vertical_forecast import leave_out_models

MONTHS = tuple(str(p) for p in pd.period_range("2020-01", periods=24, freq="M"))
AREAS = tuple(f"A{i:02d}" for i in range(24))
CFG = ForecastConfig(horizons=(1,), configured_horizon=1, test_origins=2, min_history=6, folds=3, seed=1)


def panel(values: np.ndarray, name: str, released: bool = True) -> Panel:
    return Panel(AREAS, MONTHS, np.asarray(values, float), released, name=name)


def world(seed: int = 3, community_seed: int = 5) -> tuple[Panel, dict[str, dict[str, Panel]]]:
    rng = np.random.default_rng(seed)
    drift = rng.normal(0, 0.05, (len(AREAS), len(MONTHS))).cumsum(axis=1)
    label = panel(4 + drift + rng.normal(0, 0.05, drift.shape), "label")
    police = panel(np.roll(drift, -1, axis=1) + rng.normal(0, 0.05, drift.shape), "x")
    community = panel(np.random.default_rng(community_seed).normal(0, 1, drift.shape), "reports")
    return label, {"police": {"safety.x": police}, "community": {"community.reports": community}}


MODEL = "with"


def learned(partners):
    """The federation with every partner, the community block alone and without it: the groups the run
    scores, here with a ridge each (fast, deterministic; the run's network is the same Learned's `make`)."""
    def ridge(w, s):
        return Ridge(seed=s)

    models = {MODEL: ("history", *partners), "partner:community": ("history", "community"),
              **{k: m.groups for k, m in leave_out_models(partners, ["community"]).items()}}
    return {name: Learned(groups, ridge) for name, groups in models.items()}


def test_the_left_out_model_uses_every_group_but_the_partners():
    models = leave_out_models(["police", "municipality", "community"], ["community"])
    assert list(models) == ["without:community"]
    assert models["without:community"].groups == ("history", "police", "municipality")
    assert leave_out_models(["police"], None) == {}
    with pytest.raises(ConfigError, match="federation.without: 'bakery'"):
        leave_out_models(["police", "community"], ["bakery"])


def test_without_is_scored_on_the_same_folds_and_origins_and_ignores_the_partners_releases():
    label, partners = world()
    result = forecast(label, partners, CFG, learned(list(partners)))
    rows = {r["model"]: r for r in result.skill["rows"] if r["horizon"] == 1}
    assert {MODEL, "without:community", "partner:community"} <= set(rows)
    assert rows["without:community"]["n"] == rows[MODEL]["n"] == rows["partner:community"]["n"] > 0
    assert rows["without:community"]["skill"] is not None and rows["without:community"]["skill_lo"] is not None
    held = result.held_out
    keys = ["area_code", "origin", "target", "fold"]

    def cells(model):
        return held[held["model"] == model][keys].sort_values(keys).reset_index(drop=True)

    pd.testing.assert_frame_equal(cells("without:community"), cells(MODEL))
    pd.testing.assert_frame_equal(cells("partner:community"), cells(MODEL))

    # other community releases: the federation without them forecasts exactly as before, the one with them not
    _, other = world(community_seed=99)
    again = forecast(label, {**partners, "community": other["community"]}, CFG, learned(list(partners))).held_out

    def preds(frame, model):
        return frame[frame["model"] == model].sort_values(keys)["prediction"].to_numpy()

    np.testing.assert_allclose(preds(again, "without:community"), preds(held, "without:community"))
    assert not np.allclose(preds(again, MODEL), preds(held, MODEL))


def test_an_exact_partner_table_is_refused():
    label, partners = world()
    exact = {"community.reports": panel(partners["community"]["community.reports"].values, "reports", released=False)}
    with pytest.raises(ExactDataError):
        forecast(label, {**partners, "community": exact}, CFG, learned(list(partners)))
