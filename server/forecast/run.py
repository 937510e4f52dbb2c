"""One forecasting pass over a run's releases: held-out skill at every horizon, the gate, the current
forecast and the warning list, as the three artefacts of RUN_DIR/forecast/.

    result = forecast(label_panel, {partner: {feature: Panel}}, ForecastConfig.from_cfg(cfg["forecast"]))
    write_all(run_dir, result.skill, result.predictions, result.warnings)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from server.forecast.evaluate import EvalConfig, Learned, current_forecasts, rolling_evaluation
from server.forecast.gate import gate
from server.forecast.models import Network, Ridge
from server.forecast.naive import NAIVE_MODELS
from server.forecast.panel import Panel
from server.forecast.skill import best_baseline, score_models
from server.forecast.warning import warning_list, warning_scores

MODEL = "federated_dp"   # the fusion model's name in the artefacts


@dataclass(frozen=True)
class ForecastConfig:
    """`configs/forecast/default.yaml` (plus the run's `folds` and `seed`)."""

    horizons: tuple[int, ...] = (1, 3, 6, 12)
    configured_horizon: int = 3
    worse: str = "lower"
    test_origins: int = 3
    min_history: int = 6
    windows: tuple[int, ...] = (3, 6, 12)
    anchor_windows: tuple[int, ...] = (1, 3, 6, 12)
    interval: float = 0.90
    top_k: tuple[int, ...] = (5, 10)
    folds: int = 5
    seed: int = 0

    @classmethod
    def from_cfg(cls, forecast: Mapping[str, Any] | None, folds: int = 5, seed: int = 0,
                 label: Mapping[str, Any] | None = None) -> "ForecastConfig":
        """From `configs/forecast/default.yaml`; the federation's `label` settings, where given, set the
        horizons (`label.horizons`), the gate's horizon (`label.horizon`) and which way the label worsens
        (`label.worse`: lower or higher)."""
        f = dict(forecast or {})
        label = label or {}
        for key, own in (("horizons", "horizons"), ("configured_horizon", "horizon"), ("worse", "worse")):
            if label.get(own) is not None:
                f[key] = label[own]
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(f) - known)
        if unknown:
            from federation.errors import ConfigError
            raise ConfigError(f"forecast: unknown key(s) {', '.join(unknown)}")
        if "worse" in f and f["worse"] not in ("lower", "higher"):
            from federation.errors import ConfigError
            raise ConfigError(f"forecast.worse / label.worse must be 'lower' or 'higher', got {f['worse']!r}")
        tuples = {k: tuple(int(x) for x in f[k]) for k in ("horizons", "windows", "anchor_windows", "top_k") if k in f}
        cfg = cls(**{"folds": folds, "seed": seed, **f, **tuples})
        if cfg.configured_horizon not in cfg.horizons:
            from federation.errors import ConfigError
            raise ConfigError(f"forecast.configured_horizon {cfg.configured_horizon} is not among the horizons "
                              f"{list(cfg.horizons)}")
        return cfg

    def evaluation(self) -> EvalConfig:
        return EvalConfig(folds=self.folds, test_origins=self.test_origins, min_history=self.min_history,
                          seed=self.seed, windows=self.windows, anchor_windows=self.anchor_windows)


def default_learned(partners: Sequence[str], network: bool = True, partner_alone: bool = False,
                    model_name: str = MODEL) -> dict[str, Learned]:
    """The learned models scored beside the naive ones: the label's history alone (ridge), the linear
    reference on every feature group (ridge), the fusion network on every group, and optionally each
    partner alone (the network on the label's history and that partner's group)."""
    groups = ("history", *partners)
    out = {"label_history": Learned(("history",), lambda w, s: Ridge(seed=s)),
           "linear_reference": Learned(groups, lambda w, s: Ridge(seed=s))}
    if network:
        out[model_name] = Learned(groups, lambda w, s: Network(w, seed=s))
        if partner_alone:
            for p in partners:
                out[f"partner:{p}"] = Learned(("history", p), lambda w, s: Network(w, seed=s))
    return out


@dataclass
class ForecastResult:
    """The three artefacts' contents (see server/forecast/artefacts.py) and the held-out rows behind them."""

    skill: dict[str, Any]
    predictions: pd.DataFrame
    warnings: pd.DataFrame
    held_out: pd.DataFrame = field(repr=False)


def feasible_horizons(n_periods: int, cfg: ForecastConfig) -> list[int]:
    """Horizons with at least one test origin after `min_history` periods."""
    return [h for h in cfg.horizons if n_periods >= periods_needed(h, cfg)]


def periods_needed(horizon: int, cfg: ForecastConfig) -> int:
    """The fewest periods that score `horizon`: `min_history` of history, a training target `horizon` ahead,
    and one test origin whose target lies `horizon` further on."""
    return cfg.min_history + 2 * horizon + 1


