"""The run's forecast beside the naive forecast: skill, the gate on skill, and changes beyond the noise.

A vertical run that forecasts writes `forecast/skill.json`, `forecast/predictions.csv` and
`forecast/warnings.csv` (their format: the run's forecast artefacts). The report reads them here:
- the gate on skill: at the configured horizon, the federated model's skill over the best naive forecast
  (1 - MSE(model) / MSE(best naive), with a 90% interval from resampling whole areas) must have its
  interval's lower end above `forecast.min_skill_lo`; otherwise the model is NOT RELEASABLE and the naive
  forecast is the better guide;
- per area, the model's forecast, the naive forecast beside it, and the predicted change against the
  area's recent level with its interval: a change whose interval holds 0 is "no change beyond the noise";
- the warning list (areas expected to worsen most) only where the model has skill, else the naive ranking.
Only rows computed from releases (`data: dp`) are read: exact-data rows are for benchmarks only.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from server.forecast.gate import no_change_text, texts as forecast_texts
from server.report.inputs import ReportInputError, check_rows, numeric_columns, read_json
from server.languages import shown
from server.report.lang import number, say, text

FORECAST_DIR = "forecast"
MODEL = "federated_dp"


@dataclass(frozen=True)
class SkillRow:
    model: str
    horizon: int
    r2: float
    mae: float
    n: int
    skill: float | None
    skill_lo: float | None
    skill_hi: float | None
    epsilon: float | None


@dataclass
class Forecast:
    """The forecast artefacts of a run, read and checked."""

    horizon: int                      # the configured horizon (the gate's)
    horizons: tuple[int, ...]
    units: str
    rows: list[SkillRow]              # released-data rows only
    best_naive: dict[int, str]
    areas: pd.DataFrame               # per area at the configured horizon, current origin (see `area_view`)
    warnings: pd.DataFrame            # warnings.csv at the configured horizon
    evaluation: dict[str, Any]

    def row(self, model: str, horizon: int | None = None) -> SkillRow | None:
        h = self.horizon if horizon is None else horizon
        return next((r for r in self.rows if r.model == model and r.horizon == h), None)

    @property
    def gate_row(self) -> SkillRow | None:
        return self.row(MODEL)

    @property
    def naive_name(self) -> str:
        return self.best_naive.get(self.horizon, "persistence")

    def releasable(self, min_skill_lo: float = 0.0) -> bool:
        row = self.gate_row
        return row is not None and row.skill_lo is not None and row.skill_lo > min_skill_lo


def _num(value: Any) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(out) else out


def _csv(path: Path, required: tuple[str, ...], numbers: tuple[str, ...] = (),
         optional: tuple[str, ...] = ()) -> pd.DataFrame:
    """A forecast CSV, checked: every row as long as the header (a file cut off mid-row is refused naming the
    line), the `required` columns present, `numbers` a number on every row, `optional` a number or empty."""
    if not path.is_file():
        raise ReportInputError(f"{path}: file not found (the run's forecast artefacts are incomplete)")
    check_rows(path)
    try:
        frame = pd.read_csv(path, dtype={"area_code": str, "origin": str, "target": str, "model": str})
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as err:
        raise ReportInputError(f"{path}: not a readable CSV ({str(err).splitlines()[0]})") from None
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise ReportInputError(f"{path}: column '{missing[0]}' is missing")
    return numeric_columns(path, frame, numbers, optional)


def _lacking(path: Path, what: str, have: set[str], areas: list[str]) -> None:
    """One error naming the file and the areas it holds no `what` for (a file cut off at a row boundary)."""
    gone = [a for a in areas if a not in have]
    if gone:
        shown = ", ".join(gone[:5]) + (f" and {len(gone) - 5} more" if len(gone) > 5 else "")
        raise ReportInputError(f"{path}: no {what} for {len(gone)} of the {len(areas)} predicted areas ({shown}); "
                               "the file is incomplete (cut off?)")


def _flag(series: pd.Series) -> pd.Series:
    return series.astype(str).str.strip().str.lower().isin(("true", "1", "yes"))


def read_forecast(run_dir: Path, areas: list[str] | None = None) -> Forecast | None:
    """The run's forecast artefacts, or None when the run wrote none (a run of an earlier version).

    Checked where they are read: a CSV cut off mid-row is refused naming the line, a cell that must be a number
    naming line and column; `areas` (the run's predicted areas; default: every area either file has at the
    configured horizon) must each have the model's forecast and the best naive forecast at the current origin and a row of
    warnings.csv, else one error names the file and the areas it lacks: a page with the naive forecast missing
    for some areas would contradict its own verdict."""
    folder = Path(run_dir) / FORECAST_DIR
    if not (folder / "skill.json").is_file():
        return None
    skill = read_json(folder / "skill.json")
    try:
        horizon = int(skill["configured_horizon"])
        horizons = tuple(int(h) for h in skill["horizons"])
        rows = [SkillRow(str(r["model"]), int(r["horizon"]), float(r["r2"]), float(r["mae"]), int(r.get("n") or 0),
                         _num(r.get("skill")), _num(r.get("skill_lo")), _num(r.get("skill_hi")), _num(r.get("epsilon")))
                for r in skill["rows"] if str(r.get("data", "dp")) == "dp"]
        best = {int(h): str(m) for h, m in (skill.get("best_naive") or {}).items()}
    except (KeyError, TypeError, ValueError) as err:
        raise ReportInputError(f"{folder / 'skill.json'}: not a forecast skill file ({err!r})") from None
    predictions = _csv(folder / "predictions.csv",
                       ("area_code", "origin", "target", "horizon", "model", "prediction", "lo", "hi", "truth"),
                       ("horizon", "prediction"), ("lo", "hi", "truth"))
    warnings = _csv(folder / "warnings.csv", ("horizon", "area_code", "level", "predicted", "change", "change_lo",
                                              "change_hi", "beyond_noise", "model_rank", "naive_change", "naive_rank"),
                    ("horizon",), ("level", "predicted", "change", "change_lo", "change_hi", "model_rank",
                                   "naive_change", "naive_rank"))
    warnings = warnings[warnings["horizon"] == horizon].copy()
    warnings["beyond_noise"] = _flag(warnings["beyond_noise"])
    forecast = Forecast(horizon, horizons, str(skill.get("label_units", "")), rows, best,
                        pd.DataFrame(), warnings, dict(skill.get("evaluation") or {}))
    forecast.areas = area_view(predictions, warnings, horizon, forecast.naive_name)
    expected = sorted(set(areas) if areas is not None else set(forecast.areas["area_code"].astype(str)))
    _lacking(folder / "warnings.csv", f"row at horizon {horizon}", set(warnings["area_code"].astype(str)), expected)
    origin = current_origin(predictions, horizon)
    start = f"from origin {origin}" if origin else "beyond the data (it holds no row without a truth at that horizon)"
    for name, column in ((MODEL, "forecast"), (forecast.naive_name, "naive")):
        have = set(forecast.areas.loc[forecast.areas[column].notna(), "area_code"].astype(str))
        _lacking(folder / "predictions.csv", f"forecast '{name}' at horizon {horizon} {start}", have, expected)
    return forecast


def current_origin(predictions: pd.DataFrame, horizon: int) -> str | None:
    """The origin of the forecast beyond the data at `horizon`: the latest one of the rows without a truth."""
    p = predictions[(predictions["horizon"] == horizon) & predictions["truth"].isna()]
    return str(p["origin"].astype(str).max()) if len(p) else None


def area_view(predictions: pd.DataFrame, warnings: pd.DataFrame, horizon: int, naive: str) -> pd.DataFrame:
    """Per area at the current origin (the forecast beyond the data): the model's forecast and interval, the
    best naive forecast, and the change against the area's level with its interval and whether it lies
    beyond the noise (a change whose interval holds 0 never is)."""
    p = predictions[pd.to_numeric(predictions["horizon"], errors="coerce") == horizon]
    p = p[p["truth"].isna() | (p["truth"].astype(str).str.strip() == "")]
    if len(p):
        p = p[p["origin"].astype(str) == p["origin"].astype(str).max()]
    model = p[p["model"] == MODEL].drop_duplicates("area_code").set_index("area_code")
    base = p[p["model"] == naive].drop_duplicates("area_code").set_index("area_code")
    w = warnings.drop_duplicates("area_code").set_index("area_code")
    codes = sorted(set(model.index) | set(base.index) | set(w.index))
    out = pd.DataFrame({"area_code": codes})
    out["target"] = [str(model.loc[c, "target"]) if c in model.index else
                     (str(base.loc[c, "target"]) if c in base.index else "") for c in codes]
    for column, frame, source in (("forecast", model, "prediction"), ("forecast_lo", model, "lo"),
                                  ("forecast_hi", model, "hi"), ("naive", base, "prediction"),
                                  ("level", w, "level"), ("change", w, "change"), ("change_lo", w, "change_lo"),
                                  ("change_hi", w, "change_hi"), ("naive_change", w, "naive_change"),
                                  ("model_rank", w, "model_rank"), ("naive_rank", w, "naive_rank")):
        values = pd.to_numeric(frame[source], errors="coerce") if source in frame else pd.Series(dtype=float)
        out[column] = [float(values.get(c, np.nan)) for c in codes]
    out["beyond_noise"] = [beyond_noise(*row) for row in zip(out["change"], out["change_lo"], out["change_hi"])]
    return out


def beyond_noise(change: float, lo: float, hi: float) -> bool:
    """A change is a change only when its whole interval lies on one side of 0 (an unknown interval: never)."""
    if any(v is None or not np.isfinite(v) for v in (change, lo, hi)):
        return False
    return bool(lo > 0 or hi < 0)


def change_words(change: float, lo: float, hi: float) -> list[tuple[str, str]]:
    """The change as people read it, Dutch first: with its interval, or "no change beyond the noise"."""
    if not beyond_noise(change, lo, hi):
        return [(code, no_change_text(code)) for code in shown()]
    return [(code, text(code, "change_beyond", change=number(code, change, "+.3f"), lo=number(code, lo, "+.3f"),
                        hi=number(code, hi, "+.3f"))) for code in shown()]


def verdict_words(forecast: Forecast | None, min_skill_lo: float = 0.0) -> list[tuple[str, str]]:
    """The gate's verdict on skill in every language, Dutch first."""
    if forecast is None or forecast.gate_row is None or forecast.gate_row.skill is None:
        return say("gate_missing")
    row = forecast.gate_row
    key = "gate_passed" if forecast.releasable(min_skill_lo) else "gate_refused"

    def values(code: str) -> dict[str, Any]:
        show = lambda v: "?" if v is None else number(code, v, "+.3f")   # noqa: E731
        return {"horizon": forecast.horizon, "skill": show(row.skill), "lo": show(row.skill_lo),
                "hi": show(row.skill_hi)}

    return [(code, text(code, key, naive=_naive_name(code, forecast.naive_name), **values(code)))
            for code in shown()]


def _naive_name(code: str, model: str) -> str:
    """The naive forecast's name as the gate says it (`configs/lang/forecast`: one place for it)."""
    return str(forecast_texts()[code]["naive_names"].get(model, model))


def gate_check_text(forecast: Forecast | None, settings: Mapping[str, Any]) -> tuple[bool, str]:
    """Whether the gate on skill passes, and what it measured (English, for the gate's table and the CLI)."""
    limit = float(settings.get("min_skill_lo", 0.0))
    if forecast is None:
        return not bool(settings.get("require", True)), ("the run wrote no forecast artefacts (forecast/skill.json): "
                                                         "the model was never scored against the naive forecast")
    row = forecast.gate_row
    if row is None or row.skill is None:
        return False, f"no skill of the federated model at the configured horizon ({forecast.horizon})"
    lo = "unknown" if row.skill_lo is None else f"{row.skill_lo:+.3f}"
    hi = "unknown" if row.skill_hi is None else f"{row.skill_hi:+.3f}"
    return forecast.releasable(limit), (f"skill over the best naive forecast ({forecast.naive_name}) at horizon "
                                        f"{forecast.horizon}: {row.skill:+.3f}, 90% interval {lo} to {hi}; its lower "
                                        f"end must be above {limit:g}")
