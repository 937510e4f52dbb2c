"""server/forecast: naive forecasts with known answers, skill and its interval, rolling-origin splits that
never leak the future, features that read released values only, changes inside their noise, the gate."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from server.forecast.artefacts import PREDICTION_COLUMNS, write_all
from server.forecast.evaluate import EvalConfig, Learned, scored_origins, split_forecasts, training_origins
from server.forecast.features import design, label_history, slope
from server.forecast.gate import gate, releasable
from server.forecast.models import Ridge
from server.forecast.naive import choose_window, persistence, seasonal_naive, trailing_mean
from server.forecast.panel import ExactDataError, Panel
from server.forecast.skill import best_naive, skill_interval
from server.forecast.warning import WARNING_COLUMNS, beyond_noise, shown_change, warning_list

MONTHS = tuple(str(p) for p in pd.period_range("2020-01", periods=30, freq="M"))


def panel(values, released=True, name="label") -> Panel:
    values = np.asarray(values, float)
    return Panel(tuple(f"A{i}" for i in range(values.shape[0])), MONTHS[:values.shape[1]], values, released,
                 name=name)


# --- naive forecasts on hand-made series -------------------------------------------------------------

def test_persistence_is_the_last_released_value_across_gaps():
    p = panel([[1, 2, np.nan, np.nan], [5, np.nan, 7, 8]])
    assert persistence(p, 3).tolist() == [2, 8]
    assert persistence(p, 1).tolist() == [2, 5]


def test_trailing_mean_skips_gaps_and_falls_back_to_the_last_value():
    p = panel([[1, 2, 3, 4, 5, 6], [np.nan, 10, np.nan, np.nan, np.nan, np.nan]])
    assert trailing_mean(p, 5, 1, 3).tolist() == [5.0, 10.0]      # (4+5+6)/3; no value in window -> last
    assert trailing_mean(p, 2, 1, 6).tolist() == [2.0, 10.0]      # window clipped at the first period


def test_seasonal_naive_takes_the_same_month_a_year_before_the_target():
    series = np.arange(30, dtype=float)[None, :]                  # value = period index
    p = panel(series)
    assert seasonal_naive(p, 20, 1).tolist() == [9.0]             # target 21 -> 21 - 12
    assert seasonal_naive(p, 20, 3).tolist() == [11.0]
    assert seasonal_naive(p, 5, 1).tolist() == [5.0]              # too short a history: persistence
    assert seasonal_naive(p, 20, 13).tolist() == [9.0]            # 33 - 12 = 21 is after t: a year further back


def test_choose_window_finds_the_window_that_fits_the_training_origins():
    rng = np.random.default_rng(0)
    flat = 3.0 + rng.normal(0, 1.0, (50, 30))                     # pure noise around a level: longest wins
    assert choose_window(panel(flat), range(12, 25), 1, (1, 3, 12)) == 12
    walk = np.cumsum(rng.normal(0, 1.0, (50, 30)), axis=1)        # a random walk: the last value wins
    assert choose_window(panel(walk), range(12, 25), 1, (1, 3, 12)) == 1


def test_label_history_features_have_known_values():
    p = panel([np.arange(30, dtype=float) * 2])
    names, x = label_history(p, 20, 1)
    row = dict(zip(names, x[0]))
    assert row["last"] == 40 and row["lag1"] == 38 and row["lag12"] == 16
    assert row["mean3"] == 38 and row["trend6"] == pytest.approx(2.0)
    assert slope(panel([[1.0, np.nan, 5.0]]), 2, 3)[0] == pytest.approx(2.0)


# --- released values only -------------------------------------------------------------------------

def test_features_and_naive_forecasts_refuse_an_exact_table():
    exact = panel(np.ones((3, 20)), released=False)
    for call in (lambda: persistence(exact, 10), lambda: label_history(exact, 10, 1),
                 lambda: design(exact, {}, [10], 1),
                 lambda: design(panel(np.ones((3, 20))), {"police": {"x": exact}}, [10], 1)):
        with pytest.raises(ExactDataError):
            call()
    assert design(exact, {}, [10], 1, reference=True).groups["history"].shape[0] == 3


def test_features_at_an_origin_read_nothing_after_it():
    rng = np.random.default_rng(1)
    values = rng.normal(size=(4, 30))
    poisoned = values.copy()
    poisoned[:, 16:] = 1e9
    a = design(panel(values), {"p": {"x": panel(values, name="x")}}, [15], 3)
    b = design(panel(poisoned), {"p": {"x": panel(poisoned, name="x")}}, [15], 3)
    for g in a.groups:
        assert np.array_equal(a.groups[g], b.groups[g], equal_nan=True)


# --- rolling origin ----------------------------------------------------------------------------------

def test_rolling_splits_never_train_on_a_target_after_the_origin():
    for h in (1, 3, 12):
        for t in scored_origins(30, h, 5, 6):
            assert t + h <= 29
            assert training_origins(t, h, 6) and all(s + h <= t for s in training_origins(t, h, 6))


def test_a_forecast_from_origin_t_is_unchanged_by_any_later_period():
    rng = np.random.default_rng(2)
    values = 4 + np.cumsum(rng.normal(0, 0.1, (40, 30)), axis=1)
    later = values.copy()
    later[:, 21:] += rng.normal(0, 5, (40, 9))                     # rewrite everything after t = 20
    learned = {"ridge": Learned(("history",), lambda w, s: Ridge(seed=s))}
    test = np.zeros(40, bool)
    test[:8] = True
    out = []
    for v in (values, later):
        p = panel(v)
        d = design(p, {}, list(range(6, 30 - 3)), 3)
        out.append(split_forecasts(p, d, 20, test, learned, EvalConfig(), None).sort_values(["model", "area_code"]))
    assert np.allclose(out[0]["prediction"], out[1]["prediction"])
    assert np.allclose(out[0]["lo"].fillna(0), out[1]["lo"].fillna(0))


# --- skill -------------------------------------------------------------------------------------------

def test_skill_and_its_interval_on_a_constructed_case():
    areas = np.repeat([f"A{i}" for i in range(40)], 3)
    rng = np.random.default_rng(3)
    naive = rng.normal(0, 1, len(areas))
    half = skill_interval(areas, naive / 2, naive)                # model error half the naive one everywhere
    assert half["skill"] == pytest.approx(0.75)
    assert half["skill_lo"] == pytest.approx(0.75) and half["skill_hi"] == pytest.approx(0.75)
    noisy = skill_interval(areas, rng.normal(0, 1, len(areas)), naive)
    assert noisy["skill_lo"] < noisy["skill"] < noisy["skill_hi"]
    assert noisy["skill_lo"] <= 0                                 # same error size: no skill shown


def test_best_naive_is_the_one_with_least_squared_error():
    held = pd.DataFrame({"model": ["persistence", "trailing_mean", "seasonal_naive"] * 2,
                         "truth": [1.0] * 6, "prediction": [1.5, 1.1, 0.0, 1.5, 0.9, 2.0]})
    assert best_naive(held) == "trailing_mean"


# --- changes inside their noise, the warning list ------------------------------------------------

def test_a_change_inside_its_interval_is_never_shown_as_a_change():
    level = np.array([4.0, 4.0, 4.0, 4.0])
    predicted = np.array([3.9, 3.5, 4.05, 4.6])                   # changes -0.1, -0.5, +0.05, +0.6
    half = np.array([0.2, 0.2, 0.2, 0.2])
    frame = warning_list(3, ["A", "B", "C", "D"], level, predicted, predicted - half, predicted + half,
                         np.array([0.1, -0.2, 0.0, 0.3]), "lower").set_index("area_code")
    assert frame.loc["A", "beyond_noise"] == False and pd.isna(frame.loc["A", "model_rank"])  # noqa: E712
    assert frame.loc["C", "beyond_noise"] == False and pd.isna(frame.loc["C", "model_rank"])  # noqa: E712
    assert frame.loc["B", "model_rank"] == 1                      # the only one worsening beyond the noise
    assert pd.isna(frame.loc["D", "model_rank"])                  # beyond the noise but improving
    assert frame.loc["B", "naive_rank"] == 1 and frame.loc["D", "naive_rank"] == 4
    for area, row in frame.iterrows():
        text = shown_change(row["change"], bool(row["beyond_noise"]), "geen verandering buiten de ruis")
        assert (text == "geen verandering buiten de ruis") == (not row["beyond_noise"])
    assert not beyond_noise(np.array([np.nan]), np.array([1.0]))[0]


def test_the_level_noise_widens_the_change_interval():
    args = (3, ["A"], np.array([4.0]), np.array([3.7]), np.array([3.6]), np.array([3.8]), np.array([0.0]), "lower")
    assert bool(warning_list(*args).loc[0, "beyond_noise"])
    assert not bool(warning_list(*args, level_noise_sd=np.array([0.5])).loc[0, "beyond_noise"])


def test_a_withheld_model_lists_only_the_naive_ranking():
    frame = warning_list(3, ["A", "B"], np.array([4.0, 4.0]), np.array([3.0, 5.0]), np.array([2.9, 4.9]),
                         np.array([3.1, 5.1]), np.array([-0.3, 0.2]), "lower", withheld=True)
    assert frame["predicted"].isna().all() and frame["model_rank"].isna().all()
    assert not frame["beyond_noise"].any() and frame["naive_rank"].notna().all()


# --- the gate -------------------------------------------------------------------------------------

@pytest.mark.parametrize("lo, expected", [(-0.1, False), (0.0, False), (float("nan"), False), (None, False),
                                          (0.01, True)])
def test_the_gate_refuses_unless_the_lower_end_is_above_zero(lo, expected):
    assert releasable(lo) is expected
    verdict = gate(3, 0.05, lo, 0.1, "trailing_mean")
    assert verdict["releasable"] is expected
    assert ("NIET VRIJGEGEVEN" in verdict["verdict_nl"]) is (not expected)
    assert ("NOT RELEASABLE" in verdict["verdict_en"]) is (not expected)
    assert list(verdict).index("verdict_nl") < list(verdict).index("verdict_en")


def test_writers_write_the_three_artefacts(tmp_path):
    predictions = pd.DataFrame([{"area_code": "A", "origin": "2020-01", "target": "2020-04", "horizon": 3,
                                 "model": "persistence", "prediction": 4.0, "lo": np.nan, "hi": np.nan,
                                 "truth": np.nan, "held_out": False}])
    warnings = warning_list(3, ["A"], np.array([4.0]), None, None, None, np.array([0.1]), "lower", withheld=True)
    doc = {"horizons": [3], "configured_horizon": 3, "label_units": "points", "evaluation": {}, "rows": [],
           "best_naive": {"3": "persistence"}, "gate": gate(3, float("nan"), None, None, "persistence"),
           "warning": {"horizon": 3}}
    paths = write_all(tmp_path, doc, predictions, warnings)
    assert [p.name for p in paths] == ["skill.json", "predictions.csv", "warnings.csv"]
    assert json.loads(paths[0].read_text())["gate"]["skill"] is None
    assert paths[1].read_text().splitlines()[0] == ",".join(PREDICTION_COLUMNS)
    assert paths[1].read_text().splitlines()[1].endswith(",false")
    assert paths[2].read_text().splitlines()[0] == ",".join(WARNING_COLUMNS)
    with pytest.raises(ValueError, match="predictions.csv: missing column"):
        write_all(tmp_path, doc, predictions.drop(columns=["truth"]), warnings)


def test_a_world_without_any_lead_is_refused_by_the_gate():
    """The label is a level plus noise and the partner's series is unrelated noise: nothing beats the
    trailing mean, so the model is not releasable and its warning list is withheld."""
    from server.forecast.run import ForecastConfig, default_learned, forecast

    rng = np.random.default_rng(4)
    label = panel(4 + rng.normal(0, 0.3, (60, 1)) + rng.normal(0, 0.1, (60, 30)))
    other = panel(rng.normal(0, 1, (60, 30)), name="x")
    learned = {k: v for k, v in default_learned(["police"], network=False).items()}
    result = forecast(label, {"police": {"x": other}}, ForecastConfig(horizons=(1, 3), configured_horizon=3),
                      learned, model="linear_reference")
    assert result.skill["gate"]["releasable"] is False
    assert result.skill["gate"]["skill_lo"] <= 0
    assert result.warnings["model_rank"].isna().all() and result.warnings["naive_rank"].notna().all()
    assert result.skill["warning"]["model_list_withheld"] is True


def test_naive_change_is_the_last_released_move():
    from server.forecast.warning import naive_change

    monthly = panel([[1.0, 2.0, 4.0, 7.0]])
    assert naive_change(monthly, 3, 1).tolist() == [3.0] and naive_change(monthly, 3, 2).tolist() == [5.0]
    waves = panel([[1.0, np.nan, np.nan, 2.0, np.nan, np.nan, 5.0, np.nan]])   # a wave every third month
    assert naive_change(waves, 7, 1).tolist() == [3.0]                         # the last two waves
    assert np.isnan(naive_change(waves, 2, 1)[0])                              # one wave only: no move


def test_forward_ridge_adds_only_the_partner_columns_that_help_on_held_out_areas():
    """Two partners of two features each (columns last, mean3, mean12, trend6, rise): the target moves with
    one feature's rise; the other rises and every level column are noise. Only that rise is chosen. With
    many rows and the change in every partner's levels, every partner column is."""
    from server.forecast.features import BLOCK_COLUMNS
    from server.forecast.models import ForwardRidge

    rng = np.random.default_rng(5)
    n, per = 600, len(BLOCK_COLUMNS)
    areas = np.repeat(np.arange(60), 10)
    history = rng.normal(size=(n, 3))
    police, care = rng.normal(size=(n, 2 * per)), rng.normal(size=(n, 2 * per))
    lead = 2 * per - 1                                # care's second feature: its rise
    y = history[:, 0] + 0.8 * care[:, lead] + rng.normal(0, 0.3, n)
    x = np.hstack([history, police, care])
    model = ForwardRidge({"history": 3, "police": 2 * per, "care": 2 * per}).fit(x, y, areas)
    assert model.chosen == (3 + 2 * per + lead,)
    assert np.corrcoef(model.predict(x), y)[0, 1] > 0.9
    # nothing beyond the history: no column is added
    widths = {"history": 3, "police": 2 * per, "care": 2 * per}
    quiet = ForwardRidge(widths).fit(x, history[:, 0] + rng.normal(0, 0.3, n), areas)
    assert quiet.chosen == ()
    # many rows and the change spread over the partners' levels, not their rises: every column is taken
    n = 6000
    areas = np.repeat(np.arange(600), 10)
    history, police, care = rng.normal(size=(n, 3)), rng.normal(size=(n, 2 * per)), rng.normal(size=(n, 2 * per))
    levels = [i for i in range(2 * per) if i % per != per - 1]
    y = (history[:, 0] + 0.3 * police[:, levels].sum(axis=1) + 0.3 * care[:, levels].sum(axis=1)
         + rng.normal(0, 0.3, n))
    wide = ForwardRidge(widths).fit(np.hstack([history, police, care]), y, areas)
    assert wide.chosen == tuple(range(3, 3 + 4 * per))


