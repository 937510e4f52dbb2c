"""Honest per-area uncertainty: noise of the released label per population band, forecast intervals per
population band (split conformal) with their coverage checked on held-out areas, changes beyond the noise,
and roll-ups of buurten to wijk, stadsdeel and city.

Why bands: a buurt of 155 residents answers a survey with far fewer respondents than one of 3,500, so its
released value and its forecast scatter more. One conformal quantile for all gives the small buurt too
narrow an interval and the large one too wide; a quantile per population band follows each area's noise and
keeps the stated coverage within every band (checked here by calibrating on half of the held-out areas and
counting on the other half).
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


def band_halves(held: pd.DataFrame, bands: Mapping[str, int], level: float) -> dict[tuple[int, int], float]:
    """{(horizon, band): half width} from held-out forecasts (`held`: area_code, horizon, prediction, truth)."""
    frame = held.assign(band=held["area_code"].map(bands)).dropna(subset=["band", "truth", "prediction"])
    return {(int(h), int(b)): conformal_half((g["prediction"] - g["truth"]).to_numpy(), level)
            for (h, b), g in frame.groupby(["horizon", "band"])}


@dataclass(frozen=True)
class Coverage:
    """Share of held-out forecasts inside their band's interval, calibrated on the other half of the areas."""

    level: float
    overall: float
    n: int
    per_band: dict[int, tuple[float, int]]     # band -> (coverage, count)


def coverage(held: pd.DataFrame, bands: Mapping[str, int], level: float, horizon: int) -> Coverage | None:
    """Cross-fitted coverage at one horizon: the areas of each band split in two halves (alternating by code);
    each half's intervals come from the other half's residuals; every held-out forecast counted once."""
    frame = held[held["horizon"] == horizon].assign(band=lambda f: f["area_code"].map(bands))
    frame = frame.dropna(subset=["band", "truth", "prediction"])
    if frame.empty:
        return None
    half = {c: i % 2 for b in set(bands.values())
            for i, c in enumerate(sorted(c for c, v in bands.items() if v == b))}
    frame = frame.assign(half=frame["area_code"].map(half), err=(frame["prediction"] - frame["truth"]).abs())
    inside = pd.Series(False, index=frame.index)
    for (b, k), rows in frame.groupby(["band", "half"]):
        other = frame[(frame["band"] == b) & (frame["half"] != k)]["err"].to_numpy()
        inside.loc[rows.index] = rows["err"] <= conformal_half(other, level)
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