def check_history(n_periods: int, cfg: ForecastConfig) -> list[int]:
    """The horizons that `n_periods` cannot score (they are left out of the skill table); a ValueError naming
    what is needed if the configured horizon, the one the gate judges, cannot be scored."""
    scored = feasible_horizons(n_periods, cfg)
    if cfg.configured_horizon not in scored:
        can = f"horizon(s) {', '.join(map(str, scored))} could be scored" if scored else "no horizon could be scored"
        raise ValueError(f"{n_periods} periods are too few to score horizon {cfg.configured_horizon} after "
                         f"{cfg.min_history} periods of history: it needs at least "
                         f"{periods_needed(cfg.configured_horizon, cfg)} periods ({can}); build the nodes' "
                         f"features on a longer window, or set federation.label.horizon to a shorter horizon")
    return [h for h in cfg.horizons if h not in scored]


def forecast(label: Panel, partners: Mapping[str, Mapping[str, Panel]], cfg: ForecastConfig,
             learned: Mapping[str, Learned] | None = None, *, model: str = MODEL, truth: Panel | None = None,
             label_units: str = "", data: str = "dp", epsilon: float | None = None,
             on_step: Callable[[str], None] | None = None) -> ForecastResult:
    """Score every model at every feasible horizon (rolling origin x held-out areas, against `truth`, default
    the released label itself), apply the gate at the configured horizon, and make the current forecast and
    the warning list (withheld if the gate refuses). Reads released panels only."""
    learned = dict(default_learned(list(partners), model_name=model) if learned is None else learned)
    truth = truth or label
    ev = cfg.evaluation()
    check_history(len(label.periods), cfg)
    horizons = feasible_horizons(len(label.periods), cfg)
    rows, best, held_all, current = [], {}, [], []
    gate_doc, warn_doc = None, None
    for h in horizons:
        held = rolling_evaluation(label, truth, partners, h, learned, ev, on_step=on_step)
        best[str(h)] = best_baseline(held)
        for r in score_models(held, best[str(h)], seed=cfg.seed):
            rows.append({**r, "horizon": h, "data": data, "epsilon": None if r["model"] in NAIVE_MODELS else epsilon,
                         "r2_sd": None})
        held_all.append(held.assign(held_out=True))
        current.append(current_forecasts(label, partners, h, learned, ev).assign(held_out=False))
        if h == cfg.configured_horizon:
            mine = next(r for r in rows if r["model"] == model and r["horizon"] == h) if model in learned else {}
            gate_doc = gate(h, mine.get("skill"), mine.get("skill_lo"), mine.get("skill_hi"), best[str(h)])
            if model in learned:
                warn_doc = {"horizon": h, **warning_scores(held, model, cfg.worse, cfg.top_k)}
    cur = pd.concat(current, ignore_index=True)
    released = gate_doc is not None and gate_doc["releasable"] and model in learned
    warnings = warnings_at(cur, cfg, model if model in learned else None, released)
    held_frame = pd.concat(held_all, ignore_index=True)
    predictions = pd.concat([held_frame, cur], ignore_index=True)
    doc = skill_document(horizons, cfg, label_units, sorted(set(held_frame["origin"])), rows, best, gate_doc,
                         warn_doc, released)
    return ForecastResult(doc, predictions, warnings, held_frame)


def warnings_at(current: pd.DataFrame, cfg: ForecastConfig, model: str | None, released: bool) -> pd.DataFrame:
    """warnings.csv from the current forecasts (`current_forecasts` rows) at the configured horizon: the
    model's list if `released` (the gate passed), else the naive ranking only."""
    now = current[current["horizon"] == cfg.configured_horizon]
    naive_rows = now[now["model"] == "persistence"].set_index("area_code")
    areas = list(naive_rows.index)
    mrows = None if model is None else now[now["model"] == model].set_index("area_code").reindex(areas)
    return warning_list(cfg.configured_horizon, areas, naive_rows["level"].to_numpy(),
                        None if mrows is None else mrows["prediction"].to_numpy(),
                        None if mrows is None else mrows["lo"].to_numpy(),
                        None if mrows is None else mrows["hi"].to_numpy(),
                        naive_rows["naive_change"].to_numpy(), cfg.worse, withheld=not released)


def skill_document(horizons: Sequence[int], cfg: ForecastConfig, label_units: str, origins: Sequence[str],
                   rows: list[dict], best: Mapping[str, str], gate_doc: Mapping[str, Any] | None,
                   warn_doc: Mapping[str, Any] | None, released: bool, dp_draws: int = 1) -> dict[str, Any]:
    """The skill.json object (ARTEFACTS format; extended with `interval`, `coverage_90` per row,
    `best_naive` in the gate and `model_list_withheld` in the warning)."""
    return {"horizons": list(horizons), "configured_horizon": cfg.configured_horizon, "label_units": label_units,
            "evaluation": {"kind": "rolling-origin x held-out areas", "origins": list(origins),
                           "folds": cfg.folds, "dp_draws": dp_draws, "interval": cfg.interval},
            "rows": rows, "best_naive": dict(best), "gate": gate_doc,
            "warning": {**(warn_doc or {"horizon": cfg.configured_horizon}), "model_list_withheld": not released}}
