"""A horizontal run's outputs for the report: only what the run's records hold, all of it released.

A horizontal run leaves the released model (`model.pt`), the nodes' noised held-out sums (`heldout.json`: the
global model's R² on the held-out fold's areas, each node's sums a charged DP release) and each node's privacy
report. The coordinator holds no node's features or labels, so the report shows no per-area prediction of a
horizontal run and runs no membership audit (that needs the training rows, which never leave the nodes: a node
runs it on its own premises); nothing here reads a node directory, so nothing exact enters the report.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from server.report.drivers import load_model
from server.report.inputs import ReportInputError, RunOutputs, privacy_reports, read_json

PREDICTION_COLUMNS = ["area_code", "period", "predicted_period", "predicted_liveability", "current_liveability"]


def read_horizontal(run_dir: Path, config: dict[str, Any], status: dict[str, Any]) -> RunOutputs:
    model_path = run_dir / "model.pt"
    if not model_path.is_file():
        raise ReportInputError(f"{model_path}: file not found (a horizontal run writes its released model there)")
    heldout_path = run_dir / "heldout.json"
    heldout = read_json(heldout_path) if heldout_path.is_file() else None
    if heldout is not None and not isinstance(heldout, dict):
        raise ReportInputError(f"{heldout_path}: not a held-out evaluation (a JSON object)")
    empty = pd.DataFrame(columns=["area_code", "period", "y", "pred"])
    outputs = RunOutputs(run_dir, run_dir.name, "horizontal", config, status, pd.DataFrame(columns=PREDICTION_COLUMNS),
                         empty, privacy_reports(run_dir), "each node's own label", members=None)
    outputs.model, outputs.dp_heldout = load_model(model_path), heldout
    outputs.sources = [model_path, run_dir / "privacy"] + ([heldout_path] if heldout is not None else [])
    return outputs
