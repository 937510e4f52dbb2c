"""The fairness audit: errors and rankings compared across groups of areas formed by public statistics.

The groups come from public CBS area statistics (share of residents with a migration background, with a
non-Western migration background, income, share of social housing), read from the CBS file the synthetic
generator is calibrated on, and used only here: they are never features. Areas the CBS file does not hold (a
transfer city's) are grouped by the audit columns their own data contract declares on its public tables
(`contract_statistics`), in equal-count groups within their city. Per grouping, fairlearn's MetricFrame
computes on the held-out rows the mean absolute error, the bias (mean of prediction minus label), the
calibration error, and how much more often the model puts a group's areas in the worst decile than the label
does.

The gate treats fairness as an equivalence test: a gap is "shown within threshold" only when the upper end
of its interval (resampling the areas within their groups) is below the threshold, "shown above" when the
lower end is above it, and otherwise "not shown unfair (inconclusive)": with a few held-out areas per group,
absence of evidence is not evidence of fairness. Each time, a planted-bias check says what the audit could
have found: it lowers the predictions of one group's areas by growing amounts and finds the smallest shift the
audit shows above the threshold (`detectable`). Thresholds are stated beside the spread of predicted scores
across areas, the scale they are meant against.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from federation.config import configs_dir
from federation.errors import ConfigError, PulseTwinError
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
    # The planted-bias check: the group whose predictions it lowers, and per metric the smallest shift (score
    # points) the audit shows above the threshold, or None when none up to `searched` is.
    planted_group: str | None = None
    detectable: dict[str, float | None] = field(default_factory=dict)
    searched: float = 0.0


@dataclass
class FairnessAudit:
    groupings: list[GroupingResult]
    areas_with_statistics: int
    note: str = ""
    spread: float | None = None   # standard deviation of the areas' mean predicted score (held-out areas)


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
        out[name] = pd.qcut(stats[attribute].rank(method="first"), bins, labels=_bin_names(bins)).astype(str)
    return out


def contract_statistics(config: Mapping[str, Any]) -> tuple[pd.DataFrame, list[str]]:
    """Per area of the run's nodes, the audit columns their data contracts declare on public tables (published
    statistics: read here as anyone may; a private table is never read): the column's mean per area, and the
    node it came from. Returns the frame (index area_code; columns node, statistic, value) and what could not
    be read, in words."""
    from clients.contracts import load_contract
    from clients.contracts.reading import read_raw
    from clients.contracts.rowfilter import filter_rows
    from clients.contracts.validation import validate

    fed = config.get("federation") or {}
    nodes = {**(fed.get("nodes") or {}), **(fed.get("partners") or {})}
    parts, problems = [], []
    for name, spec in nodes.items():
        node_dir = Path(str((spec or {}).get("node_dir", "")))
        try:
            own = node_dir / "contract.yaml"
            contract = load_contract(own if own.is_file() else str(spec.get("contract") or name))
            for table_name, table in contract.tables.items():
                if not table.audit_columns or not table.privacy.is_public:
                    continue
                typed = validate(filter_rows(read_raw(table, node_dir), table), table, node_dir, None, "(none)")
                if typed.area is None:
                    continue
                for column in table.audit_columns:
                    values = pd.to_numeric(typed.data[column], errors="coerce").to_numpy()
                    frame = pd.DataFrame({"area_code": typed.area.astype(str), "value": values}).dropna()
                    means = frame.groupby("area_code")["value"].mean()
                    parts.append(pd.DataFrame({"node": name, "statistic": f"{table_name}.{column}",
                                               "value": means}))
        except (PulseTwinError, OSError, KeyError, TypeError, ValueError) as err:
            problems.append(f"node '{name}': {str(err).splitlines()[0] if str(err) else type(err).__name__}")
    if not parts:
        return pd.DataFrame(columns=["node", "statistic", "value"], index=pd.Index([], name="area_code")), problems
    out = pd.concat(parts)
    out.index.name = "area_code"
    return out[~out.index.duplicated(keep="first")], problems


def audit_groups(stats: pd.DataFrame, groups: Mapping[str, Mapping[str, Any]],
                 contract_stats: pd.DataFrame | None = None) -> pd.DataFrame:
    """The group of every area per grouping: CBS areas from the CBS file (`group_labels`); other areas, for the
    groupings marked `contract_audit`, in equal-count groups within their own node by the audit statistic
    its contract declares (each city's own measure of the same attribute)."""
    out = group_labels(stats, groups)
    if contract_stats is None or not len(contract_stats):
        return out
    extra = contract_stats[~contract_stats.index.isin(out.index)]
    labels = pd.DataFrame(index=extra.index.unique())
    for name, spec in groups.items():
        if not spec.get("contract_audit"):
            continue
        bins = int(spec["bins"])
        names = _bin_names(bins)
        column = pd.Series(index=labels.index, dtype=object)
        for _, part in extra.groupby("node"):
            if len(part) >= bins:
                column[part.index] = pd.qcut(part["value"].rank(method="first"), bins, labels=names).astype(str)
        labels[name] = column
    return pd.concat([out, labels])


def _bin_names(bins: int) -> list[str]:
    return [f"{i + 1} of {bins}" + (" (lowest)" if i == 0 else " (highest)" if i == bins - 1 else "")
            for i in range(bins)]


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


def gap_values(per_group: pd.DataFrame) -> dict[str, float]:
    """The gaps the gate compares, from one row of metrics per compared group: the spread of MAE, bias and
    calibration between groups, and the largest extra share flagged in any group."""
    gaps = {m: float(per_group[m].max() - per_group[m].min()) for m in ("mae", "bias", "calibration")}
    gaps["flag_excess"] = float(per_group["flag_excess"].abs().max())
    return gaps


def gap_intervals(rows: pd.DataFrame, group: pd.Series, compared: list[str], metrics: Mapping[str, Any],
                  level: float, draws: int, seed: int = 0, cuts: tuple[float, float] | None = None
                  ) -> dict[str, tuple[float, float]]:
    """Each gap's interval at `level` from resampling whole areas (with replacement) within their groups:
    an area's months move together, so areas, not rows, are the independent units. The metrics of `PLANTED`
    are computed from per-area sums on the resamples of `resample_counts` (the planted-bias check re-uses them);
    the calibration error, which bins each resampled group's predictions, from the resampled rows."""
    tail = (1 - level) / 2
    members, counts = resample_counts(rows, group, compared, draws, seed)
    y_cut, pred_cut = cuts if cuts is not None else (float(rows["y"].quantile(0.1)), float(rows["pred"].quantile(0.1)))
    decomposed = decomposed_gaps(_area_sums(rows, y_cut, pred_cut), members, counts)
    out = {m: (float(np.quantile(v, tail)), float(np.quantile(v, 1 - tail))) for m, v in decomposed.items()}
    rng = np.random.default_rng(seed)   # reproducible report; no privacy rests on this
    by_area = {a: idx for a, idx in rows.groupby("area_code").indices.items()}
    samples: list[float] = []
    for _ in range(draws):
        parts, labels = [], []
        for g, areas in members.items():
            for a in rng.choice(areas, size=len(areas), replace=True):
                parts.append(by_area[a])
                labels.append(np.full(len(by_area[a]), g, dtype=object))
        idx = np.concatenate(parts)
        sample, label = rows.iloc[idx], np.concatenate(labels)
        values = [metrics["calibration"](sample["y"].to_numpy()[label == g], sample["pred"].to_numpy()[label == g])
                  for g in members]
        samples.append(max(values) - min(values))
    out["calibration"] = (float(np.quantile(samples, tail)), float(np.quantile(samples, 1 - tail)))
    return {m: out[m] for m in METRICS}


# Metrics whose resampled gaps decompose into per-area sums (the planted-bias check computes them for many
# shifts on the same resamples); the calibration error bins each group's predictions and does not.
PLANTED = {"mae": "abs", "bias": "err", "flag_excess": "flag"}


def _area_sums(rows: pd.DataFrame, y_cut: float, pred_cut: float) -> pd.DataFrame:
    """Per area: rows, and the sums of error, absolute error and (flagged by the model - by the label)."""
    err = (rows["pred"] - rows["y"]).to_numpy()
    frame = pd.DataFrame({"area_code": rows["area_code"].to_numpy(), "n": 1.0, "err": err, "abs": np.abs(err),
                          "flag": (rows["pred"].to_numpy() <= pred_cut).astype(float)
                          - (rows["y"].to_numpy() <= y_cut).astype(float)})
    return frame.groupby("area_code").sum()


def resample_counts(rows: pd.DataFrame, group: pd.Series, compared: list[str], draws: int,
                    seed: int = 0) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Each compared group's areas, and per draw how often each is drawn (resampling with replacement)."""
    rng = np.random.default_rng(seed)   # reproducible report; no privacy rests on this
    labels = group.to_numpy()
    members = {g: np.unique(rows.loc[labels == g, "area_code"].to_numpy()) for g in compared}
    return members, {g: rng.multinomial(len(a), np.full(len(a), 1 / len(a)), size=draws) for g, a in members.items()}


def decomposed_gaps(sums: pd.DataFrame, members: Mapping[str, np.ndarray],
                    counts: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per metric of `PLANTED`, its gap on every resample (as `gap_values` computes it on the groups' rows)."""
    values: dict[str, list[np.ndarray]] = {m: [] for m in PLANTED}
    for g, areas in members.items():
        part = sums.loc[areas]
        n = counts[g] @ part["n"].to_numpy()
        for m, column in PLANTED.items():
            values[m].append(counts[g] @ part[column].to_numpy() / n)
    out = {}
    for m, per_group in values.items():
        stacked = np.vstack(per_group)
        out[m] = np.abs(stacked).max(axis=0) if m == "flag_excess" else stacked.max(axis=0) - stacked.min(axis=0)
    return out


def planted_bias(all_rows: pd.DataFrame, known: np.ndarray, group: pd.Series, compared: list[str], planted: str,
                 limits: Mapping[str, float], level: float, draws: int, step: float, largest: float,
                 seed: int = 0) -> dict[str, float | None]:
    """Lower the predictions of group `planted`'s areas by 0, step, 2 x step, ... up to `largest` score points and
    re-run the audit's resampled intervals (the audit's own resamples, so shift 0 gives its intervals); per metric
    of `PLANTED`, the smallest shift whose interval's lower end is above the metric's threshold (the audit would
    show it), or None. What the audit could have found with these groups and these held-out areas.

    `all_rows` are the audit's rows (the worst-decile cut-offs are theirs), `known` marks those of this
    grouping, whose labels `group` holds."""
    rows = all_rows[known].reset_index(drop=True)
    members, counts = resample_counts(rows, group, compared, draws, seed)
    y_cut = float(all_rows["y"].quantile(0.1))
    lowered = np.zeros(len(all_rows))
    lowered[np.flatnonzero(known)[group.to_numpy() == planted]] = 1.0
    tail = (1 - level) / 2
    found: dict[str, float | None] = {m: None for m in PLANTED}
    for shift in np.arange(0.0, largest + step / 2, step):
        shifted = all_rows["pred"].to_numpy() - shift * lowered
        pred_cut = float(np.quantile(shifted, 0.1))
        sums = _area_sums(rows.assign(pred=shifted[known]), y_cut, pred_cut)
        for m, gaps in decomposed_gaps(sums, members, counts).items():
            if found[m] is None and float(np.quantile(gaps, tail)) > float(limits[m]):
                found[m] = round(float(shift), 6)
        if all(v is not None for v in found.values()):
            break
    return found


def spread_of_predictions(holdout: pd.DataFrame) -> float | None:
    """Standard deviation of the areas' mean predicted score: the scale a fairness threshold is read against."""
    means = holdout.groupby("area_code")["pred"].mean()
    return float(means.std()) if len(means) >= 2 else None


def audit(holdout: pd.DataFrame, groups: pd.DataFrame, settings: Mapping[str, Any]) -> FairnessAudit:
    """MetricFrame per grouping on the held-out rows of areas that have audit statistics, each gap with its
    interval, and the planted-bias check of what the audit could find."""
    from fairlearn.metrics import MetricFrame

    rows = holdout[holdout["area_code"].isin(groups.index)].reset_index(drop=True)
    if rows.empty:
        return FairnessAudit([], 0, "no held-out area has public audit statistics")
    cuts = (float(rows["y"].quantile(0.1)), float(rows["pred"].quantile(0.1)))   # the worst decile, city-wide
    metrics = _metrics(*cuts)
    minimum = int(settings["min_areas_per_group"])
    level = float(settings["evidence_level"])
    detect = settings.get("detection") or {}
    limits = {m: float(settings[THRESHOLD_OF[m]]) for m in PLANTED}
    results = []
    for name, spec in settings["groups"].items():
        known = rows["area_code"].map(groups[name]).notna().to_numpy()
        sub = rows[known].reset_index(drop=True)
        group = sub["area_code"].map(groups[name])
        result = GroupingResult(name, str(spec.get("label", name)), pd.DataFrame(), [])
        if sub.empty:
            results.append(result)
            continue
        frame = MetricFrame(metrics=metrics, y_true=sub["y"].to_numpy(), y_pred=sub["pred"].to_numpy(),
                            sensitive_features=group.rename(name))
        table = frame.by_group.copy()
        table.insert(0, "rows", group.value_counts().reindex(table.index).fillna(0).astype(int))
        table.insert(0, "areas", sub.groupby(group)["area_code"].nunique().reindex(table.index).fillna(0).astype(int))
        compared = [g for g in table.index if table.loc[g, "areas"] >= minimum]
        result.table, result.compared = table, compared
        if len(compared) >= 2:
            result.gaps = gap_values(table.loc[compared])
            result.intervals = gap_intervals(sub, group, compared, metrics, level, int(settings["resamples"]),
                                             cuts=cuts)
            highest = [g for g in compared if g.endswith("(highest)")]
            result.planted_group = highest[0] if highest else compared[-1]
            result.searched = float(detect.get("max_shift", 0.5))
            result.detectable = planted_bias(rows, known, group, compared, result.planted_group, limits, level,
                                             int(settings["resamples"]), float(detect.get("step", 0.01)),
                                             result.searched)
        results.append(result)
    return FairnessAudit(results, int(rows["area_code"].nunique()), spread=spread_of_predictions(rows))
