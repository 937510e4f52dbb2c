"""The coordinator's forecast in a vertical run: from the releases it holds to RUN_DIR/forecast/.

What the coordinator holds after the releases, and nothing else, is read here:
- the label as released (a DP release of the survey, or a published index): one value per area and period
  where the survey ran (a wave survey leaves the months between waves empty: not released, never zero);
- each partner's released blocks for the aligned keys, per area and month, with their noise sd per cell.
The label's released history becomes one panel on the run's grid (every area of the label x every month
from its first to its last released period); each partner's blocks become panels on the same grid, after
the Fay-Herriot shrinkage of each month's release by its known noise (`vertical.shrinkage`). The
forecasting core (`server.forecast`) builds the history features (the label's lags, trailing means,
trends; each partner's features with theirs), scores every model and naive forecast by rolling origin in
time x held-out areas at every horizon of `federation.label.horizons`, applies the gate at
`federation.label.horizon`, and writes the artefacts. All of it is post-processing of releases: one set of
releases serves every horizon, at no further privacy cost.

The run's older outputs follow from the same forecast at the configured horizon, so the report's parts
(intervals, fairness audit, yardstick) judge the model that forecasts: `holdout_predictions.csv` (held-out
rows), `predictions.csv` (the current forecast per area).
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from federation.dataset import KEYS, forecast_horizons
from federation.shrinkage import ShrinkageConfig, released_features
from server.forecast.artefacts import write_all
from server.forecast.evaluate import Learned
from server.forecast.models import Network
from server.forecast.panel import Panel, blocks_to_panels, period_range
from server.forecast.run import MODEL, ForecastConfig, ForecastResult, default_learned, forecast
from server.forecast.sensitivity import driver_table, write_drivers
from server.kept_releases import keep_label

Key = tuple[str, str]


def label_grid(label: pd.DataFrame) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The run's grid from the released label: its areas, and every period from its first to its last
    released period (a wave survey's months between waves included, as gaps)."""
    periods = sorted(set(label["period"].astype(str)))
    if not periods:
        raise ValueError("the label release holds no rows")
    return tuple(sorted(set(label["area_code"].astype(str)))), period_range(periods[0], periods[-1])


def grid_keys(areas: tuple[str, ...], periods: tuple[str, ...]) -> list[Key]:
    """Every (area, period) of the grid: the keys the coordinator asks the partners to align and release."""
    return [(a, p) for a in areas for p in periods]


def label_panel(label: pd.DataFrame, areas: tuple[str, ...], periods: tuple[str, ...],
                survey_months: Sequence[int] | None = None, *, released: bool = True) -> Panel:
    """The label's released history on the grid (marked released: the forecasting core refuses an exact one;
    `released=False` marks the exact label of a benchmark or the demo's reference). `survey_months`: the
    survey's public calendar (calendar months 1..12); a release in any other month is noise around no
    respondent and is left as a gap."""
    frame = label
    bad = [m for m in survey_months or () if not isinstance(m, int) or not 1 <= m <= 12]
    if bad:
        raise ValueError(f"federation.label.survey_months: calendar months 1..12, not {bad[0]!r}")
    if survey_months:
        months = pd.PeriodIndex(label["period"].astype(str), freq="M").month
        frame = label[np.isin(months, [int(m) for m in survey_months])]
    return Panel.from_frame(frame, "label", released=released, areas=areas, periods=periods)


def partner_panels(blocks: Mapping[str, pd.DataFrame], noise: Mapping[str, pd.DataFrame],
                   partners: Mapping[str, tuple[str, ...]], shrinkage: ShrinkageConfig,
                   areas: tuple[str, ...], periods: tuple[str, ...], *,
                   released: bool = True) -> dict[str, dict[str, Panel]]:
    """{partner: {"<block>.<feature>": Panel}} of the released blocks, each month's release shrunk by its
    known noise (window 1: the history features make their own means and trends). `released=False`: exact
    blocks (no noise, no shrinkage), for a benchmark's or the demo's reference only."""
    shrunk = released_features(blocks, 1, noise, shrinkage) if released else dict(blocks)
    panels = blocks_to_panels(shrunk, released=released, areas=areas, periods=periods)
    return {partner: {f"{b}.{f}": p for b in own if b in panels for f, p in panels[b].items()}
            for partner, own in partners.items()}


def forecast_config(cfg: Mapping[str, Any]) -> ForecastConfig:
    """The forecasting settings (`forecast` group) with the federation's own horizons, configured horizon and
    direction of worse (`federation.label.horizons`, `.horizon`, `.worse`): a federation forecasts its label."""
    label = cfg["federation"]["label"]
    forecast_horizons(label)   # one clear message for bad horizons
    return ForecastConfig.from_cfg(cfg.get("forecast"), folds=int(cfg["folds"]), seed=int(cfg["seed"]), label=label)


