"""A small finished vertical run for report tests, over Heerlen's real buurt codes (four suppressed).

Predictions are the label plus known noise, so the intervals, the fairness audit and the gate can be
checked against what was put in; `bias_for` adds a bias to the areas of one public-statistics group. The
privacy reports come from a real privacy ledger through `dp_accounting.privacy_report`.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from dp_accounting import PrivacyLedger, Release, privacy_report
from federation.config import compose, to_container
from federation.dataset import Examples
from federation.blocks import block_widths
from federation.model import ModelSpec, build_model
from server.report.areas import boundaries
from server.run_record import INPUTS_FILE, write_examples

SUPPRESSED = tuple(sorted(boundaries())[i] for i in (1, 20, 35, 50))
PARTNERS = {"police": 1.4, "municipality": 1.1, "buurtteams": 1.4}


def ledger_report(folder: Path, partner: str, sigma: float) -> dict:
    """A node's privacy report as `privacy_report` computes it from a ledger holding one release."""
    with PrivacyLedger(folder / f"{partner}.sqlite", create=True) as ledger:
        ledger.record(Release(mechanism="gaussian", noise_multiplier=sigma, sample_rate=1.0, steps=1,
                              unit=f"one person, table {partner}_records", run_id="fixture#1", round=0,
                              kind="dp-aggregate", table=f"{partner}_records", sensitivity=1.0))
        return privacy_report(ledger, 1e-5).to_dict()


def write_forecast(run_dir: Path, level: dict[str, float], origin: str, skill: tuple[float, float, float],
                   seed: int = 0, horizon: int = 3) -> Path:
    """The run's forecast artefacts (forecast/skill.json, predictions.csv, warnings.csv) at `horizon` from
    `origin`: the model's skill over the best naive forecast is `skill` = (estimate, low, high). Every third
    area's predicted change lies beyond its interval (a fall for even ones), the rest inside it."""
    rng = np.random.default_rng(seed)
    folder = run_dir / "forecast"
    folder.mkdir(parents=True, exist_ok=True)
    target = str(pd.Period(origin, freq="M") + horizon)
    rows, warnings = [], []
    for i, (code, now) in enumerate(sorted(level.items())):
        change = (-0.2 if i % 2 == 0 else 0.15) if i % 3 == 0 else rng.normal(0, 0.01)
        half = 0.05
        rows.append((code, origin, target, horizon, "federated_dp", now + change, now + change - 0.1,
                     now + change + 0.1, "", False))
        rows.append((code, origin, target, horizon, "trailing_mean", now, "", "", "", False))
        warnings.append({"horizon": horizon, "area_code": code, "level": now, "predicted": now + change,
                         "change": change, "change_lo": change - half, "change_hi": change + half,
                         "beyond_noise": abs(change) > half, "naive_change": rng.normal(0, 0.05)})
    w = pd.DataFrame(warnings)
    falls = w[w["beyond_noise"] & (w["change"] < 0)]["change"].rank(method="first")
    w["model_rank"] = falls.reindex(w.index).astype("Int64")
    w["naive_rank"] = w["naive_change"].rank(method="first").astype("Int64")
    w.to_csv(folder / "warnings.csv", index=False)
    pd.DataFrame(rows, columns=["area_code", "origin", "target", "horizon", "model", "prediction", "lo", "hi",
                                "truth", "held_out"]).to_csv(folder / "predictions.csv", index=False)
    est, lo, hi = skill
    model_rows = [{"model": m, "horizon": horizon, "data": "dp", "epsilon": 3.0 if m == "federated_dp" else None,
                   "r2": r2, "mae": 0.05, "n": 500, "skill": s, "skill_lo": l, "skill_hi": h, "r2_sd": None}
                  for m, r2, s, l, h in (("federated_dp", 0.9, est, lo, hi), ("pooled", 0.92, None, None, None),
                                         ("persistence", 0.85, None, None, None),
                                         ("trailing_mean", 0.88, None, None, None))]
    model_rows.append({**model_rows[0], "data": "exact", "r2": 0.99, "skill": 0.9, "skill_lo": 0.8, "skill_hi": 0.95})
    (folder / "skill.json").write_text(json.dumps({
        "horizons": [1, horizon], "configured_horizon": horizon, "label_units": "Leefbaarometer points",
        "evaluation": {"kind": "rolling-origin x held-out areas", "origins": [origin], "folds": 5, "dp_draws": 1},
        "rows": model_rows, "best_naive": {str(horizon): "trailing_mean"},
        "gate": {"horizon": horizon, "releasable": lo > 0, "skill": est, "skill_lo": lo, "skill_hi": hi}}))
    return folder


