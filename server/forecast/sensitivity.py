"""The forecast's sensitivity to each partner driver: RUN_DIR/forecast/drivers.csv, the one source of the
report's drivers, the twin's what-if, the feedback pages' community share and the twin colleague's answers.

For the fusion model at the configured horizon, fitted as for the current forecast (every area, origins whose
target is released by the last period), and for every area: how the model's expectation moves when one
driver (a partner's released feature: its last value, trailing means and trend together; or the label's own
released level or trend, partner `label`) is set to the city median, all else unchanged. The interval is a delete-a-fold jackknife over the evaluation's area folds: the
model refitted without each fold's areas, its shifts' spread, at the forecast's interval level.

This is the model's sensitivity, an association learned from released data, not the effect of a policy.
Features come from released values only (post-processing, no privacy cost); the file keeps the area's
current value of each driver (its released last value, after shrinkage) and the city median beside it.
"""
from __future__ import annotations

from pathlib import Path
from statistics import NormalDist
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from federation.dataset import area_folds
from server.forecast.artefacts import write_columns, forecast_dir
from server.forecast.evaluate import Learned, period_after, anchor_rows, training_origins
from server.forecast.features import design
from server.forecast.naive import choose_window
from server.forecast.panel import Panel
from server.forecast.run import ForecastConfig

DRIVERS_FILE = "drivers.csv"
DRIVER_COLUMNS = ["area_code", "origin", "target", "horizon", "partner", "block", "driver", "value", "city_median",
                  "shift", "shift_lo", "shift_hi"]


def median_shifts(predict: Callable[[np.ndarray], np.ndarray], x: np.ndarray,
                  drivers: Sequence[Sequence[int]]) -> np.ndarray:
    """[rows x drivers]: how `predict(x)` moves when a driver's columns (`drivers[j]`: column indices) are set
    to their median over the rows, every other column unchanged. The one way drivers are computed."""
    x = np.asarray(x, dtype=float)
    base = np.asarray(predict(x), dtype=float).reshape(-1)
    with np.errstate(all="ignore"):
        median = np.nanmedian(np.where(np.isfinite(x), x, np.nan), axis=0) if len(x) else np.zeros(x.shape[1])
    out = np.zeros((len(x), len(drivers)))
    for j, cols in enumerate(drivers):
        moved = x.copy()
        moved[:, list(cols)] = median[list(cols)]
        out[:, j] = np.asarray(predict(moved), dtype=float).reshape(-1) - base
    return out


def _driver_columns(names: Mapping[str, list[str]], groups: Sequence[str]) -> dict[tuple[str, str], list[int]]:
    """{(group, "<block>.<feature>"): column indices in the groups' matrix}: each partner feature with its
    last value, trailing means and trend; the label's own history as two drivers, its level (last value,
    lags, trailing means, seasonal value: `history.own_level`) and its trends (`history.own_trend`)."""
    out: dict[tuple[str, str], list[int]] = {}
    offset = 0
    for g in groups:
        for i, name in enumerate(names.get(g, [])):
            if g == "history":
                key = ("label", "history.own_trend" if name.startswith("trend") else "history.own_level")
            else:
                key = (g, name.split(":", 1)[0])
            out.setdefault(key, []).append(offset + i)
        offset += len(names.get(g, []))
    return out


def driver_table(label: Panel, partners: Mapping[str, Mapping[str, Panel]], cfg: ForecastConfig,
                 learned: Learned) -> pd.DataFrame:
    """The rows of drivers.csv (DRIVER_COLUMNS) for the current origin (the label's last period) at the
    configured horizon, from the fusion model `learned` fitted as `evaluate.current_forecasts` fits it (same
    rows, anchor window and seed); the interval at `cfg.interval` over `cfg.folds` area folds."""
    horizon, min_history, seed = cfg.configured_horizon, cfg.min_history, cfg.seed
    t = len(label.periods) - 1
    d = design(label, partners, list(range(min_history, t + 1)), horizon)
    target = np.full(len(d), np.nan)
    inside = d.origin + horizon < len(label.periods)
    target[inside] = label.values[d.area[inside], d.origin[inside] + horizon]
    train = (d.origin <= t - horizon) & ~np.isnan(target)
    now = d.origin == t
    if not train.any() or not now.any():
        return pd.DataFrame(columns=DRIVER_COLUMNS)
    window = choose_window(label, training_origins(t, horizon, min_history), horizon, cfg.anchor_windows,
                           np.ones(len(label.areas), bool))
    level_rows = anchor_rows(label, d, window, False)
    x = d.matrix(learned.groups)
    y = target - level_rows
    widths = {g: d.groups[g].shape[1] for g in learned.groups}
    columns = _driver_columns(d.names, learned.groups)
    keys = list(columns)

    def shifts(mask: np.ndarray, fit_seed: int) -> np.ndarray:
        model = learned.make(widths, fit_seed)
        model.fit(x[mask], y[mask], d.area[mask])
        return median_shifts(model.predict, x[now], [columns[k] for k in keys])

    full = shifts(train, seed)
    fold_of = area_folds(pd.Series(label.areas), cfg.folds, seed)
    fold = np.array([fold_of[a] for a in label.areas])[d.area]
    jack = [shifts(train & (fold != k), seed) for k in range(cfg.folds) if (train & (fold != k)).any()]
    k = len(jack)
    se = (np.sqrt((k - 1) / k * np.sum((np.stack(jack) - np.mean(jack, axis=0)) ** 2, axis=0)) if k > 1
          else np.full(full.shape, np.nan))
    z = NormalDist().inv_cdf(0.5 + cfg.interval / 2)
    xs = x[now]
    with np.errstate(all="ignore"):
        median = np.nanmedian(np.where(np.isfinite(xs), xs, np.nan), axis=0)
    rows = []
    target_period = period_after(label.periods[t], horizon)
    for i, a in enumerate(d.area[now]):
        for j, (partner, name) in enumerate(keys):
            cols = columns[(partner, name)]       # its released last value; for the trends, the longest
            last = cols[-1] if name.endswith("own_trend") else cols[0]
            block, _, feature = name.partition(".")
            rows.append((label.areas[a], label.periods[t], target_period, horizon, partner, block, feature or block,
                         xs[i, last], median[last], full[i, j], full[i, j] - z * se[i, j], full[i, j] + z * se[i, j]))
    return pd.DataFrame(rows, columns=DRIVER_COLUMNS)


def write_drivers(run_dir: Path | str, frame: pd.DataFrame) -> Path:
    """RUN_DIR/forecast/drivers.csv (DRIVER_COLUMNS; written whole or not at all)."""
    return write_columns(frame, DRIVER_COLUMNS, forecast_dir(run_dir) / DRIVERS_FILE)
