"""Rolling-origin evaluation in time combined with held-out areas, as a forecaster scores a model.

For every test origin T (the last period whose data is used) and every fold of areas: models are trained
on the other folds' areas at origins s with s + h <= T only (their target was released by T: no future
period ever reaches training), and forecast T + h for the held-out fold's areas. The naive forecasts are
computed alike (the trailing mean's window chosen on the same training origins and areas). Every area is
held out once per test origin. Scores are in the label's own units against `truth` (the released label in
a run; the exact label in a benchmark).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from federation.dataset import area_folds
from server.forecast.features import Design, design
from server.forecast.naive import DEFAULT_WINDOWS, choose_window, naive_forecast, trailing_mean
from server.forecast.panel import Panel
from server.forecast.warning import naive_change

Z90 = 1.6448536269514722
ANCHOR_WINDOWS: tuple[int, ...] = (1, 3, 6, 12)   # window 1: persistence


@dataclass(frozen=True)
class Learned:
    """A learned forecaster to score: its feature groups and a factory of fresh models
    (`make(widths, seed)` -> object with fit(x, y, areas) and predict(x))."""

    groups: tuple[str, ...]
    make: Callable[[dict[str, int], int], object]


@dataclass(frozen=True)
class EvalConfig:
    """`test_origins`: how many of the latest possible origins are test origins (1 period apart);
    `min_history`: the first origin any model trains on (periods of history before it)."""

    folds: int = 5
    test_origins: int = 3
    min_history: int = 6
    seed: int = 0
    windows: tuple[int, ...] = DEFAULT_WINDOWS
    anchor_windows: tuple[int, ...] = ANCHOR_WINDOWS


def scored_origins(n_periods: int, h: int, count: int, min_history: int,
                   released: np.ndarray | None = None) -> list[int]:
    """The latest `count` origins whose target t + h lies in the panel (and, given `released`, a mask of the
    periods with any released label, is a period with a release), oldest first; each leaves at least one
    training origin (min_history <= s <= t - h)."""
    ok = [t for t in range(min_history + h, n_periods - h)
          if released is None or bool(released[t + h])]
    return ok[-count:] if count > 0 else []


def training_origins(t: int, h: int, min_history: int) -> list[int]:
    """Origins a model forecasting from origin t may train on: their target s + h is released by t."""
    return list(range(min_history, t - h + 1))


def anchor(label: Panel, t: int, h: int, window: int, *, reference: bool = False) -> np.ndarray:
    """The area's recent level at origin t: the trailing mean of released values (window 1: persistence)."""
    return trailing_mean(label, t, h, window, reference=reference)


def anchor_rows(label: Panel, d: Design, window: int, reference: bool) -> np.ndarray:
    """Each design row's recent level (`anchor`) at its own origin."""
    out = np.empty(len(d))
    for t in np.unique(d.origin):
        rows = d.origin == t
        out[rows] = anchor(label, int(t), d.horizon, window, reference=reference)[d.area[rows]]
    return out


