"""Puts the report together: reads the run, computes each part, applies the gate, writes HTML and PNGs."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from federation.errors import ConfigError
from server.report import figures
from server.report.areas import Area, boundaries
from server.report.card import model_card
from server.report.drivers import drivers_per_area, run_drivers
from server.report.fairness import FairnessAudit, audit, audit_groups, cbs_statistics, contract_statistics
from server.report.forecast import Forecast, read_forecast, verdict_words
from server.report.gate import Check, failures, gate_checks, privacy_check, skill_check
from server.report.inputs import RunOutputs
from server.report.reading import read_run
from server.report.intervals import Intervals, conformal_intervals
from server.report.mia import MembershipAudit, membership_audit
from server.report.privacy import missing_partners, recompute
from server.report.receipt import Receipt, receipts
from server.report.settings import check_settings
from server.report.verdict import Verdict, default_baseline, verdict


@dataclass
class Report:
    run: RunOutputs
    settings: Mapping[str, Any]
    areas: pd.DataFrame                      # one row per area shown: code, name, prediction, interval, ...
    boundaries: list[Area]
    intervals: Intervals | None
    verdict: Verdict
    fairness: FairnessAudit | None
    mia: MembershipAudit | None
    receipts: list[Receipt]
    card: dict[str, list[str]]
    checks: list[Check]
    notes: list[str] = field(default_factory=list)
    forecast: Forecast | None = None
    skill_words: list[tuple[str, str]] = field(default_factory=list)   # the gate on skill, Dutch first
    missing_receipts: list[str] = field(default_factory=list)          # partners of the run without a privacy report
    figures: dict[str, Path] = field(default_factory=dict)

    @property
    def refused(self) -> list[Check]:
        return failures(self.checks)

    @property
    def releasable(self) -> bool:
        return not self.refused


def build_report(run_dir: Path, settings: Mapping[str, Any], baseline: Path | None = None) -> Report:
    check_settings(settings)   # one message naming a setting out of its range, before anything is read
    run = read_run(run_dir)
    notes: list[str] = []
    folder = Path(run.run_dir) / "privacy"
    checked = {name: recompute(report, folder / f"{name}.json", run.name) for name, report in run.privacy.items()}
    missing = missing_partners(run.status, run.config, run.privacy)
    unchecked = {name: c.why for name, c in checked.items() if c.epsilon is None}
    notes.extend(f"privacy: the privacy receipt of partner {p} is missing ({folder / (p + '.json')} not found): "
                 "the run holds no record of what left that node" for p in missing)
    notes.extend(f"privacy: {folder / (p + '.json')}: no epsilon printed, it cannot be recomputed from the release "
                 f"history the file lists ({why})" for p, why in unchecked.items())
    intervals = conformal_intervals(run.holdout, float(settings["intervals"]["level"])) if len(run.holdout) else None
    baseline = baseline if baseline is not None else default_baseline(run.run_dir, run.config)
    judged = verdict(run, baseline, float(settings["min_r2"]))
    predicted = sorted(set(run.predictions["area_code"].astype(str)))
    forecast = read_forecast(run.run_dir, predicted) if run.topology == "vertical" else None
    shapes = boundaries()
    areas = _area_table(run, shapes, intervals, forecast,
                        float((settings.get("forecast") or {}).get("min_skill_lo", 0.0)))
    label_partner = str((run.config.get("federation") or {}).get("label", {}).get("partner", ""))
    found = drivers_per_area(run_drivers(run.run_dir, run.config), {**run.partners_of_block, "history": label_partner}) \
        if run.topology != "horizontal" else {}
    if found:
        areas["drivers"] = [found.get(c, {}).get("words", []) for c in areas["area_code"]]
        areas["block_shares"] = [found.get(c, {}).get("blocks", {}) for c in areas["area_code"]]
        notes.append("drivers: how the model's expectation moves if one driver were at the city median, all else "
                     "unchanged (forecast/drivers.csv): an association in the model, not the effect of a policy")
    elif run.topology == "horizontal":
        notes.append("drivers: the coordinator holds no node's features of a horizontal run (they never leave the "
                     "nodes), so the report names no per-area drivers")
    else:
        notes.append("drivers: this run kept no drivers (forecast/drivers.csv, or model.pt and "
                     "prediction_inputs.parquet)")
    fairness = _fairness(run, settings["fairness"], notes)
    mia = None
    if run.topology == "horizontal" and run.members is not None and len(run.members) and len(run.holdout):
        mia = membership_audit(run.members, run.holdout)
    checks = gate_checks(settings, judged.fit_for_use, judged.r2, intervals, fairness, mia,
                         run.topology == "horizontal", outside_the_run(run))
    privacy = privacy_check(settings, missing, unchecked, str(folder))
    if privacy is not None:
        checks.append(privacy)
    skill_words: list[tuple[str, str]] = []
    if run.topology == "vertical":   # a forecasting run: the model must beat the naive forecast (worst news first)
        minimum = float((settings.get("forecast") or {}).get("min_skill_lo", 0.0))
        checks.insert(0, skill_check(forecast, settings))
        skill_words = verdict_words(forecast, minimum)
    shown = [shapes[c] for c in sorted(shapes) if c in set(areas["area_code"])]
    return Report(run, settings, areas, shown, intervals, judged, fairness, mia,
                  receipts(run.privacy, run.name, checked, folder),
                  model_card(run, intervals, sorted(areas.loc[areas["suppressed"], "area_code"])), checks,
                  notes, forecast=forecast, skill_words=skill_words, missing_receipts=missing)


def outside_the_run(run: RunOutputs) -> list[str]:
    """The files the report read that are not the run's own records; a reader that lists none read nothing."""
    own = Path(run.run_dir).resolve()
    return [str(p) for p in run.sources if not Path(p).resolve().is_relative_to(own)]


