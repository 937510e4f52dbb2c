"""Honest per-area uncertainty: noise of the released label per population band, forecast intervals per
population band (normalised split conformal) with their coverage checked on held-out areas, changes beyond the
noise, and roll-ups of buurten to wijk, stadsdeel and city.

Why bands: a buurt of 155 residents answers a survey with far fewer respondents than one of 3,500, so its
released value and its forecast scatter more. One conformal quantile for all gives the small buurt too
narrow an interval and the large one too wide.

Why normalised, not one quantile per band: a band holds a few dozen held-out forecasts per horizon (a third of
the areas times a few test origins), and a split-conformal quantile of n errors covers ceil((n+1)·level)/(n+1)
on average: for the halves of a cross-fitted check at a long horizon (18 errors) that is the largest error,
95% where 90% is stated. So each forecast error is divided by its band's error scale at that horizon (the
root mean square of the band's calibration errors), and ONE quantile per horizon is taken over the scaled
errors of all bands: three times the points, and the width still follows each band's own scatter (wider for
a small buurt). Coverage is checked per band and overall area by area: each area's held-out forecasts are
counted against intervals calibrated (scales and quantile) on every other area, as near as a check can come to
the intervals the page shows (calibrated on all areas). A check on halves of the areas calibrates on half the
errors: its quantiles and scales scatter more than the page's, and so does its coverage per band (on one demo,
82% for a band whose coverage area by area was 91%).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Mapping

import numpy as np
import pandas as pd


def z_of(level: float) -> float:
    """The two-sided normal quantile of an interval level (1.645 at 0.9)."""
    return NormalDist().inv_cdf(0.5 + level / 2)


def population_bands(population: Mapping[str, float], n: int) -> dict[str, int]:
    """Band 0 (smallest) .. n-1 (largest) per area by its inhabitants, equal counts of areas per band; an area
    of unknown population joins the smallest band (the widest intervals: the cautious side)."""
    known = sorted((p, c) for c, p in population.items() if p == p)
    out = {c: 0 for c, p in population.items() if p != p}
    for i, (_, code) in enumerate(known):
        out[code] = min(n - 1, i * n // max(1, len(known)))
    return out


def noise_sd(history: pd.DataFrame, bands: Mapping[str, int]) -> dict[int, float]:
    """The released label's noise sd per band: per area the robust spread of its month-to-month changes
    (median absolute change / 0.6745 / sqrt 2, which also holds real change: an upper bound on the noise),
    the band's median over its areas. `history`: area_code, period, value (released values only)."""
    per_area: dict[int, list[float]] = {}
    for code, rows in history.sort_values("period").groupby("area_code"):
        steps = np.diff(rows["value"].to_numpy(dtype=float))
        if len(steps) >= 2 and code in bands:
            per_area.setdefault(bands[code], []).append(float(np.median(np.abs(steps))) / 0.6745 / math.sqrt(2))
    pooled = [v for vs in per_area.values() for v in vs]
    fallback = float(np.median(pooled)) if pooled else float("nan")
    return {b: float(np.median(per_area[b])) if per_area.get(b) else fallback for b in sorted(set(bands.values()))}


def conformal_half(residuals: np.ndarray, level: float) -> float:
    """Split-conformal half width: the ceil((n+1) level)-th smallest absolute residual (inf if n is too small)."""
    r = np.sort(np.abs(np.asarray(residuals, dtype=float)))
    k = math.ceil((len(r) + 1) * level)
    return float(r[k - 1]) if 0 < k <= len(r) else float("inf")


def error_scales(err: np.ndarray, band: np.ndarray) -> dict[int, float]:
    """{band: error scale} of forecasts whose absolute errors are `err` (one per row, `band` its band): the
    root mean square of the band's errors; a band of fewer than two errors, or of none above zero, takes the
    scale of all bands together (pooled with its neighbours rather than a width from one error)."""
    err, band = np.asarray(err, dtype=float), np.asarray(band).astype(int)
    pooled = float(np.sqrt(np.mean(err ** 2))) if len(err) else 0.0
    out = {}
    for b in np.unique(band):
        own = err[band == b]
        rms = float(np.sqrt(np.mean(own ** 2)))
        out[int(b)] = rms if len(own) >= 2 and rms > 0 else pooled
    return out


