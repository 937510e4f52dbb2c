"""A small completed vertical run over Heerlen's real buurt codes, for the colleague's benchmark and tests.

The label as released runs 24 months (2019-01 to 2020-12) with known monthly noise; two changes are
planted: Vrieheide (BU09172004) falls by 0.30 from 2020-06 on (beyond the noise), Passart (BU09172100) moves
by 0.01 (inside it). The forecast for Vrieheide falls beyond its interval. `forecast=True` adds the
forecast artefacts of ARTEFACTS (forecast/skill.json, predictions.csv, warnings.csv) at horizons 1, 3, 6 and
12 with the gate `releasable`; `actions=True` an action log. Privacy reports come from real ledgers
(`dp_accounting.privacy_report`); the model is a real block model (untrained) with its inputs, so drivers work.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from dp_accounting import PrivacyLedger, Release, privacy_report
from federation.blocks import block_widths
from federation.config import compose, to_container
from federation.dataset import Examples, forecast_horizons
from federation.model import ModelSpec, build_model
from server.report.areas import boundaries
from server.run_record import INPUTS_FILE, write_examples

SUPPRESSED = ("BU09171001", "BU09172401", "BU09173302", "BU09173903")
FALLING, FLAT = "BU09172004", "BU09172100"
MONTHS = tuple(pd.period_range("2019-01", "2020-12", freq="M").astype(str))
HORIZONS = (1, 3, 6, 12)
NOISE = 0.03
PARTNERS = {"police": ("incidents", 1.4), "municipality": ("enquete", 1.1), "buurtteams": ("casussen", 1.4)}


def _report(folder: Path, partner: str, table: str, sigma: float, run: str) -> dict:
    with PrivacyLedger(folder / f".{partner}.sqlite", create=True) as ledger:
        ledger.record(Release(mechanism="gaussian", noise_multiplier=sigma, sample_rate=1.0, steps=1,
                              unit=f"one person, table {table}", run_id=f"{run}#1", round=0, kind="dp-aggregate",
                              table=table, sensitivity=1.0))
        return privacy_report(ledger, 1e-5).to_dict()


def _next(month: str, by: int) -> str:
    return str(pd.Period(month, freq="M") + by)


def write_run(run_dir: Path, forecast: bool = False, releasable: bool = True, actions: bool = False,
              seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    codes = sorted(c for c in boundaries() if c not in SUPPRESSED)
    base = dict(zip(codes, rng.uniform(3.8, 4.4, len(codes))))
    truth = {(a, m): base[a] - (0.30 if a == FALLING and m >= "2020-06" else 0.0)
             + (0.01 if a == FLAT and m >= "2020-06" else 0.0) for a in codes for m in MONTHS}
    label = {k: v + rng.normal(0, NOISE) for k, v in truth.items()}
    run_dir.mkdir(parents=True)
    cfg = to_container(compose("config", ["federation=heerlen"]))
    ahead = forecast_horizons(cfg["federation"]["label"])[1]   # a held-out row: its origin, the label `ahead` later
    held = pd.DataFrame([(a, _next(m, -ahead), label[(a, m)]) for a in codes for m in MONTHS],
                        columns=["area_code", "period", "y_dp"])
    held["pred"] = held["y_dp"] + rng.normal(0, NOISE, len(held))
    held["fold"] = held["area_code"].map({c: i % 5 for i, c in enumerate(codes)})
    held.to_csv(run_dir / "holdout_predictions.csv", index=False)
    latest = MONTHS[-1]
    change = {a: (-0.25 if a == FALLING else rng.normal(0, 0.01)) for a in codes}
    pred = pd.DataFrame({"area_code": codes, "period": latest, "predicted_period": _next(latest, ahead),
                         "predicted_liveability": [round(label[(a, latest)] + change[a], 4) for a in codes],
                         "current_liveability": [round(label[(a, latest)], 4) for a in codes]})
    pred.to_csv(run_dir / "predictions.csv", index=False)
    (run_dir / "config.json").write_text(json.dumps(cfg))
    (run_dir / "status.json").write_text(json.dumps({"state": "completed"}))
    (run_dir / "evaluation.json").write_text(json.dumps({"label": "dp_release", "holdout_areas": codes}))
    (run_dir / "privacy").mkdir()
    for partner, (table, sigma) in PARTNERS.items():
        report = _report(run_dir / "privacy", partner, table, sigma, run_dir.name)
        (run_dir / "privacy" / f"{partner}.json").write_text(json.dumps(report))
    order = ("safety", "context", "social", "care")
    spec = ModelSpec.from_widths(block_widths(order), embed_dim=8, hidden=16, head_hidden=16)
    model = build_model(spec, seed=seed)
    torch.save({"state_dict": model.state_dict(), "spec": {"blocks": list(order), "embed_dim": 8, "hidden": 16,
                                                           "head_hidden": 16}}, run_dir / "model.pt")
    x = rng.normal(0, 1, (len(codes), spec.input_width)).astype(np.float32)
    write_examples(Examples(pred[["area_code", "period"]], order, x, np.ones((len(codes), 4), np.float32), None),
                   run_dir / INPUTS_FILE)
    if forecast:
        _forecast(run_dir, codes, label, change, releasable, rng)
    if actions:
        _actions(run_dir)
    return run_dir


def _forecast(run_dir: Path, codes: list[str], label: dict, change: dict, releasable: bool, rng) -> None:
    """forecast/ in the format of ARTEFACTS.md: the current forecast at each horizon, warnings, skill."""
    latest = MONTHS[-1]
    rows, warn = [], []
    for h in HORIZONS:
        for a in codes:
            level = float(np.mean([label[(a, m)] for m in MONTHS[-3:]]))
            p = level + change[a] * min(h, 3) / 1.0
            half = 0.08 + 0.01 * h
            rows.append((a, latest, _next(latest, h), h, "federated_dp", round(p, 4), round(p - half, 4),
                         round(p + half, 4), "", "false"))
            rows.append((a, latest, _next(latest, h), h, "persistence", round(label[(a, latest)], 4), "", "", "",
                         "false"))
            warn.append([h, a, round(level, 4), round(p, 4), round(p - level, 4), round(p - level - half, 4),
                         round(p - level + half, 4), (p - level + half) < 0 or (p - level - half) > 0,
                         round(label[(a, latest)] - level, 4)])
    frame = pd.DataFrame(rows, columns=["area_code", "origin", "target", "horizon", "model", "prediction", "lo",
                                        "hi", "truth", "held_out"])
    (run_dir / "forecast").mkdir()
    frame.to_csv(run_dir / "forecast" / "predictions.csv", index=False)
    w = pd.DataFrame(warn, columns=["horizon", "area_code", "level", "predicted", "change", "change_lo",
                                    "change_hi", "beyond_noise", "naive_change"])
    w["model_rank"] = ""
    w["naive_rank"] = ""
    for h in HORIZONS:
        mine = w[(w["horizon"] == h) & w["beyond_noise"] & (w["change"] < 0)].sort_values("change")
        w.loc[mine.index, "model_rank"] = range(1, len(mine) + 1)
        naive = w[(w["horizon"] == h) & (w["naive_change"] < 0)].sort_values("naive_change")
        w.loc[naive.index, "naive_rank"] = range(1, len(naive) + 1)
    w.to_csv(run_dir / "forecast" / "warnings.csv", index=False)
    skill = 0.12 if releasable else -0.03
    gate = {"horizon": 3, "releasable": releasable, "skill": skill, "skill_lo": skill - 0.08, "skill_hi": skill + 0.08,
            "verdict_nl": "", "verdict_en": ""}
    (run_dir / "forecast" / "skill.json").write_text(json.dumps({
        "horizons": list(HORIZONS), "configured_horizon": 3, "label_units": "Leefbaarometer points",
        "evaluation": {"kind": "rolling-origin x held-out areas", "origins": [latest], "folds": 5, "dp_draws": 1},
        "rows": [], "best_naive": {"3": "trailing_mean"}, "gate": gate, "warning": {}}))


def _actions(run_dir: Path) -> None:
    (run_dir / "actions.yaml").write_text(
        "# The municipality's action log (public, no personal data).\n"
        "actions:\n"
        "  - action: Extra schoonmaakrondes en verlichting in de openbare ruimte\n"
        f"    area: {FALLING}\n    start: 2020-03\n    end: 2020-09\n    status: afgerond\n"
        "    categories: [openbare ruimte]\n"
        "  - action: Buurtpreventie-app en spreekuur wijkagent\n"
        "    area: WK091731\n    start: 2019-09\n    status: lopend\n    categories: [veiligheid]\n",
        encoding="utf-8")
