"""Empirical-Bayes shrinkage of released area means by their known noise (Fay-Herriot), at no privacy cost.

A DP release adds Gaussian noise of a standard deviation that is known exactly: the noise multiplier times
the table's sensitivity times the series' weight, divided by the public population for a rate. After the
trailing mean, each area's feature is y_i = theta_i + e_i with Var(e_i) = d_i known, and small areas are
much noisier than large ones. The Fay-Herriot model theta_i = x_i'beta + u_i, Var(u_i) = A, with x_i
public area statistics, gives the best linear predictor of theta_i: the regression plus the fraction
A / (A + d_i) of the area's own deviation from it. A is estimated by the Fay-Herriot moment equation
(sum of squared weighted residuals = n - p). Everything here reads released values, the noise's known
scale and public covariates only: post-processing.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

KEYS = ["area_code", "period"]


@dataclass(frozen=True)
class ShrinkageConfig:
    """`vertical.shrinkage` in the run configuration: whether to shrink, and on which public blocks."""

    enabled: bool = False
    covariates: tuple[str, ...] = ()
    min_areas: int = 10

    @classmethod
    def from_cfg(cls, cfg: Mapping | None) -> "ShrinkageConfig":
        cfg = cfg or {}
        return cls(bool(cfg.get("enabled", False)), tuple(str(c) for c in cfg.get("covariates") or ()),
                   int(cfg.get("min_areas", 10)))


def _wls(y: np.ndarray, x: np.ndarray, w: np.ndarray) -> np.ndarray:
    sw = np.sqrt(w)
    beta, *_ = np.linalg.lstsq(x * sw[:, None], y * sw, rcond=None)
    return beta


def fay_herriot(y: np.ndarray, d: np.ndarray, x: np.ndarray, iterations: int = 60) -> tuple[np.ndarray, float]:
    """Shrunk means of `y` (noise variances `d`, known) toward a regression on `x` (with intercept), and A.

    A solves sum (y - x b_A)^2 / (A + d) = n - p (b_A the weighted least squares fit), by bisection on a
    log scale; A = 0 when even no area variance leaves too little spread (then every area takes the fit).
    """
    y, d = np.asarray(y, np.float64), np.maximum(np.asarray(d, np.float64), 0.0)
    x = np.column_stack([np.ones(len(y)), np.asarray(x, np.float64).reshape(len(y), -1)])
    n, p = x.shape
    if n <= p:
        return y.copy(), float("nan")

    def excess(a: float) -> float:
        w = 1.0 / (a + d)
        r = y - x @ _wls(y, x, w)
        return float(np.sum(w * r * r)) - (n - p)

    tiny = 1e-12 * max(float(np.var(y)), 1e-12)
    if np.all(d <= 0):
        return y.copy(), float("inf")
    if excess(tiny) <= 0:
        a = 0.0
    else:
        lo, hi = tiny, max(float(np.var(y)), tiny) * 10.0
        while excess(hi) > 0:
            hi *= 10.0
        for _ in range(iterations):
            mid = np.sqrt(lo * hi)
            lo, hi = (mid, hi) if excess(mid) > 0 else (lo, mid)
        a = float(np.sqrt(lo * hi))
    w = 1.0 / np.maximum(a + d, 1e-300)
    fit = x @ _wls(y, x, w)
    gamma = np.where(a + d > 0, a / np.maximum(a + d, 1e-300), 1.0)
    return fit + gamma * (y - fit), a


def trailing_noise_var(noise: pd.DataFrame, window: int) -> pd.DataFrame:
    """Noise variance of `federation.dataset.trailing_mean` of a block, from its per-cell noise sd (same rows):
    the mean of the window's variances divided by the number of periods averaged."""
    features = [c for c in noise.columns if c not in KEYS]
    ordered = noise.sort_values(KEYS, kind="stable").reset_index(drop=True)
    var = ordered[features].astype("float64") ** 2
    if window > 1:
        grouped = var.groupby(ordered["area_code"].to_numpy(), sort=False)
        mean = grouped.rolling(window, min_periods=1).mean().reset_index(level=0, drop=True).sort_index()
        count = grouped.rolling(window, min_periods=1).count().reset_index(level=0, drop=True).sort_index()
        var = mean / count
    out = ordered[KEYS].copy()
    out[features] = var.to_numpy()
    return out


def shrink_blocks(blocks: Mapping[str, pd.DataFrame], noise_var: Mapping[str, pd.DataFrame],
                  covariates: Sequence[str], min_areas: int = 10) -> dict[str, pd.DataFrame]:
    """Each noised feature of `blocks` (trailing means) shrunk per period by `fay_herriot` on the features of
    the public blocks `covariates`. Features without a known positive noise variance stay as they are."""
    public = [blocks[c] for c in covariates if c in blocks]
    cov = None
    for frame in public:
        cov = frame if cov is None else cov.merge(frame, on=KEYS, how="inner")
    out = dict(blocks)
    for name, var in noise_var.items():
        if name not in blocks or name in covariates:
            continue
        frame = blocks[name].sort_values(KEYS, kind="stable").reset_index(drop=True)
        var = frame[KEYS].merge(var, on=KEYS, how="left")
        x_all = None
        if cov is not None:
            joined = frame[KEYS].merge(cov, on=KEYS, how="left")
            x_all = joined.drop(columns=KEYS).to_numpy(np.float64)
        shrunk = frame.copy()
        for feature in [c for c in frame.columns if c not in KEYS and c in var.columns]:
            d_all = var[feature].to_numpy(np.float64)
            y_all = frame[feature].to_numpy(np.float64)
            values = y_all.copy()
            for _, rows in frame.groupby("period", sort=False).indices.items():
                ok = rows[np.isfinite(d_all[rows]) & np.isfinite(y_all[rows])]
                if x_all is not None:
                    ok = ok[np.isfinite(x_all[ok]).all(axis=1)]
                if len(ok) < min_areas or not np.any(d_all[ok] > 0):
                    continue
                x = np.zeros((len(ok), 0)) if x_all is None else x_all[ok]
                values[ok], _ = fay_herriot(y_all[ok], d_all[ok], x)
            shrunk[feature] = values
        out[name] = shrunk
    return out


def released_features(blocks: Mapping[str, pd.DataFrame], window: int,
                      noise: Mapping[str, pd.DataFrame] | None = None,
                      cfg: ShrinkageConfig = ShrinkageConfig()) -> dict[str, pd.DataFrame]:
    """The coordinator's pipeline on released blocks: trailing means, then, when configured and the release
    said its noise (`noise`: per block, each feature's noise sd per cell), the shrinkage."""
    from federation.dataset import smooth_blocks

    smoothed = smooth_blocks(blocks, window)
    if not cfg.enabled or not noise:
        return smoothed
    var = {name: trailing_noise_var(frame, window) for name, frame in noise.items() if name in blocks}
    return shrink_blocks(smoothed, var, cfg.covariates, cfg.min_areas)
