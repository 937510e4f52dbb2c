"""Under-reporting per area: residents' reports against what the area's other figures predict.

Residents of some areas report far less for the same problems (studies of 311 data), so a low count is not a
low need. Per area, the observed yearly report rate is compared with the rate a log-linear model predicts
from figures that do not depend on residents' willingness to report: public register figures, and released
figures of other sources (frontliners' signals, police registrations, the survey's liveability). The fit is
robust (Huber weights, scale from the median absolute deviation), so the under-reporting areas themselves
do not pull the prediction down. An area is flagged when its rate is below `max_ratio` of the prediction
AND its residual is beyond `z` robust standard deviations: a gap inside the spread of areas is no gap.

Inputs are released or public aggregates, so this is post-processing (no privacy cost).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

HUBER_K = 1.345
MAD_TO_SD = 1.4826


@dataclass(frozen=True)
class Indicator:
    """Per area: observed and expected yearly reports per 1,000 residents, their ratio, robust z, flag."""

    frame: pd.DataFrame      # index area_code; columns observed, expected, ratio, z, under_reporting
    scale: float             # robust sd of the log residuals
    predictors: tuple[str, ...]

    def flagged(self) -> list[str]:
        return sorted(self.frame.index[self.frame["under_reporting"]])


def _robust_fit(x: np.ndarray, y: np.ndarray, w0: np.ndarray, iterations: int = 50) -> tuple[np.ndarray, float]:
    """Huber IRLS of y on [1, x] with prior weights w0; returns the coefficients and the residual scale."""
    design = np.column_stack([np.ones(len(y)), x])
    weights = w0.copy()
    beta = np.zeros(design.shape[1])
    scale = 1.0
    for _ in range(iterations):
        sw = np.sqrt(weights)
        beta, *_ = np.linalg.lstsq(design * sw[:, None], y * sw, rcond=None)
        resid = y - design @ beta
        scale = max(MAD_TO_SD * float(np.median(np.abs(resid - np.median(resid)))), 1e-6)
        u = np.abs(resid) / (HUBER_K * scale)
        weights = w0 * np.where(u <= 1, 1.0, 1.0 / np.maximum(u, 1e-12))
    return beta, scale


def underreporting(observed: pd.Series, predictors: pd.DataFrame, population: pd.Series | None = None,
                   max_ratio: float = 0.6, z: float = 2.0) -> Indicator:
    """The indicator for every area with an observed rate and every predictor (yearly rates per 1,000).

    `observed`: residents' reports per 1,000 a year per area (from the DP release: noisy, may be <= 0).
    `predictors`: per area, figures of need that do not depend on residents reporting (logged if positive
    rates; columns named as they should appear in reports). `population` weighs areas (larger areas'
    rates are less noisy); without it every area weighs the same."""
    data = pd.concat([observed.rename("observed"), predictors], axis=1, join="inner").dropna()
    if len(data) < predictors.shape[1] + 3:
        raise ValueError(f"under-reporting needs more areas than predictors + 2; got {len(data)} areas")
    floor = max(float(data["observed"][data["observed"] > 0].min()) / 2, 1e-3) if (data["observed"] > 0).any() else 1e-3
    y = np.log(np.maximum(data["observed"].to_numpy(float), floor))
    x = np.column_stack([np.log(np.maximum(data[c].to_numpy(float), 1e-3)) if (data[c] > 0).all()
                         else data[c].to_numpy(float) for c in predictors.columns])
    w0 = np.ones(len(y)) if population is None else \
        np.sqrt(population.reindex(data.index).fillna(population.median()).to_numpy(float))
    w0 = w0 / w0.mean()
    beta, scale = _robust_fit(x, y, w0)
    fitted = np.column_stack([np.ones(len(y)), x]) @ beta
    resid = y - fitted
    frame = pd.DataFrame({
        "observed": data["observed"].to_numpy(float),
        "expected": np.exp(fitted),
        "ratio": np.exp(resid),
        "z": resid / scale,
    }, index=data.index)
    frame["under_reporting"] = (frame["ratio"] < max_ratio) & (frame["z"] < -z)
    frame.index.name = "area_code"
    return Indicator(frame, scale, tuple(predictors.columns))
