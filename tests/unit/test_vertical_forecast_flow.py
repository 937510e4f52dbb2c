"""How the coordinator forms its forecast inputs from what it holds: the grid from the released label, the
label history in the survey's months only (marked released), the federation's horizons, and no exact panel
reaching the forecast's features."""
import numpy as np
import pandas as pd
import pytest

from federation.dataset import LabelSpec, forecast_horizons
from federation.errors import ConfigError
from server.forecast.features import label_history
from server.forecast.panel import ExactDataError
from server.vertical_forecast import forecast_config, grid_keys, label_grid, label_panel

AREAS = ["BU1", "BU2"]


def released_label() -> pd.DataFrame:
    """A DP label released every month (the run's grid), a survey wave only in January, April, July, October."""
    periods = [str(p) for p in pd.period_range("2021-01", "2021-12", freq="M")]
    rows = [(a, p, 4.0 + 0.01 * i + (0.0 if int(p[5:]) in (1, 4, 7, 10) else 9.0))
            for a in AREAS for i, p in enumerate(periods)]
    return pd.DataFrame(rows, columns=["area_code", "period", "label"])


def test_the_grid_is_every_month_of_the_release_and_the_label_only_its_survey_months():
    label = released_label()
    areas, periods = label_grid(label.sample(frac=1, random_state=0))
    assert areas == ("BU1", "BU2") and periods[0] == "2021-01" and periods[-1] == "2021-12" and len(periods) == 12
    assert len(grid_keys(areas, periods)) == 24
    panel = label_panel(label, areas, periods, [1, 4, 7, 10])
    assert panel.released
    surveyed = [i for i, p in enumerate(periods) if int(p[5:]) in (1, 4, 7, 10)]
    assert np.isfinite(panel.values[:, surveyed]).all()
    assert np.isnan(np.delete(panel.values, surveyed, axis=1)).all()      # noise around no respondent: a gap
    assert np.nanmax(panel.values) < 5                                    # never read
    with pytest.raises(ValueError, match="survey_months"):
        label_panel(label, areas, periods, [0, 13])


def test_an_exact_label_never_reaches_the_forecast_features_unless_asked_as_reference():
    label = released_label()
    areas, periods = label_grid(label)
    exact = label_panel(label, areas, periods, released=False)
    with pytest.raises(ExactDataError):
        label_history(exact, 6, 3)
    names, values = label_history(label_panel(label, areas, periods, [1, 4, 7, 10]), 6, 3)
    assert values.shape[0] == 2 and "last" in names


def test_the_federation_sets_its_horizons_and_the_gate_horizon():
    assert forecast_horizons({"horizons": [12, 1, 3, 6], "horizon": 3}) == ((1, 3, 6, 12), 3)
    assert forecast_horizons({"shift": 1}) == ((1,), 1)
    for bad in ({"horizons": [1, 3], "horizon": 6}, {"horizons": [0, 3], "horizon": 3}, {"horizons": "x"}, {}):
        with pytest.raises(ConfigError):
            forecast_horizons(bad)
    assert LabelSpec.from_config({"center": 4.1, "scale": 0.25, "horizons": [1, 3], "horizon": 3}).shift == 3
    cfg = {"federation": {"label": {"horizons": [1, 3], "horizon": 1, "worse": "higher"}},
           "forecast": {"test_origins": 4}, "folds": 3, "seed": 2}
    fc = forecast_config(cfg)
    assert (fc.horizons, fc.configured_horizon, fc.worse, fc.test_origins, fc.folds) == ((1, 3), 1, "higher", 4, 3)


def test_the_run_keeps_the_labels_released_history_in_its_survey_months_only(tmp_path):
    from server.kept_releases import keep_label

    label = released_label()
    areas, periods = label_grid(label)
    path = keep_label(tmp_path, label_panel(label, areas, periods, [1, 4, 7, 10]))
    kept = pd.read_csv(path, dtype={"period": str})
    assert list(kept.columns) == ["area_code", "period", "value"] and len(kept) == 2 * 4
    assert sorted(set(kept["period"])) == ["2021-01", "2021-04", "2021-07", "2021-10"]
    assert kept["value"].max() < 5                                        # no month without a wave
