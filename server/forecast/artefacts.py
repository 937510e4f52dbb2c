"""Writers of RUN_DIR/forecast/{skill.json, predictions.csv, warnings.csv} (format: docs in ARTEFACTS, and
server/forecast/__init__.py). Each file is written to a temporary name and renamed, so a reader never sees
half a file; a frame missing a column is refused naming the file and the column."""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from server.forecast.warning import WARNING_COLUMNS

FORECAST_DIR = "forecast"
PREDICTION_COLUMNS = ["area_code", "origin", "target", "horizon", "model", "prediction", "lo", "hi", "truth",
                      "held_out"]
SKILL_KEYS = ("horizons", "configured_horizon", "label_units", "evaluation", "rows", "best_naive", "gate", "warning")


def _atomic(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _plain(value: Any) -> Any:
    """JSON-safe: numpy scalars as numbers, NaN and infinities as null."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def forecast_dir(run_dir: Path | str) -> Path:
    return Path(run_dir) / FORECAST_DIR


def write_skill(run_dir: Path | str, doc: Mapping[str, Any]) -> Path:
    """RUN_DIR/forecast/skill.json; `doc` must hold every key of SKILL_KEYS."""
    missing = [k for k in SKILL_KEYS if k not in doc]
    if missing:
        raise ValueError(f"{forecast_dir(run_dir) / 'skill.json'}: missing key(s) {', '.join(missing)}")
    return _atomic(forecast_dir(run_dir) / "skill.json", json.dumps(_plain(dict(doc)), indent=2) + "\n")


def write_columns(frame: pd.DataFrame, columns: list[str], path: Path) -> Path:
    """`frame`'s `columns`, in that order, as the CSV `path` (a missing column: a ValueError naming it)."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(missing)}")
    out = frame[columns].copy()
    for col in out.columns:
        if out[col].dtype == bool:
            out[col] = out[col].map({True: "true", False: "false"})
    return _atomic(path, out.to_csv(index=False, lineterminator="\n", float_format="%.6g"))


def write_predictions(run_dir: Path | str, frame: pd.DataFrame) -> Path:
    """RUN_DIR/forecast/predictions.csv (PREDICTION_COLUMNS; NaN cells empty)."""
    return write_columns(frame, PREDICTION_COLUMNS, forecast_dir(run_dir) / "predictions.csv")


def write_warnings(run_dir: Path | str, frame: pd.DataFrame) -> Path:
    """RUN_DIR/forecast/warnings.csv (WARNING_COLUMNS)."""
    return write_columns(frame, WARNING_COLUMNS, forecast_dir(run_dir) / "warnings.csv")


def write_all(run_dir: Path | str, doc: Mapping[str, Any], predictions: pd.DataFrame,
              warnings: pd.DataFrame) -> list[Path]:
    """All three files."""
    return [write_skill(run_dir, doc), write_predictions(run_dir, predictions), write_warnings(run_dir, warnings)]