def _area_table(run: RunOutputs, shapes: Mapping[str, Area], intervals: Intervals | None,
                forecast: Forecast | None = None, min_skill_lo: float = 0.0) -> pd.DataFrame:
    """Every predicted area, plus every area of the shipped map of the same city that has no prediction.

    With the run's forecast: the naive forecast beside the model's, and the change against the area's recent
    level with its interval (`beyond_noise` false: no change beyond the noise). Without it no change is shown:
    a change without its interval would mislead."""
    pred = run.predictions.drop_duplicates("area_code").set_index("area_code")
    view = forecast.areas.set_index("area_code") if forecast is not None else pd.DataFrame()
    codes = set(pred.index)
    same_city = {c for c in shapes if any(c[:6] == p[:6] for p in codes)}
    columns = ["area_code", "name", "suppressed", "prediction", "low", "high", "current", "naive", "level", "change",
               "change_lo", "change_hi", "model_rank", "naive_rank", "naive_change", "beyond_noise"]
    rows = []
    for code in sorted(codes | same_city):
        has = code in pred.index
        value = float(pred.loc[code, "predicted_liveability"]) if has else np.nan
        now = float(pred.loc[code, "current_liveability"]) if has else np.nan
        half = intervals.half_width if intervals is not None else np.nan
        f = view.loc[code] if has and code in view.index else None
        rows.append({"area_code": code, "name": shapes[code].name if code in shapes else code, "suppressed": not has,
                     "prediction": value, "low": value - half, "high": value + half, "current": now,
                     **{k: (float(f[k]) if f is not None else np.nan)
                        for k in ("naive", "level", "change", "change_lo", "change_hi", "model_rank", "naive_rank",
                                  "naive_change")},
                     "beyond_noise": bool(f["beyond_noise"]) if f is not None else False})
    table = pd.DataFrame(rows, columns=columns)   # a run with no area rows (horizontal) has the same columns
    # 1 = lowest predicted liveability; by the naive forecast when the gate refuses the model on skill
    guide = "naive" if forecast is not None and not forecast.releasable(min_skill_lo) and table["naive"].notna().any() else "prediction"
    table["rank"] = table[guide].rank(method="first").astype("Int64")
    table["drivers"] = [[] for _ in range(len(table))]
    table["block_shares"] = [{} for _ in range(len(table))]
    return table


def _fairness(run: RunOutputs, settings: Mapping[str, Any], notes: list[str]) -> FairnessAudit | None:
    try:
        stats = cbs_statistics(settings)
    except ConfigError as err:
        notes.append(f"fairness audit: public statistics unavailable ({err})")
        return None
    if not len(run.holdout):
        return None
    contract_stats, problems = None, []
    if not run.holdout["area_code"].isin(stats.index).all():   # areas the CBS file does not hold: their contracts
        contract_stats, problems = contract_statistics(run.config)
    notes.extend(f"fairness audit: a node's audit columns could not be read ({p})" for p in problems)
    return audit(run.holdout, audit_groups(stats, settings["groups"], contract_stats), settings)


def write_report(report: Report, out_dir: Path) -> Path:
    """`report.html` (self-contained) and the PNG figures in `out_dir`; returns the HTML's path."""
    from server.report.html import render

    out_dir.mkdir(parents=True, exist_ok=True)
    areas = report.areas
    fills, _ = figures.colours(dict(zip(areas["area_code"], areas["prediction"])), figures.PRED_CMAP)
    if report.boundaries:
        report.figures["map"] = out_dir / "map.png"
        figures.map_png(report.boundaries, fills, report.figures["map"], f"Predicted liveability, {report.run.name}")
    if report.verdict.rows:
        report.figures["yardstick"] = out_dir / "yardstick.png"
        figures.yardstick_png(report.verdict.rows, report.figures["yardstick"])
    if report.fairness and report.fairness.groupings:
        report.figures["fairness"] = out_dir / "fairness.png"
        figures.fairness_png({g.label: g.table for g in report.fairness.groupings}, report.figures["fairness"])
    if report.intervals is not None:
        report.figures["intervals"] = out_dir / "intervals.png"
        figures.intervals_png(report.run.holdout, report.intervals.half_width, report.intervals.level,
                              report.figures["intervals"])
    path = out_dir / "report.html"
    path.write_text(render(report), encoding="utf-8")
    return path
