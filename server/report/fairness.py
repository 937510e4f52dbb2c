"""The fairness audit: errors and rankings compared across groups of areas formed by public statistics.

The groups come from public CBS area statistics (share of residents with a migration background, income,
share of social housing), read from the CBS file the synthetic generator is calibrated on, and used only
here: they are never features. Per grouping, fairlearn's MetricFrame computes on the held-out rows the
mean absolute error, the bias (mean of prediction minus label), the calibration error, and how much more
often the model puts a group's areas in the worst decile than the label does. The gate compares the
largest difference between groups with the thresholds of `configs/report/default.yaml`, and refuses only
when the evidence says the gap exceeds them: with a few held-out areas per group, a difference between group
means is mostly noise, so each gap carries an interval from resampling the areas within their groups, and
the gate judges the interval's lower end (a gap whose point estimate alone crosses the line is shown as a
caution, not hidden).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from federation.config import configs_dir
from federation.errors import ConfigError
from server.report import CBS_FILE

METRICS = ("mae", "bias", "calibration", "flag_excess")
THRESHOLD_OF = {"mae": "max_mae_gap", "bias": "max_bias_gap", "calibration": "max_calibration_gap",
                "flag_excess": "max_flag_excess"}
WORDS = {"mae": "mean absolute error", "bias": "bias (prediction minus label)",
         "calibration": "calibration error", "flag_excess": "extra share flagged in the worst decile"}


@dataclass
class GroupingResult:
    """One grouping of areas: the MetricFrame's table and the gaps the gate compares."""

    name: str
    label: str
    table: pd.DataFrame                       # one row per group: areas, rows, and each metric
    compared: list[str]                        # groups with enough held-out areas
    gaps: dict[str, float] = field(default_factory=dict)
    intervals: dict[str, tuple[float, float]] = field(default_factory=dict)   # per metric: resampled interval


@dataclass
class FairnessAudit:
    groupings: list[GroupingResult]
    areas_with_statistics: int
    note: str = ""


def cbs_statistics(settings: Mapping[str, Any]) -> pd.DataFrame:
    """The audit attributes per area code from the CBS file (one year), via the project's CBS reader."""
    from server.report.cbs import load_heerlen

    path = cbs_file(settings.get("cbs_path"))
    areas = load_heerlen(path, [int(settings["cbs_year"])])
    return pd.DataFrame({k: v[:, 0] for k, v in areas.attributes.items()}, index=pd.Index(areas.codes, name="area_code"))


def cbs_file(setting: Any) -> Path:
    """The CBS file of `fairness.cbs_path`: unset, the one shipped with the package (a checkout and an installed
    wheel read the same file); a relative path resolves against the report's configuration folder."""
    if setting in (None, ""):
        return CBS_FILE
    path = Path(str(setting)).expanduser()
    return path if path.is_absolute() else (configs_dir() / "report" / path).resolve()


def group_labels(stats: pd.DataFrame, groups: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """Equal-count groups over all the city's areas (e.g. income quintiles), per configured grouping."""
    out = pd.DataFrame(index=stats.index)
    for name, spec in groups.items():
        attribute, bins = str(spec["attribute"]), int(spec["bins"])
        if attribute not in stats.columns:
            raise ConfigError(f"configs/report: fairness.groups.{name}.attribute '{attribute}' is not one of "
                              f"{', '.join(stats.columns)}")
        names = [f"{i + 1} of {bins}" + (" (lowest)" if i == 0 else " (highest)" if i == bins - 1 else "")
                 for i in range(bins)]
        out[name] = pd.qcut(stats[attribute].rank(method="first"), bins, labels=names).astype(str)
    return out


def _metrics(y_cut: float, pred_cut: float) -> dict[str, Any]:
    """The per-group metric functions for MetricFrame (worst-decile cut-offs fixed city-wide)."""

    def mae(y: np.ndarray, p: np.ndarray) -> float:
        return float(np.mean(np.abs(np.asarray(p) - np.asarray(y))))

    def bias(y: np.ndarray, p: np.ndarray) -> float:
        return float(np.mean(np.asarray(p) - np.asarray(y)))

    def calibration(y: np.ndarray, p: np.ndarray) -> float:
        y, p = np.asarray(y), np.asarray(p)
        edges = np.quantile(p, np.linspace(0, 1, 6)) if len(p) >= 5 else np.array([p.min(), p.max()])
        which = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, max(len(edges) - 2, 0))
        return float(sum((which == b).mean() * abs(y[which == b].mean() - p[which == b].mean())
                         for b in np.unique(which)))

    def flag_excess(y: np.ndarray, p: np.ndarray) -> float:
        return float(np.mean(np.asarray(p) <= pred_cut) - np.mean(np.asarray(y) <= y_cut))

    return {"mae": mae, "bias": bias, "calibration": calibration, "flag_excess": flag_excess}