def run_forecast(run_dir, cfg: Mapping[str, Any], label: pd.DataFrame, blocks: Mapping[str, pd.DataFrame],
                 noise: Mapping[str, pd.DataFrame], epsilon: float | None,
                 say: Callable[[str], None]) -> ForecastResult:
    """The forecast of a vertical run from its releases, written to RUN_DIR/forecast/ and, at the configured
    horizon, to holdout_predictions.csv and predictions.csv."""
    fed = cfg["federation"]
    fcfg = forecast_config(cfg)
    areas, periods = label_grid(label)
    history = label_panel(label, areas, periods, fed["label"].get("survey_months"))
    partners = {p: tuple(s["blocks"]) for p, s in fed["partners"].items()}
    panels = partner_panels(blocks, noise, partners, ShrinkageConfig.from_cfg(cfg["vertical"].get("shrinkage")),
                            areas, periods)
    released = int(np.isfinite(history.values).sum())
    say(f"forecast: label history of {len(areas)} areas over {periods[0]} .. {periods[-1]} ({released} released "
        f"values), horizons {', '.join(map(str, fcfg.horizons))}, configured {fcfg.configured_horizon}")
    done = f"fold {fcfg.folds}/{fcfg.folds} done"

    def progress(step: str) -> None:   # one line per scored origin (every fold of areas), not per fold
        if step.endswith(done):
            say("forecast: " + step.replace(done, "every fold of areas scored"))

    learned = {**default_learned(list(panels), partner_alone=True), **leave_out_models(list(panels), fed.get("without"))}
    result = forecast(history, panels, fcfg, learned,
                      label_units=str(fed["label"].get("units", "label points")), data="dp", epsilon=epsilon,
                      on_step=progress)
    write_all(run_dir, result.skill, result.predictions, result.warnings)
    say(f"forecast: the model's sensitivity to each driver at the city median, horizon {fcfg.configured_horizon} "
        "(forecast/drivers.csv)")
    write_drivers(run_dir, driver_table(history, panels, fcfg, learned[MODEL]))
    keep_label(run_dir, history)
    holdout_frame(result.held_out, fcfg.configured_horizon, list(panels)).to_csv(
        run_dir / "holdout_predictions.csv", index=False)
    current_frame(result.predictions, fcfg.configured_horizon).to_csv(run_dir / "predictions.csv", index=False)
    return result


def leave_out_models(partners: Sequence[str], without: Sequence[str] | None) -> dict[str, Learned]:
    """`without:<partner>`: the fusion network on every feature group but that partner's, for each partner
    named in `federation.without`; scored in the same rolling evaluation as every other model (same folds,
    origins and areas), from the same releases: post-processing, no privacy cost."""
    names = list(without or ())
    unknown = [p for p in names if p not in partners]
    if unknown:
        from federation.errors import ConfigError
        raise ConfigError(f"federation.without: {unknown[0]!r} is not a partner of the federation "
                          f"({', '.join(partners)})")
    return {f"without:{p}": Learned(("history", *(q for q in partners if q != p)),
                                    lambda w, s: Network(w, seed=s)) for p in names}


def holdout_frame(held: pd.DataFrame, horizon: int, partners: list[str]) -> pd.DataFrame:
    """The fusion model's held-out forecasts at `horizon` in the run's held-out shape: one row per area and
    origin (`period`), the released truth (`y_dp`), the forecast (`pred`), each partner alone, the fold."""
    rows = held[(held["horizon"] == horizon) & held["truth"].notna()]
    wide = rows.pivot_table(index=["area_code", "origin", "fold"], columns="model", values="prediction",
                            aggfunc="first").reset_index()
    truth = rows.drop_duplicates(["area_code", "origin"])[["area_code", "origin", "truth"]]
    wide = wide.merge(truth, on=["area_code", "origin"])
    out = pd.DataFrame({"area_code": wide["area_code"].astype(str), "period": wide["origin"].astype(str),
                        "y_dp": wide["truth"], "pred": wide[MODEL], "fold": wide["fold"].astype(int)})
    for p in partners:
        if f"partner:{p}" in wide:
            out[f"pred_alone_{p}"] = wide[f"partner:{p}"]
    return out.sort_values(KEYS).reset_index(drop=True)


def current_frame(predictions: pd.DataFrame, horizon: int) -> pd.DataFrame:
    """The current forecast per area at `horizon` in the run's predictions shape (`current_liveability`: the
    area's recent level, from released values)."""
    now = predictions[(predictions["horizon"] == horizon) & (predictions["model"] == MODEL)
                      & ~predictions["held_out"].astype(bool)]
    return pd.DataFrame({"area_code": now["area_code"].astype(str), "period": now["origin"].astype(str),
                         "predicted_period": now["target"].astype(str),
                         "predicted_liveability": now["prediction"].round(4),
                         "current_liveability": now["level"].round(4)}).sort_values("area_code").reset_index(drop=True)
