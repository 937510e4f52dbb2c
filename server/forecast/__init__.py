"""Forecasting at the coordinator: naive forecasts, forecast features, rolling-origin skill, early warning,
the gate, and the artefacts of RUN_DIR/forecast/. Everything is post-processing of releases (no privacy
cost); pure functions over an area x period `Panel` with NaN for a period not released.

API (signatures kept stable):

- `panel.Panel(areas, periods, values, released, noise_sd=None, name="label")`;
  `Panel.from_frame(frame, column="label", *, released, areas=None, periods=None, noise=None)` from long rows
  (area_code, period, column); missing periods are NaN, never zero. `panel.blocks_to_panels(blocks, *,
  released, areas, periods, noise=None)` -> {block: {feature: Panel}}. An exact panel (`released=False`) is
  refused by every feature and forecast function (`ExactDataError`) unless `reference=True` (the yardstick).
- `naive.persistence | trailing_mean | seasonal_naive (panel, t, h, ...)` -> forecast per area from origin
  index t; `naive.choose_window(panel, train_origins, h, windows, rows)`; `naive.naive_forecast(name, ...)`.
- `features.label_history(panel, t, h)`, `features.block_history(panels, t)` (per partner feature the columns
  `features.BLOCK_COLUMNS`: last value, trailing means, trend and `features.rise`), `features.design(label,
  partners, origins, h)` -> `Design` (rows over area x origin, one matrix per feature group: "history" and
  one per partner); `features.rise_columns(widths)`.
- `models.Ridge`, `models.ForwardRidge` (the label's history plus the partner rises that lower the held-out
  error), `models.Network` (ForwardRidge plus the project's block model on what it leaves, on standardised
  inputs, predicting the change from the recent level); `run.default_learned(partners, network=True,
  partner_alone=False)`.
- `evaluate.rolling_evaluation(label, truth, partners, h, learned, EvalConfig)` -> held-out rows (rolling
  origin x area folds); `evaluate.current_forecasts(label, partners, h, learned, EvalConfig)`.
- `skill.skill_interval(areas, err_model, err_naive)` -> skill, skill_lo, skill_hi (bootstrap over areas);
  `skill.score_models(held)`, `skill.best_baseline(held)` (best of the naive forecasts and the label-history
  model: what a model must beat), `skill.best_naive(held)`, `skill.r2_mae`.
- `warning.warning_list(...)` (rows of warnings.csv), `warning.beyond_noise(lo, hi)`,
  `warning.shown_change(change, beyond, text)`, `warning.warning_scores(held, model, worse)` (precision at
  k, Spearman, and the naive ranking's).
- `gate.gate(horizon, skill, skill_lo, skill_hi, best_naive)` -> the gate object with `verdict_nl`,
  `verdict_en`, one per language shown (texts: configs/lang/forecast/<code>.yaml, order: configs/languages.yaml);
  `gate.releasable(skill_lo)`.
- `run.ForecastConfig.from_cfg(cfg["forecast"], folds, seed)` (configs/forecast/default.yaml);
  `run.forecast(label, partners, cfg, learned=None, *, model="federated_dp", truth=None, label_units="",
  data="dp", epsilon=None, on_step=None)` -> `ForecastResult(skill, predictions, warnings, held_out)`.
- `artefacts.write_all(run_dir, skill, predictions, warnings)` (and write_skill / write_predictions /
  write_warnings): RUN_DIR/forecast/{skill.json, predictions.csv, warnings.csv}.
"""
from server.forecast.artefacts import write_all, write_predictions, write_skill, write_warnings
from server.forecast.gate import gate, releasable
from server.forecast.panel import ExactDataError, Panel, blocks_to_panels
from server.forecast.run import ForecastConfig, ForecastResult, default_learned, forecast

__all__ = ["ExactDataError", "ForecastConfig", "ForecastResult", "Panel", "blocks_to_panels", "default_learned",
           "forecast", "gate", "releasable", "write_all", "write_predictions", "write_skill", "write_warnings"]
