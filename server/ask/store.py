"""The released artefacts of one run, read once, as facts with their recipes.

Read: status.json, config.json, predictions.csv, holdout_predictions.csv (the label as released per area
and month, `y_dp`, keyed by its origin `period`, the configured horizon before it), releases/label.csv (the
label's whole released history, where the run kept it), privacy/<node>.json (each node's own privacy
report), and, when the run wrote them, forecast/skill.json, forecast/predictions.csv and
forecast/warnings.csv. Nothing else: no node directory, no raw record, nothing that costs privacy.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from federation.dataset import forecast_horizons
from federation.errors import ConfigError, PulseTwinError
from server.ask.dates import shift
from server.ask.facts import Fact, cell, hypot, interval, mean, se_mean
from server.report.intervals import conformal_quantile

HOLDOUT, PREDICTIONS = "holdout_predictions.csv", "predictions.csv"
RELEASED = "releases/label.csv"   # the label's whole released history, where the run kept it
F_SKILL, F_PRED, F_WARN = "forecast/skill.json", "forecast/predictions.csv", "forecast/warnings.csv"
MODEL = "federated_dp"


class AskInputError(PulseTwinError):
    """A run directory the colleague cannot read; the message names the file."""


def _csv(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path, dtype={"area_code": str, "period": str, "predicted_period": str, "origin": str,
                                        "target": str})
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as err:
        raise AskInputError(f"{path}: not a readable CSV ({str(err).splitlines()[0]})") from None


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        raise AskInputError(f"{path}: not valid JSON ({err})") from None


def _need(frame: pd.DataFrame, path: Path, columns: tuple[str, ...]) -> pd.DataFrame:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise AskInputError(f"{path}: column '{missing[0]}' is missing")
    return frame


@dataclass
class Level:
    """A mean of released monthly values and its interval (None where the noise cannot be estimated)."""

    centre: Fact
    lo: Fact | None
    hi: Fact | None
    se: Fact | None
    months: list[str]
    areas: list[str]


@dataclass
class Forecast:
    """One area's forecast at one horizon, as facts."""

    area: str
    origin: str
    target: str
    horizon: int
    prediction: Fact
    lo: Fact
    hi: Fact
    level: Fact | None            # the released level it starts from
    change: Fact | None
    change_lo: Fact | None
    change_hi: Fact | None
    source: str                   # the file the forecast was read from


