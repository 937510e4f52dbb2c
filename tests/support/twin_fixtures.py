"""A finished vertical run for the twin's tests: 24 released months of the label over Heerlen's buurten, whose
noise follows each buurt's real population (sd 0.5/sqrt(inhabitants), so a buurt of 50 scatters eight times
more than one of 3,500), forecasts at horizons 1 and 3 in the artefact format of RUN_DIR/forecast/
(held-out rows by rolling origin, the current forecast with the naive forecasts beside it), warnings.csv,
skill.json whose gate follows `skill`, a partner's released series and the proposal's code hash.

The model's forecast is the true level plus a small error, so a forecast's error against the released
value is mostly the released value's own noise: intervals per population band must widen for small buurten
and cover the stated share within every band.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from server.twin.geography import cbs_names_and_population
from tests.support.report_fixtures import write_run

HORIZONS = (1, 3)
FIRST = "2019-01"


def write_twin_run(run_dir: Path, seed: int = 1, months: int = 24, skill: tuple[float, float, float] = (0.2, 0.1, 0.3),
                   forecast: bool = True) -> Path:
    """The run directory (see the module's docstring); `forecast=False`: the run of before forecast/ existed."""
    write_run(run_dir, seed=seed, skill=None)      # forecast/ is this fixture's own (or none at all)
    if not forecast:
        return run_dir
    rng = np.random.default_rng(seed)
    codes = sorted(pd.read_csv(run_dir / "predictions.csv", dtype={"area_code": str})["area_code"])
    _, population = cbs_names_and_population()
    sd = {c: 0.5 / np.sqrt(max(population.get(c, 50.0), 50.0)) for c in codes}
    periods = [str(p) for p in pd.period_range(FIRST, periods=months, freq="M")]
    base = dict(zip(codes, rng.uniform(3.8, 4.4, len(codes))))
    slope = dict(zip(codes, rng.normal(0, 0.002, len(codes))))
    true = {(c, t): base[c] + slope[c] * i for c in codes for i, t in enumerate(periods)}
    released = {(c, t): v + rng.normal(0, sd[c]) for (c, t), v in true.items()}
    rows = []
    for i, origin in enumerate(periods[:-1]):
        if i < 3:
            continue
        for h in HORIZONS:
            if i + h >= months:
                continue
            target = periods[i + h]
            for c in codes:
                rows.append((c, origin, target, h, "federated_dp", true[(c, target)] + rng.normal(0, 0.005),
                             released[(c, target)], True))
                rows.append((c, origin, target, h, "trailing_mean", released[(c, origin)], released[(c, target)], True))
    last = periods[-1]
    now = pd.Period(last, "M")
    current = {}
    for h in HORIZONS:
        target = str(now + h)
        for c in codes:
            level = np.mean([released[(c, p)] for p in periods[-3:]])
            guess = true[(c, last)] + slope[c] * h + (-0.15 if c.endswith("00") else 0.0)
            current[(c, h)] = (level, guess)
            rows.append((c, last, target, h, "federated_dp", guess, np.nan, False))
            rows.append((c, last, target, h, "trailing_mean", level, np.nan, False))
            rows.append((c, last, target, h, "persistence", released[(c, last)], np.nan, False))
    frame = pd.DataFrame(rows, columns=["area_code", "origin", "target", "horizon", "model", "prediction", "truth",
                                        "held_out"])
    frame["lo"], frame["hi"] = np.nan, np.nan
    folder = run_dir / "forecast"
    folder.mkdir(exist_ok=True)   # write_run may have made it (its own forecast files): replaced below
    frame.to_csv(folder / "predictions.csv", index=False)
    _warnings(folder, current, sd)
    est, lo, hi = skill
    (folder / "skill.json").write_text(json.dumps({
        "horizons": list(HORIZONS), "configured_horizon": 3, "label_units": "Leefbaarometer points",
        "evaluation": {"kind": "rolling-origin x held-out areas", "origins": periods[3:-1], "folds": 5, "dp_draws": 1},
        "rows": [{"model": "federated_dp", "horizon": 3, "data": "dp", "epsilon": 3.0, "r2": 0.9, "mae": 0.03,
                  "n": 1000, "skill": est, "skill_lo": lo, "skill_hi": hi, "r2_sd": None}],
        "best_naive": {str(h): "trailing_mean" for h in HORIZONS},
        "gate": {"horizon": 3, "releasable": lo > 0, "skill": est, "skill_lo": lo, "skill_hi": hi,
                 "verdict_nl": "Het model voorspelt niet beter dan de naïeve voorspelling." if lo <= 0 else "Vrijgegeven.",
                 "verdict_en": "The model does not beat the naive forecast." if lo <= 0 else "Released."},
        "warning": {"horizon": 3}}))
    (run_dir / "releases").mkdir(exist_ok=True)
    pd.DataFrame([(c, p, "incidents per 1,000", 20 + rng.normal(0, 3), 2.5) for c in codes for p in periods[-6:]],
                 columns=["area_code", "period", "series", "value", "noise_sd"]).to_csv(
        run_dir / "releases" / "police.csv", index=False)
    (run_dir / "proposal.json").write_text(json.dumps({"run_name": run_dir.name, "bundle_hash": "ab" * 32}))
    _drivers(run_dir, codes, periods, released, rng)
    return run_dir


def _drivers(run_dir: Path, codes: list[str], periods: list[str], released: dict, rng) -> None:
    """forecast/drivers.csv as a vertical run's forecast writes it, from this run's released label and one
    partner feature (a ridge model: the artefact's maker does not depend on the model kind)."""
    from server.forecast.evaluate import Learned
    from server.forecast.models import Ridge
    from server.forecast.panel import Panel
    from server.forecast.run import ForecastConfig
    from server.forecast.sensitivity import driver_table, write_drivers

    label = Panel(tuple(codes), tuple(periods), np.array([[released[(c, p)] for p in periods] for c in codes]), True)
    burglary = np.cumsum(rng.normal(0, 1, (len(codes), len(periods))), axis=1)
    partners = {"police": {"safety.burglary_per_1000": Panel(tuple(codes), tuple(periods), burglary, True)}}
    cfg = ForecastConfig(horizons=(3,), configured_horizon=3, folds=3)
    write_drivers(run_dir, driver_table(label, partners, cfg, Learned(("history", "police"), lambda w, s: Ridge(seed=s))))


def _warnings(folder: Path, current: dict, sd: dict) -> None:
    rows = []
    for (c, h), (level, guess) in current.items():
        if h != 3:
            continue
        change, half = guess - level, 1.645 * np.sqrt(2) * sd[c] + 0.02
        rows.append({"horizon": h, "area_code": c, "level": level, "predicted": guess, "change": change,
                     "change_lo": change - half, "change_hi": change + half, "beyond_noise": abs(change) > half,
                     "naive_change": 0.0})
    w = pd.DataFrame(rows)
    falls = w[w["beyond_noise"] & (w["change"] < 0)]["change"].rank(method="first")
    w["model_rank"] = falls.reindex(w.index).astype("Int64")
    w["naive_rank"] = w["level"].rank(method="first").astype("Int64")
    w.to_csv(folder / "warnings.csv", index=False)


def write_postcodes(path: Path) -> Path:
    """A test postcode table (not real postcodes): 6431 -> two buurten of wijk 12, 6411 -> one of wijk 33."""
    path.write_text("postcode,area_code\n6431,BU09171200\n6431,BU09171201\n6411 AB,BU09173300\n", encoding="utf-8")
    return path