def _scale_rows(label: Panel, d: Design, level: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Each row's area scale of change: the root mean squared change (target - level) of that area's
    training rows `rows` (released values: it holds the release's noise), floored at a tenth of the
    overall one. Intervals are this scale times a factor calibrated on the training rows."""
    target = np.full(len(d), np.nan)
    inside = d.origin + d.horizon < len(label.periods)
    target[inside] = label.values[d.area[inside], d.origin[inside] + d.horizon]
    sq = (target - level) ** 2
    ok = rows & ~np.isnan(sq)
    total = np.bincount(d.area[ok], sq[ok], minlength=len(label.areas))
    count = np.bincount(d.area[ok], minlength=len(label.areas))
    overall = float(np.mean(sq[ok])) if ok.any() else 1.0
    per_area = np.where(count > 0, total / np.maximum(count, 1), overall)
    return np.sqrt(np.maximum(per_area, overall / 100.0))[d.area]


def split_forecasts(label: Panel, d: Design, t: int, test_area: np.ndarray, learned: Mapping[str, Learned],
                    cfg: EvalConfig, truth: Panel | None = None, *, reference: bool = False,
                    seed: int = 0) -> pd.DataFrame:
    """Forecasts from origin t (horizon d.horizon) for the areas `test_area` (a mask over label.areas) by every
    naive forecast and every `learned` model, trained on the OTHER areas at origins whose target was released
    by t (all areas when every area is a test area: the current forecast). Columns as `rolling_evaluation`
    (truth NaN where `truth` is None or the target lies beyond it)."""
    h = d.horizon
    target_released = np.full(len(d), np.nan)
    inside = d.origin + h < len(label.periods)
    target_released[inside] = label.values[d.area[inside], d.origin[inside] + h]
    train_area = ~test_area if (~test_area).any() else np.ones_like(test_area)
    train_rows = (d.origin <= t - h) & train_area[d.area] & ~np.isnan(target_released)
    test_rows = (d.origin == t) & test_area[d.area]
    if not test_rows.any() or not train_rows.any():
        return pd.DataFrame()
    train_origins = training_origins(t, h, cfg.min_history)
    window = choose_window(label, train_origins, h, cfg.windows, train_area, reference=reference)
    a_win = choose_window(label, train_origins, h, cfg.anchor_windows, train_area, reference=reference)
    level = anchor_rows(label, d, a_win, reference)
    scale = _scale_rows(label, d, level, train_rows)
    idx = d.area[test_rows]
    truth_t = (truth.values[idx, t + h] if truth is not None and t + h < len(truth.periods)
               else np.full(len(idx), np.nan))
    target = label.periods[t + h] if t + h < len(label.periods) else period_after(label.periods[t], h)
    base = {"area_code": np.asarray(label.areas)[idx], "origin": label.periods[t], "target": target,
            "horizon": h, "truth": truth_t, "level": level[test_rows],
            "naive_change": naive_change(label, t, h, reference=reference)[idx]}
    frames = []
    for name in ("persistence", "trailing_mean", "seasonal_naive"):
        pred = naive_forecast(name, label, t, h, window, reference=reference)[idx]
        frames.append(pd.DataFrame({**base, "model": name, "prediction": pred, "lo": np.nan, "hi": np.nan,
                                    "window": window if name == "trailing_mean" else np.nan}))
    y_train = target_released[train_rows] - level[train_rows]
    for name, spec in learned.items():
        model = spec.make({g: d.groups[g].shape[1] for g in spec.groups}, seed)
        x = d.matrix(spec.groups)
        model.fit(x[train_rows], y_train, d.area[train_rows])
        resid = (y_train - model.predict(x[train_rows])) / scale[train_rows]
        factor = float(np.sqrt(np.mean(resid ** 2)))
        pred = level[test_rows] + model.predict(x[test_rows])
        half = Z90 * factor * scale[test_rows]
        frames.append(pd.DataFrame({**base, "model": name, "prediction": pred, "lo": pred - half,
                                    "hi": pred + half, "window": a_win}))
    return pd.concat(frames, ignore_index=True)


def period_after(period: str, h: int) -> str:
    """The period h steps after `period` ("YYYY-MM" months, else years)."""
    freq = "M" if len(period) == 7 else "Y"
    return str(pd.Period(period, freq=freq) + h)


def rolling_evaluation(label: Panel, truth: Panel, partners: Mapping[str, Mapping[str, Panel]], h: int,
                       learned: Mapping[str, Learned], cfg: EvalConfig = EvalConfig(), *,
                       reference: bool = False, on_step: Callable[[str], None] | None = None) -> pd.DataFrame:
    """Held-out forecasts at horizon h of every naive forecast and every `learned` model, per area and test
    origin: columns area_code, origin, target, horizon, model, prediction, lo, hi, truth, level, naive_change,
    window (trailing mean; anchor for learned models), fold. `label`: released history (features, training
    targets); `truth`: what forecasts are scored against (same grid)."""
    n_periods = len(label.periods)
    origins = scored_origins(n_periods, h, cfg.test_origins, cfg.min_history,
                             np.isfinite(label.values).any(axis=0) & np.isfinite(truth.values).any(axis=0))
    if not origins:
        raise ValueError(f"horizon {h}: {n_periods} periods leave no test origin after {cfg.min_history} "
                         "periods of history")
    d = design(label, partners, list(range(cfg.min_history, origins[-1] + 1)), h, reference=reference)
    folds = area_folds(pd.Series(label.areas), cfg.folds, cfg.seed)
    fold_of_area = np.array([folds[a] for a in label.areas])
    frames = []
    for t in origins:
        for k in range(cfg.folds):
            part = split_forecasts(label, d, t, fold_of_area == k, learned, cfg, truth, reference=reference,
                                   seed=cfg.seed + 97 * k + t)
            if not part.empty:
                frames.append(part.assign(fold=k))
            if on_step:
                on_step(f"horizon {h}: origin {label.periods[t]}, fold {k + 1}/{cfg.folds} done")
    return pd.concat(frames, ignore_index=True)


def current_forecasts(label: Panel, partners: Mapping[str, Mapping[str, Panel]], h: int,
                      learned: Mapping[str, Learned], cfg: EvalConfig = EvalConfig(), *,
                      reference: bool = False) -> pd.DataFrame:
    """The forecast people read: from the last period of `label` to h periods beyond it, for every area, by
    every naive forecast and every learned model (trained on all areas at origins whose target is released)."""
    t = len(label.periods) - 1
    d = design(label, partners, list(range(cfg.min_history, t + 1)), h, reference=reference)
    return split_forecasts(label, d, t, np.ones(len(label.areas), bool), learned, cfg, None,
                           reference=reference, seed=cfg.seed)