def write_run(run_dir: Path, seed: int = 0, noise: float = 0.03, months: int = 6,
              bias_for: tuple[str, str, float] | None = None,
              skill: tuple[float, float, float] | None = (0.2, 0.1, 0.3)) -> Path:
    """The files a completed vertical run leaves; `bias_for=(grouping, group, points)` biases one group;
    `skill`: the forecast's skill over the naive forecast (None: the run wrote no forecast artefacts)."""
    rng = np.random.default_rng(seed)
    codes = sorted(c for c in boundaries() if c not in SUPPRESSED)
    periods = pd.period_range("2020-05", periods=months, freq="M").astype(str)
    level = dict(zip(codes, rng.uniform(3.8, 4.4, len(codes))))
    rows = pd.DataFrame([(a, p) for a in codes for p in periods], columns=["area_code", "period"])
    rows["y_dp"] = rows["area_code"].map(level) + rng.normal(0, 0.02, len(rows))
    rows["pred"] = rows["y_dp"] + rng.normal(0, noise, len(rows))
    if bias_for is not None:
        from server.report.fairness import cbs_statistics, group_labels

        settings = to_container(compose("default", group="report"))["fairness"]
        groups = group_labels(cbs_statistics(settings), settings["groups"])[bias_for[0]]
        rows.loc[rows["area_code"].map(groups) == bias_for[1], "pred"] += bias_for[2]
    for partner in PARTNERS:
        rows[f"pred_alone_{partner}"] = rows["y_dp"] + rng.normal(0, 3 * noise, len(rows))
    run_dir.mkdir(parents=True)
    rows.to_csv(run_dir / "holdout_predictions.csv", index=False)
    latest = periods[-1]
    pred = pd.DataFrame({"area_code": codes, "period": latest, "predicted_period": "2020-11",
                         "predicted_liveability": [level[c] + rng.normal(0, noise) for c in codes],
                         "current_liveability": [level[c] for c in codes]})
    pred.to_csv(run_dir / "predictions.csv", index=False)
    if skill is not None:
        write_forecast(run_dir, {c: level[c] for c in codes}, latest, skill, seed)
    cfg = to_container(compose("config", ["federation=heerlen", "holdout_fold=0"]))
    (run_dir / "config.json").write_text(json.dumps(cfg))
    (run_dir / "status.json").write_text(json.dumps({"state": "completed"}))
    (run_dir / "evaluation.json").write_text(json.dumps({"label": "dp_release", "holdout_fold": 0}))
    (run_dir / "privacy").mkdir()
    for partner, sigma in PARTNERS.items():
        (run_dir / "privacy" / f"{partner}.json").write_text(json.dumps(ledger_report(run_dir.parent, partner, sigma)))
    order = ("safety", "context", "social", "care")
    spec = ModelSpec.from_widths(block_widths(order), embed_dim=8, hidden=16, head_hidden=16)
    model = build_model(spec, seed=seed)
    torch.save({"state_dict": model.state_dict(), "spec": {"blocks": list(order), "embed_dim": 8, "hidden": 16,
                                                           "head_hidden": 16}}, run_dir / "model.pt")
    x = rng.normal(0, 1, (len(codes), spec.input_width)).astype(np.float32)
    write_examples(Examples(pred[["area_code", "period"]], order, x, np.ones((len(codes), 4), np.float32), None),
                   run_dir / INPUTS_FILE)
    return run_dir