def _gaps(rows: pd.DataFrame, group: pd.Series, compared: list[str], metrics: Mapping[str, Any]) -> dict[str, float]:
    values = {}
    for g in compared:
        sub = rows[group.to_numpy() == g]
        values[g] = {m: metrics[m](sub["y"].to_numpy(), sub["pred"].to_numpy()) for m in METRICS}
    return gap_values(pd.DataFrame(values).T)


def gap_values(per_group: pd.DataFrame) -> dict[str, float]:
    """The gaps the gate compares, from one row of metrics per compared group: the spread of MAE, bias and
    calibration between groups, and the largest extra share flagged in any group."""
    gaps = {m: float(per_group[m].max() - per_group[m].min()) for m in ("mae", "bias", "calibration")}
    gaps["flag_excess"] = float(per_group["flag_excess"].abs().max())
    return gaps


def gap_intervals(rows: pd.DataFrame, group: pd.Series, compared: list[str], metrics: Mapping[str, Any],
                  level: float, draws: int, seed: int = 0) -> dict[str, tuple[float, float]]:
    """Each gap's interval at `level` from resampling whole areas (with replacement) within their groups:
    an area's months move together, so areas, not rows, are the independent units."""
    rng = np.random.default_rng(seed)   # reproducible report; no privacy rests on this
    members = {g: rows.loc[group.to_numpy() == g, "area_code"].unique() for g in compared}
    by_area = {a: idx for a, idx in rows.groupby("area_code").indices.items()}
    samples: dict[str, list[float]] = {m: [] for m in METRICS}
    for _ in range(draws):
        parts, labels = [], []
        for g, areas in members.items():
            for a in rng.choice(areas, size=len(areas), replace=True):
                parts.append(by_area[a])
                labels.append(np.full(len(by_area[a]), g, dtype=object))
        idx = np.concatenate(parts)
        for m, v in _gaps(rows.iloc[idx].reset_index(drop=True), pd.Series(np.concatenate(labels)),
                          compared, metrics).items():
            samples[m].append(v)
    tail = (1 - level) / 2
    return {m: (float(np.quantile(v, tail)), float(np.quantile(v, 1 - tail))) for m, v in samples.items()}


def audit(holdout: pd.DataFrame, groups: pd.DataFrame, settings: Mapping[str, Any]) -> FairnessAudit:
    """MetricFrame per grouping on the held-out rows of areas that have audit statistics."""
    from fairlearn.metrics import MetricFrame

    rows = holdout[holdout["area_code"].isin(groups.index)].reset_index(drop=True)
    if rows.empty:
        return FairnessAudit([], 0, "no held-out area has public audit statistics")
    metrics = _metrics(float(rows["y"].quantile(0.1)), float(rows["pred"].quantile(0.1)))
    minimum = int(settings["min_areas_per_group"])
    results = []
    for name, spec in settings["groups"].items():
        group = rows["area_code"].map(groups[name])
        frame = MetricFrame(metrics=metrics, y_true=rows["y"].to_numpy(), y_pred=rows["pred"].to_numpy(),
                            sensitive_features=group.rename(name))
        table = frame.by_group.copy()
        table.insert(0, "rows", group.value_counts().reindex(table.index).fillna(0).astype(int))
        table.insert(0, "areas", rows.groupby(group)["area_code"].nunique().reindex(table.index).fillna(0).astype(int))
        compared = [g for g in table.index if table.loc[g, "areas"] >= minimum]
        result = GroupingResult(name, str(spec.get("label", name)), table, compared)
        if len(compared) >= 2:
            result.gaps = gap_values(table.loc[compared])
            result.intervals = gap_intervals(rows, group, compared, metrics, float(settings["evidence_level"]),
                                             int(settings["resamples"]))
        results.append(result)
    return FairnessAudit(results, int(rows["area_code"].nunique()))
