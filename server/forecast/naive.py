"""Naive forecasts, first-class models: what "the same as the last months" predicts for period t + h.

Each takes a panel (released values, or the exact reference when `reference=True`), the origin index `t`
(the last period whose data is used) and the horizon `h`, and returns one forecast per area (NaN where the
area has no released value up to t). They read only periods up to and including t.
"""
from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np

from server.forecast.panel import Panel

NAIVE_MODELS: tuple[str, ...] = ("persistence", "trailing_mean", "seasonal_naive")
DEFAULT_WINDOWS: tuple[int, ...] = (3, 6, 12)
SEASON = 12


def _nanmean(block: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(block, axis=1)


def persistence(panel: Panel, t: int, h: int = 1, *, reference: bool = False) -> np.ndarray:
    """The last released value up to period t (the same as now)."""
    panel.require_released(reference)
    return panel.filled()[:, t].copy()


def trailing_mean(panel: Panel, t: int, h: int = 1, window: int = 3, *, reference: bool = False) -> np.ndarray:
    """The mean of the released values of periods t - window + 1 .. t (gaps skipped); persistence where the
    window holds none (e.g. between survey waves)."""
    panel.require_released(reference)
    lo = max(0, t - window + 1)
    out = _nanmean(panel.values[:, lo:t + 1])
    gap = np.isnan(out)
    out[gap] = panel.filled()[gap, t]
    return out


def seasonal_naive(panel: Panel, t: int, h: int = 1, season: int = SEASON, *, reference: bool = False) -> np.ndarray:
    """The value of the same period a season (a year of months) before the target t + h, as released up to
    then (the latest season back that is not after t); persistence where the history is shorter."""
    panel.require_released(reference)
    filled = panel.filled()
    s = t + h - season
    while s > t:
        s -= season
    if s < 0:
        return filled[:, t].copy()
    out = filled[:, s].copy()
    gap = np.isnan(out)
    out[gap] = filled[gap, t]
    return out


def naive_forecast(model: str, panel: Panel, t: int, h: int, window: int = 3, *,
                   reference: bool = False) -> np.ndarray:
    """One naive forecast by name (NAIVE_MODELS)."""
    if model == "persistence":
        return persistence(panel, t, h, reference=reference)
    if model == "trailing_mean":
        return trailing_mean(panel, t, h, window, reference=reference)
    if model == "seasonal_naive":
        return seasonal_naive(panel, t, h, reference=reference)
    raise ValueError(f"unknown naive forecast {model!r}; one of {', '.join(NAIVE_MODELS)}")


def choose_window(panel: Panel, origins: Sequence[int], h: int, windows: Sequence[int] = DEFAULT_WINDOWS,
                  rows: np.ndarray | None = None, *, reference: bool = False) -> int:
    """The trailing-mean window with the least squared error at horizon h over the TRAINING `origins` (each
    scored against the released value at origin + h, which must not lie after the last training period),
    on the areas `rows` (a boolean mask; all areas if None). The first window wins ties and empty cases."""
    panel.require_released(reference)
    rows = np.ones(len(panel.areas), bool) if rows is None else rows
    best, best_err = windows[0], np.inf
    for w in windows:
        errs = []
        for t in origins:
            if t + h >= len(panel.periods):
                continue
            e = trailing_mean(panel, t, h, w, reference=reference)[rows] - panel.values[rows, t + h]
            errs.append(e[~np.isnan(e)])
        err = np.concatenate(errs) if errs else np.array([])
        mse = float(np.mean(err ** 2)) if err.size else np.inf
        if mse < best_err:
            best, best_err = w, mse
    return int(best)