def _scaled_quantile(err: np.ndarray, band: np.ndarray, level: float) -> dict[int, float]:
    """{band: half width} from calibration errors: the conformal quantile of the errors divided by their band's
    scale, times each band's scale (inf where the calibration set is too small to promise `level`)."""
    scale = error_scales(err, band)
    if not any(s > 0 for s in scale.values()):   # every error 0: an interval of width 0 covers them all
        return {b: 0.0 for b in scale}
    unit = np.array([scale[int(b)] for b in band])
    q = conformal_half(np.asarray(err, dtype=float) / unit, level)
    return {b: q * s for b, s in scale.items()}


def _frame(held: pd.DataFrame, bands: Mapping[str, int]) -> pd.DataFrame:
    frame = held.assign(band=held["area_code"].map(bands)).dropna(subset=["band", "truth", "prediction"])
    return frame.assign(band=frame["band"].astype(int), err=(frame["prediction"] - frame["truth"]).abs())


def band_halves(held: pd.DataFrame, bands: Mapping[str, int], level: float) -> dict[tuple[int, int], float]:
    """{(horizon, band): half width} from held-out forecasts (`held`: area_code, horizon, prediction, truth):
    normalised split conformal, one quantile per horizon over every band (see the module's docstring)."""
    out: dict[tuple[int, int], float] = {}
    for h, g in _frame(held, bands).groupby("horizon"):
        for b, w in _scaled_quantile(g["err"].to_numpy(), g["band"].to_numpy(), level).items():
            out[(int(h), b)] = w
    return out


@dataclass(frozen=True)
class Coverage:
    """Share of held-out forecasts inside their interval, calibrated on every other area."""

    level: float
    overall: float
    n: int
    per_band: dict[int, tuple[float, int]]     # band -> (coverage, count)


def coverage(held: pd.DataFrame, bands: Mapping[str, int], level: float, horizon: int) -> Coverage | None:
    """Coverage at one horizon, area by area: each area's held-out forecasts against intervals from every other
    area's errors (their error scales and their quantile, as `band_halves`); every held-out forecast counted
    once, overall and per band."""
    frame = _frame(held[held["horizon"] == horizon], bands)
    if frame.empty:
        return None
    inside = pd.Series(False, index=frame.index)
    for _, rows in frame.groupby("area_code"):
        other = frame.drop(index=rows.index)
        width = _scaled_quantile(other["err"].to_numpy(), other["band"].to_numpy(), level)
        inside.loc[rows.index] = rows["err"] <= rows["band"].map(lambda b: width.get(int(b), float("inf")))
    per = {int(b): (float(inside[g.index].mean()), len(g)) for b, g in frame.groupby("band")}
    return Coverage(level, float(inside.mean()), len(frame), per)


def changes(a: Mapping[str, tuple[float, float]], b: Mapping[str, tuple[float, float]]) -> dict[str, float]:
    """{area: change} for the areas whose change from `a` to `b` exceeds the combined uncertainty: each value
    is (value, half width at the twin's level) and a change is listed only when |b - a| > sqrt(ua² + ub²)."""
    out = {}
    for code in sorted(set(a) & set(b)):
        (va, ua), (vb, ub) = a[code], b[code]
        if all(map(math.isfinite, (va, vb, ua, ub))) and abs(vb - va) > math.hypot(ua, ub):
            out[code] = vb - va
    return out


def roll_up(values: Mapping[str, tuple[float, float]], weights: Mapping[str, float], members: tuple[str, ...],
            independent: bool) -> tuple[float, float] | None:
    """A population-weighted mean of the members that have a value, and its half width: independent noise
    (released values) adds in quadrature; forecast errors may move together, so their half widths add up."""
    have = [m for m in members if m in values and math.isfinite(values[m][0])]
    w = np.array([weights.get(m, 0.0) if weights.get(m, 0.0) == weights.get(m, 0.0) else 0.0 for m in have])
    if not have or w.sum() <= 0:
        return None
    w = w / w.sum()
    v = np.array([values[m][0] for m in have])
    u = np.array([values[m][1] for m in have])
    half = float(np.sqrt(np.sum((w * u) ** 2))) if independent else float(np.sum(w * u))
    return float(np.dot(w, v)), half
