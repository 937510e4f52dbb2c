"""Early warning: the predicted change of each area against its own recent level, with an interval; the
ranked list of areas expected to worsen most; and its score against the naive ranking.

A change is shown as a change only when its interval excludes 0 (`beyond_noise`); otherwise the twin says
"no change beyond the noise". The interval comes from the forecast's interval (calibrated on released
history, which holds the DP noise) widened by the noise of the level itself where the release states it.
The naive ranking is last period's worst movers: the released change over the last h periods.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from server.forecast.panel import Panel

WORSE_SIGN = {"lower": -1.0, "higher": 1.0}
WARNING_COLUMNS = ["horizon", "area_code", "level", "predicted", "change", "change_lo", "change_hi",
                   "beyond_noise", "model_rank", "naive_change", "naive_rank"]


def worse_sign(worse: str) -> float:
    if worse not in WORSE_SIGN:
        raise ValueError(f"worse must be 'lower' or 'higher', got {worse!r}")
    return WORSE_SIGN[worse]


def naive_change(label: Panel, t: int, h: int, *, reference: bool = False) -> np.ndarray:
    """Last period's movers: each area's last released value up to t minus its last released value at least
    h periods before that one (monthly releases: x(t) - x(t - h); survey waves: the last two waves h or more
    apart). NaN where the history holds no such pair."""
    label.require_released(reference)
    out = np.full(len(label.areas), np.nan)
    seen = ~np.isnan(label.values[:, :t + 1])
    for i in range(len(label.areas)):
        idx = np.flatnonzero(seen[i])
        if idx.size == 0:
            continue
        last = idx[-1]
        before = idx[idx <= last - h]
        if before.size:
            out[i] = label.values[i, last] - label.values[i, before[-1]]
    return out


def beyond_noise(change_lo: np.ndarray, change_hi: np.ndarray) -> np.ndarray:
    """True where the change's interval excludes zero; an unknown interval is never a change."""
    lo, hi = np.asarray(change_lo, float), np.asarray(change_hi, float)
    with np.errstate(invalid="ignore"):
        return (lo > 0) | (hi < 0)


def change_interval(predicted: np.ndarray, lo: np.ndarray, hi: np.ndarray, level: np.ndarray,
                    level_noise_sd: np.ndarray | None = None, z: float = 1.6448536269514722
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(change, change_lo, change_hi) of a forecast against the level; the level's own release noise (sd per
    area, if known) widens the interval in quadrature."""
    change = np.asarray(predicted, float) - np.asarray(level, float)
    half_lo, half_hi = np.asarray(predicted) - np.asarray(lo), np.asarray(hi) - np.asarray(predicted)
    if level_noise_sd is not None:
        extra = (z * np.nan_to_num(np.asarray(level_noise_sd, float))) ** 2
        half_lo, half_hi = np.sqrt(half_lo ** 2 + extra), np.sqrt(half_hi ** 2 + extra)
    return change, change - half_lo, change + half_hi


def _rank(score: np.ndarray, eligible: np.ndarray) -> np.ndarray:
    """1 = highest score among eligible rows; NaN elsewhere."""
    out = np.full(len(score), np.nan)
    idx = np.flatnonzero(eligible & ~np.isnan(score))
    order = idx[np.argsort(-score[idx], kind="stable")]
    out[order] = np.arange(1, len(order) + 1)
    return out


def warning_list(horizon: int, areas: Sequence[str], level: np.ndarray, predicted: np.ndarray | None,
                 lo: np.ndarray | None, hi: np.ndarray | None, naive: np.ndarray, worse: str,
                 level_noise_sd: np.ndarray | None = None, withheld: bool = False) -> pd.DataFrame:
    """The rows of warnings.csv at the current origin. `model_rank` ranks the areas whose predicted change is
    beyond the noise AND toward worse (1 = worsens most); `naive_rank` ranks every area by its naive change
    toward worse. `withheld` (the gate refused the model): the model's columns are left empty and only the
    naive ranking is listed."""
    sign = worse_sign(worse)
    n = len(areas)
    naive = np.asarray(naive, float)
    frame = pd.DataFrame({"horizon": int(horizon), "area_code": list(areas), "level": np.asarray(level, float)})
    if withheld or predicted is None:
        for col in ("predicted", "change", "change_lo", "change_hi", "model_rank"):
            frame[col] = np.nan
        frame["beyond_noise"] = False
    else:
        change, c_lo, c_hi = change_interval(predicted, lo, hi, level, level_noise_sd)
        beyond = beyond_noise(c_lo, c_hi)
        frame["predicted"], frame["change"] = np.asarray(predicted, float), change
        frame["change_lo"], frame["change_hi"], frame["beyond_noise"] = c_lo, c_hi, beyond
        frame["model_rank"] = _rank(sign * change, beyond & (sign * change > 0))
    frame["naive_change"] = naive
    frame["naive_rank"] = _rank(sign * naive, np.ones(n, bool))
    frame["model_rank"] = frame["model_rank"].astype("Int64")
    frame["naive_rank"] = frame["naive_rank"].astype("Int64")
    return frame[WARNING_COLUMNS].sort_values(["model_rank", "naive_rank"], na_position="last").reset_index(drop=True)


def shown_change(change: float, beyond: bool, no_change_text: str, digits: int = 3) -> str:
    """How a change is displayed: the signed number only beyond the noise, else the no-change sentence."""
    return f"{change:+.{digits}f}" if beyond and np.isfinite(change) else no_change_text


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Rank correlation of two series (average ranks for ties); NaN with fewer than 3 pairs."""
    ok = ~np.isnan(a) & ~np.isnan(b)
    if ok.sum() < 3:
        return float("nan")
    ra, rb = pd.Series(a[ok]).rank().to_numpy(), pd.Series(b[ok]).rank().to_numpy()
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def precision_at_k(predicted_score: np.ndarray, real_score: np.ndarray, k: int) -> float:
    """Share of the k areas ranked worst by `predicted_score` that are among the k worst by `real_score`."""
    ok = ~np.isnan(predicted_score) & ~np.isnan(real_score)
    if ok.sum() < k:
        return float("nan")
    p, r = predicted_score[ok], real_score[ok]
    top_p = set(np.argsort(-p, kind="stable")[:k])
    top_r = set(np.argsort(-r, kind="stable")[:k])
    return len(top_p & top_r) / k


def warning_scores(held: pd.DataFrame, model: str, worse: str, ks: Sequence[int] = (5, 10)) -> dict[str, float]:
    """Precision at k and Spearman correlation of the model's predicted changes (prediction - level) with the
    real ones (truth - level), per test origin over all areas (each forecast made without its area), averaged
    over origins; beside them the same scores of the naive ranking (`naive_change` column)."""
    sign = worse_sign(worse)
    rows = held[(held["model"] == model) & held["truth"].notna()]
    out: dict[str, list[float]] = {}
    for _, g in rows.groupby("origin"):
        real = sign * (g["truth"] - g["level"]).to_numpy(float)
        pred = sign * (g["prediction"] - g["level"]).to_numpy(float)
        naive = sign * g["naive_change"].to_numpy(float)
        for k in ks:
            out.setdefault(f"precision_at_{k}", []).append(precision_at_k(pred, real, k))
            out.setdefault(f"naive_precision_at_{k}", []).append(precision_at_k(naive, real, k))
        out.setdefault("spearman", []).append(spearman(pred, real))
        out.setdefault("naive_spearman", []).append(spearman(naive, real))
    return {k: float(np.nanmean(v)) if np.isfinite(v).any() else float("nan") for k, v in out.items()}