@dataclass
class RunStore:
    run_dir: Path
    level_setting: float = 0.9
    status: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.run_dir = Path(self.run_dir)
        if not self.run_dir.is_dir():
            raise AskInputError(f"{self.run_dir}: no such run directory")
        path = self.run_dir / "status.json"
        if not path.is_file():
            raise AskInputError(f"{path}: file not found (not a run directory)")
        self.status = _json(path)
        if not isinstance(self.status, dict) or self.status.get("state") not in ("completed", "completed-with-refusals"):
            state = self.status.get("state") if isinstance(self.status, dict) else self.status
            raise AskInputError(f"{path}: the run did not complete (state {state!r}); the colleague answers from a "
                                "completed run only")
        self.config = _json(self.run_dir / "config.json") if (self.run_dir / "config.json").is_file() else {}
        if not (self.run_dir / PREDICTIONS).is_file() and not (self.run_dir / F_PRED).is_file():
            raise AskInputError(f"{self.run_dir / PREDICTIONS}: file not found (the run predicted nothing)")

    # --- identity ----------------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.run_dir.name

    @property
    def federation(self) -> dict:
        return self.config.get("federation") or {}

    @property
    def label_horizon(self) -> int:
        """The run's configured horizon (`label.horizon` of `label.horizons`, or an older run's `label.shift`):
        holdout_predictions.csv's `y_dp` is the label released that many months after the row's `period`."""
        label = self.federation.get("label") or {}
        if "horizons" not in label and "shift" not in label:
            return 1
        try:
            return forecast_horizons(label)[1]
        except ConfigError as err:
            raise AskInputError(f"{self.run_dir / 'config.json'}: {err}") from None

    @property
    def label_partner(self) -> str:
        return str((self.federation.get("label") or {}).get("partner", ""))

    @property
    def label_source(self) -> str:
        return str((self.federation.get("label") or {}).get("source", "dp_release"))

    @cached_property
    def privacy(self) -> dict[str, dict]:
        """Each node's privacy report with only the epsilons its release history gives (a stated figure that
        differs refuses, naming the file): the one reading the report and the twin use."""
        from server.report.inputs import ReportInputError
        from server.report.privacy import checked_reports

        try:
            return checked_reports(self.run_dir)
        except ReportInputError as err:
            raise AskInputError(str(err)) from None

    @property
    def nodes(self) -> tuple[str, ...]:
        return tuple(self.privacy) or tuple(self.federation.get("partners") or {})

    # --- the released label per area and month -----------------------------------------------------------
    @cached_property
    def predictions(self) -> pd.DataFrame | None:
        path = self.run_dir / PREDICTIONS
        if not path.is_file():
            return None
        return _need(_csv(path), path, ("area_code", "period", "predicted_period", "predicted_liveability"))

    @cached_property
    def holdout(self) -> pd.DataFrame | None:
        path = self.run_dir / HOLDOUT
        if not path.is_file():
            return None
        return _need(_csv(path), path, ("area_code", "period", "y_dp", "pred"))

    @cached_property
    def released(self) -> pd.DataFrame | None:
        """The label's released history (`releases/label.csv`: every released month, not only the held-out
        origins), where the run kept it."""
        path = self.run_dir / RELEASED
        if not path.is_file():
            return None
        return _need(_csv(path), path, ("area_code", "period", "value"))

    @property
    def label_file(self) -> str:
        """The file the released label is read from, for an answer's sources."""
        return RELEASED if self.released is not None else HOLDOUT

    @cached_property
    def cells(self) -> dict[tuple[str, str], Fact]:
        """(area, month) -> the label as released for that month, with the cell it comes from."""
        out: dict[tuple[str, str], Fact] = {}
        if self.released is not None:
            for area, period, y in zip(self.released["area_code"], self.released["period"], self.released["value"]):
                if pd.notna(y):
                    out[(area, period)] = cell(y, RELEASED, {"area_code": area, "period": period}, "value")
        if self.holdout is not None:
            ahead = self.label_horizon        # a held-out row's `period` is its origin; `y_dp` is `ahead` later
            for area, period, y in zip(self.holdout["area_code"], self.holdout["period"], self.holdout["y_dp"]):
                if pd.notna(y) and (area, shift(period, ahead)) not in out:
                    out[(area, shift(period, ahead))] = cell(y, HOLDOUT, {"area_code": area, "period": period},
                                                             "y_dp")
        pred = self.predictions
        if pred is not None and "current_liveability" in pred.columns:
            for area, period, y in zip(pred["area_code"], pred["period"], pred["current_liveability"]):
                if pd.notna(y) and (area, period) not in out:
                    out[(area, period)] = cell(y, PREDICTIONS, {"area_code": area, "period": period},
                                               "current_liveability")
        return out

    @cached_property
    def months(self) -> list[str]:
        found = sorted({m for _, m in self.cells})
        if not found and self.predictions is not None:
            found = sorted(set(self.predictions["period"]))
        return found

    @property
    def latest(self) -> str:
        if not self.months:
            raise AskInputError(f"{self.run_dir}: no released label in {HOLDOUT} or {PREDICTIONS}")
        return self.months[-1]

    @cached_property
    def areas(self) -> tuple[str, ...]:
        codes = {a for a, _ in self.cells}
        if self.predictions is not None:
            codes |= set(self.predictions["area_code"])
        return tuple(sorted(codes))

    def noise_sd(self, area: str) -> Fact | None:
        """The release noise of an area's monthly label: robust spread of its month-to-month differences."""
        if self.holdout is None and self.released is None:
            return None
        values = self._series.get(area)
        if values is None or len(values) < 4:
            return None
        diffs = np.diff(values)
        sd = 1.4826 * float(np.median(np.abs(diffs - np.median(diffs)))) / math.sqrt(2)
        file, column = (RELEASED, "value") if self.released is not None else (HOLDOUT, "y_dp")
        return Fact(sd, {"op": "noise_sd", "file": file, "where": {"area_code": area}, "column": column,
                         "order": "period"})

    @cached_property
    def _series(self) -> dict[str, np.ndarray]:
        """Each area's released label in month order (for its noise)."""
        source, column = (self.released, "value") if self.released is not None else (self.holdout, "y_dp")
        frame = source.dropna(subset=[column]).sort_values(["area_code", "period"])
        return {a: g[column].to_numpy(np.float64) for a, g in frame.groupby("area_code", sort=False)}

    def level(self, codes: tuple[str, ...], start: str, end: str) -> Level | None:
        """The mean released label of `codes` over months start..end, with its interval and the months used."""
        used = [(a, m) for a in codes for m in self.months if start <= m <= end and (a, m) in self.cells]
        if not used:
            return None
        sds = [self.noise_sd(a) for a, _ in used]
        centre = mean([self.cells[k] for k in used])
        months = sorted({m for _, m in used})
        areas = sorted({a for a, _ in used})
        if any(s is None for s in sds):
            return Level(centre, None, None, None, months, areas)
        se = se_mean([s for s in sds if s is not None])
        lo, hi = interval(centre, se, self.level_setting)
        return Level(centre, lo, hi, se, months, areas)

    def window(self, end: str, months: int) -> tuple[str, str]:
        """The `months` released months ending at `end` (clamped to the data)."""
        inside = [m for m in self.months if m <= end] or self.months[:1]
        last = inside[-1]
        first = next((m for m in self.months if m >= shift(last, -months + 1)), last)
        return first, last

    def change(self, codes: tuple[str, ...], start: str, end: str, months: int) -> dict[str, Any] | None:
        """The level over the window ending at `end` minus the one ending at `start`, with its interval."""
        a0, a1 = self.window(start, months)
        b0, b1 = self.window(end, months)
        before, after = self.level(codes, a0, a1), self.level(codes, b0, b1)
        if before is None or after is None or a1 >= b1:
            return None
        diff = after.centre - before.centre
        if before.se is None or after.se is None:
            return {"before": before, "after": after, "change": diff, "lo": None, "hi": None}
        lo, hi = interval(diff, hypot(before.se, after.se), self.level_setting)
        return {"before": before, "after": after, "change": diff, "lo": lo, "hi": hi}

    # --- forecasts -----------------------------------------------------------------------------------------
    @cached_property
    def skill(self) -> dict | None:
        path = self.run_dir / F_SKILL
        return _json(path) if path.is_file() else None

    @cached_property
    def forecast_rows(self) -> pd.DataFrame | None:
        path = self.run_dir / F_PRED
        if not path.is_file():
            return None
        return _need(_csv(path), path, ("area_code", "origin", "target", "horizon", "model", "prediction", "lo", "hi"))

    @cached_property
    def warnings(self) -> pd.DataFrame | None:
        path = self.run_dir / F_WARN
        if not path.is_file():
            return None
        return _need(_csv(path), path, ("horizon", "area_code", "level", "predicted", "change", "change_lo",
                                        "change_hi", "beyond_noise"))

    @property
    def horizons(self) -> tuple[int, ...]:
        if self.forecast_rows is not None:
            return tuple(sorted({int(h) for h in self.forecast_rows["horizon"]}))
        return (self.label_horizon,)

    @property
    def default_horizon(self) -> int:
        if self.skill and self.skill.get("configured_horizon"):
            return int(self.skill["configured_horizon"])
        return self.horizons[0] if self.label_horizon not in self.horizons else self.label_horizon

    @cached_property
    def conformal(self) -> Fact | None:
        if self.holdout is None or self.holdout.empty:
            return None
        residual = (self.holdout["y_dp"] - self.holdout["pred"]).abs().dropna().to_numpy(np.float64)
        q = conformal_quantile(residual, self.level_setting)
        if not math.isfinite(q):
            return None
        return Fact(q, {"op": "conformal", "file": HOLDOUT, "y": "y_dp", "pred": "pred", "level": self.level_setting})

    @cached_property
    def _current(self) -> dict[tuple[str, int], dict]:
        """(area, horizon) -> the model's current forecast row (no truth yet; the latest origin)."""
        rows = self.forecast_rows
        if rows is None or "truth" not in rows.columns:
            return {}
        mine = rows[(rows["model"] == MODEL) & rows["truth"].isna()].sort_values("origin")
        return {(r["area_code"], int(r["horizon"])): r for r in mine.to_dict("records")}

    @cached_property
    def _warned(self) -> dict[tuple[str, int], dict]:
        warn = self.warnings
        return {} if warn is None else {(r["area_code"], int(r["horizon"])): r for r in warn.to_dict("records")}

    def forecast(self, area: str, horizon: int) -> Forecast | None:
        """The current forecast (beyond the data) of one area at one horizon, with its interval and change."""
        rows = self.forecast_rows
        if rows is not None:
            row = self._current.get((area, horizon))
            if row is None:
                return None
            key = {"area_code": area, "origin": row["origin"], "horizon": str(int(row["horizon"])), "model": MODEL,
                   "target": row["target"]}
            if "held_out" in rows.columns:
                key["held_out"] = str(row["held_out"]).lower()
            pred, lo, hi = (cell(row[c], F_PRED, key, c) for c in ("prediction", "lo", "hi"))
            level = change = c_lo = c_hi = None
            w = self._warned.get((area, horizon))
            if w is not None:
                wk = {"area_code": area, "horizon": str(horizon)}
                level, change, c_lo, c_hi = (cell(w[c], F_WARN, wk, c) for c in ("level", "change", "change_lo",
                                                                                   "change_hi"))
            return Forecast(area, str(row["origin"]), str(row["target"]), horizon, pred, lo, hi, level, change,
                            c_lo, c_hi, F_PRED)
        pred = self.predictions
        if pred is None or horizon != self.label_horizon:
            return None
        mine = pred[pred["area_code"] == area]
        if mine.empty or pd.isna(mine.iloc[0]["predicted_liveability"]):
            return None
        row = mine.iloc[0]
        key = {"area_code": area, "period": row["period"]}
        p = cell(row["predicted_liveability"], PREDICTIONS, key, "predicted_liveability")
        q = self.conformal
        lo, hi = (p - q, p + q) if q is not None else (p, p)
        level = self.cells.get((area, row["period"]))
        change = c_lo = c_hi = None
        if level is not None:
            change = p - level
            c_lo, c_hi = (lo - level, hi - level) if q is not None else (change, change)
        return Forecast(area, str(row["period"]), str(row["predicted_period"]), horizon, p, lo, hi, level, change,
                        c_lo, c_hi, PREDICTIONS)

    @property
    def higher_is_better(self) -> bool:
        units = str((self.skill or {}).get("label_units", "")).lower()
        return "crime" not in units and "per 1,000" not in units

    @property
    def gate(self) -> dict | None:
        return (self.skill or {}).get("gate")

    def releasable(self, horizon: int) -> bool | None:
        """Whether the skill table lets the model's list be shown at this horizon: the gate's verdict at its
        horizon, elsewhere the model's skill interval above zero; None without a skill table or a row."""
        if self.skill is None:
            return None
        gate = self.gate or {}
        if gate and int(gate.get("horizon", -1)) == horizon:
            return bool(gate.get("releasable", False))
        rows = [r for r in self.skill.get("rows") or [] if r.get("model") == MODEL and int(r.get("horizon", -1)) == horizon
                and r.get("data", "dp") == "dp" and r.get("skill_lo") is not None]
        return float(rows[0]["skill_lo"]) > 0 if rows else None