def test_a_rise_is_the_relative_move_of_the_recent_mean_against_the_longer_one():
    from server.forecast.features import BLOCK_COLUMNS, block_history, rise, rise_columns

    flat = [3.0] * 12
    doubled = [1.0] * 9 + [7.0, 7.0, 7.0]             # 3-month mean 7, 12-month mean 2.5
    noisy = [-4.0] * 12                               # a release's noise below zero reads as zero
    p = panel([flat, doubled, noisy])
    assert rise(p, 11) == pytest.approx([0.0, np.log(8.0) - np.log(3.5), 0.0])
    names, cols = block_history({"x": p, "y": p}, 11)
    assert names[:len(BLOCK_COLUMNS)] == [f"x:{c}" for c in BLOCK_COLUMNS]
    assert rise_columns({"history": 4, "police": cols.shape[1]}) == [4 + len(BLOCK_COLUMNS) - 1,
                                                                     4 + 2 * len(BLOCK_COLUMNS) - 1]
    assert cols[:, len(BLOCK_COLUMNS) - 1] == pytest.approx(rise(p, 11))
    with pytest.raises(ExactDataError):
        rise(panel([flat], released=False), 11)


def test_forecast_config_takes_horizons_from_the_federation_label():
    from federation.errors import ConfigError
    from server.forecast.run import ForecastConfig

    cfg = ForecastConfig.from_cfg({"horizons": [1, 3, 6, 12], "configured_horizon": 3, "worse": "lower"}, 5, 0,
                                  label={"horizons": [1, 3], "horizon": 1, "worse": "higher"})
    assert cfg.horizons == (1, 3) and cfg.configured_horizon == 1 and cfg.worse == "higher"
    with pytest.raises(ConfigError, match="configured_horizon 6"):
        ForecastConfig.from_cfg({"horizons": [1, 3], "configured_horizon": 6})
    with pytest.raises(ConfigError, match="unknown key"):
        ForecastConfig.from_cfg({"horizon": 3})
    with pytest.raises(ConfigError, match="worse"):
        ForecastConfig.from_cfg({}, label={"worse": "up"})


