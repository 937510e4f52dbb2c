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


def write_run(run_dir: Path, seed: int = 0, noise: float = 0.03, months: int = 6,
              bias_for: tuple[str, str, float] | None = None) -> Path:
    """The files a completed vertical run leaves; `bias_for=(grouping, group, points)` biases one group."""
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
