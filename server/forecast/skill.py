"""Scores of held-out forecasts: R² and MAE in label units, skill over the best naive forecast with a 90%
interval from resampling whole areas, and interval coverage.

skill = 1 - MSE(model) / MSE(best naive), on the same rows. The best naive forecast is the one with the
least squared error on those rows (the hardest one to beat), among persistence, the trailing mean, the
seasonal naive forecast and the model of the label's own history (`best_baseline`). The interval resamples areas with replacement
(all of an area's rows together, as its errors are correlated over origins); the resampling generator is
seeded for reproducible reports: it draws no privacy noise.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from server.forecast.naive import NAIVE_MODELS

ROW_KEYS = ["area_code", "origin", "horizon"]


def r2_mae(truth: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """R² and MAE (label units) of predictions against the truth, and the number of rows."""
    truth, pred = np.asarray(truth, float), np.asarray(pred, float)
    ss_tot = float(np.sum((truth - truth.mean()) ** 2)) if len(truth) else 0.0
    ss_res = float(np.sum((truth - pred) ** 2))
    return {"r2": 1.0 - ss_res / ss_tot if ss_tot > 0 else float("nan"),
            "mae": float(np.mean(np.abs(truth - pred))) if len(truth) else float("nan"), "n": int(len(truth))}


def skill_interval(areas: Sequence[str], err_model: np.ndarray, err_naive: np.ndarray, level: float = 0.90,
                   draws: int = 2000, seed: int = 0) -> dict[str, float]:
    """Skill of a model over a naive forecast from paired errors (same rows), with its `level` interval from
    resampling whole areas. Returns skill, skill_lo, skill_hi."""
    codes, area_idx = np.unique(np.asarray(areas, str), return_inverse=True)
    sm = np.bincount(area_idx, np.asarray(err_model, float) ** 2, minlength=len(codes))
    sn = np.bincount(area_idx, np.asarray(err_naive, float) ** 2, minlength=len(codes))
    if sn.sum() <= 0:
        return {"skill": float("nan"), "skill_lo": float("nan"), "skill_hi": float("nan")}
    skill = 1.0 - sm.sum() / sn.sum()
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(codes), size=(draws, len(codes)))
    counts = np.apply_along_axis(np.bincount, 1, pick, minlength=len(codes))
    num, den = counts @ sm, counts @ sn
    boot = 1.0 - num[den > 0] / den[den > 0]
    tail = (1.0 - level) / 2
    return {"skill": float(skill), "skill_lo": float(np.quantile(boot, tail)),
            "skill_hi": float(np.quantile(boot, 1 - tail))}


def paired(held: pd.DataFrame, model: str, other: str) -> pd.DataFrame:
    """Rows both forecasts scored, with columns area_code, truth, pred, other."""
    a = held[held["model"] == model][ROW_KEYS + ["truth", "prediction"]]
    b = held[held["model"] == other][ROW_KEYS + ["prediction"]].rename(columns={"prediction": "other"})
    m = a.merge(b, on=ROW_KEYS).rename(columns={"prediction": "pred"})
    return m[m["truth"].notna() & m["pred"].notna() & m["other"].notna()]


def best_naive(held: pd.DataFrame, naive: Sequence[str] = NAIVE_MODELS) -> str:
    """The naive forecast with the least squared error on the scored rows."""
    mse = {}
    for name in naive:
        rows = held[(held["model"] == name) & held["truth"].notna() & held["prediction"].notna()]
        if len(rows):
            mse[name] = float(np.mean((rows["truth"] - rows["prediction"]) ** 2))
    if not mse:
        raise ValueError("no naive forecast has a scored row")
    return min(mse, key=mse.get)


def best_baseline(held: pd.DataFrame) -> str:
    """What a model must beat: the best of the naive forecasts AND the model of the label's own history
    (where it was scored), both computed from the label's released history alone. A model that only
    re-learns the label's history (a world whose partners carry nothing) then shows no skill."""
    names = NAIVE_MODELS + ((HISTORY_MODEL,) if (held["model"] == HISTORY_MODEL).any() else ())
    return best_naive(held, names)


def coverage(held: pd.DataFrame, model: str) -> float | None:
    """Share of scored rows whose truth lies inside the model's interval (None without intervals)."""
    rows = held[(held["model"] == model) & held["truth"].notna() & held["lo"].notna()]
    if rows.empty:
        return None
    return float(((rows["truth"] >= rows["lo"]) & (rows["truth"] <= rows["hi"])).mean())


HISTORY_MODEL = "label_history"


def score_models(held: pd.DataFrame, naive_name: str | None = None, seed: int = 0) -> list[dict]:
    """One row per model in `held` (one horizon): r2, mae, n, coverage_90, window (trailing mean), and for
    every non-naive model its skill over `naive_name` (default: `best_baseline`) with the 90% interval. The
    label-history model is itself scored over the best of the simple naive forecasts."""
    naive_name = naive_name or best_baseline(held)
    simple = best_naive(held)
    rows = []
    for model in held["model"].unique():
        mine = held[(held["model"] == model) & held["truth"].notna() & held["prediction"].notna()]
        row = {"model": str(model), **r2_mae(mine["truth"], mine["prediction"]),
               "skill": None, "skill_lo": None, "skill_hi": None, "coverage_90": coverage(held, model)}
        if model == "trailing_mean" and mine["window"].notna().any():
            row["window"] = int(mine["window"].mode().iloc[0])
        if model not in NAIVE_MODELS:
            p = paired(held, model, simple if model == HISTORY_MODEL else naive_name)
            row.update(skill_interval(p["area_code"], p["pred"] - p["truth"], p["other"] - p["truth"], seed=seed))
        rows.append(row)
    return rows