def test_a_model_must_beat_the_label_history_model_too():
    from server.forecast.skill import best_baseline, score_models

    rows = []
    for i in range(30):
        truth = float(i % 7)
        for model, err in (("persistence", 1.0), ("trailing_mean", 0.8), ("seasonal_naive", 1.5),
                           ("label_history", 0.5), ("federated_dp", 0.5)):
            rows.append({"area_code": f"A{i}", "origin": "2020-01", "horizon": 1, "model": model, "truth": truth,
                         "prediction": truth + (err if i % 2 else -err), "lo": np.nan, "hi": np.nan,
                         "window": np.nan})
    held = pd.DataFrame(rows)
    assert best_baseline(held) == "label_history"
    scored = {r["model"]: r for r in score_models(held)}
    assert scored["federated_dp"]["skill"] == pytest.approx(0.0)          # no better than the label's history
    assert scored["label_history"]["skill"] == pytest.approx(1 - 0.25 / 0.64)   # over the trailing mean
    assert scored["trailing_mean"]["skill"] is None


def test_the_history_check_names_what_the_gates_horizon_needs():
    from server.forecast.run import ForecastConfig, check_history, feasible_horizons

    cfg = ForecastConfig(horizons=(1, 3, 6), configured_horizon=3, min_history=4)
    # horizon h needs min_history + 2h + 1 periods: 7, 11, 17
    assert feasible_horizons(11, cfg) == [1, 3] and feasible_horizons(10, cfg) == [1]
    assert check_history(11, cfg) == [6]
    assert check_history(17, cfg) == []
    with pytest.raises(ValueError, match=r"10 periods are too few to score horizon 3 .* at least 11 periods "
                                         r"\(horizon\(s\) 1 could be scored\)"):
        check_history(10, cfg)
    with pytest.raises(ValueError, match="no horizon could be scored"):
        check_history(6, cfg)
