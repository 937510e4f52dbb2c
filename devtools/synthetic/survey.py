"""The resident survey: the label's source, one row per respondent.

A respondent's five dimension scores are the area's scores in that month plus response noise. Two shapes:
- `waves` (Heerlen): a survey wave in the listed calendar months only (e.g. January, April, July, October),
  with a fixed number of respondents per area and wave from its population (`per_1000_inhabitants`, kept
  within `min`..`max` and at most `max_share` of the inhabitants), as Dutch resident surveys are drawn;
  months without a wave have NO rows, so the label is missing there. The table does not absorb --records.
- `volume` (the transfer cities): every month, a minimum per area plus the survey's share of the record
  volume spread in proportion to population.
"""
from __future__ import annotations

import numpy as np

from federation.errors import ConfigError
from devtools.synthetic import formats
from devtools.synthetic.context import CityContext, Demand, require
from devtools.synthetic.latent import DIMENSIONS, per_dimension
from devtools.synthetic.table import RawTable


def _largest_remainder(total: int, weights: np.ndarray) -> np.ndarray:
    """Integers proportional to `weights` that sum exactly to `total`."""
    share = weights / weights.sum() * total
    base = np.floor(share).astype(np.int64)
    rest = total - int(base.sum())
    if rest > 0:
        base[np.argsort(-(share - base), kind="stable")[:rest]] += 1
    return base


class SurveyTable(RawTable):

    required_columns = ("id", "area", "month", "unsafe")
    def __init__(self, ctx: CityContext, node: str, name: str, spec: dict):
        super().__init__(ctx, node, name, spec)
        scores = require(self.columns, "scores", f"{self.where} columns", dict)
        missing = [d for d in DIMENSIONS if d not in scores]
        if missing:
            raise ConfigError(f"{self.where}: field 'columns.scores.{missing[0]}' is missing")
        self.waves = self._waves(spec.get("waves")) if "waves" in spec else None
        if self.waves is None:
            self.volume = require(spec, "volume", self.where, dict)
            self.minimum = int(require(self.volume, "min_per_area_month", self.where, int))
            if self.minimum < 1:
                raise ConfigError(f"{self.where}: field 'volume.min_per_area_month' must be at least 1")
        values = require(spec, "unsafe_values", self.where, list)
        if len(values) != 2:
            raise ConfigError(f"{self.where}: field 'unsafe_values' must be two values: [yes, no]")
        logit = require(spec, "unsafe_logit", self.where, dict)
        for key in ("intercept", "per_point"):
            require(logit, key, f"{self.where} unsafe_logit", (int, float))
        per_dimension(spec, "response_sd", self.where)

    def _waves(self, waves: object) -> np.ndarray:
        """(A, T) respondents per area and month of a wave survey (0 outside the wave months)."""
        at = f"{self.where}: field 'waves"
        months = waves.get("months") if isinstance(waves, dict) else None
        if not isinstance(months, list) or not months or not all(isinstance(m, int) and 1 <= m <= 12 for m in months):
            raise ConfigError(f"{at}.months' must list the calendar months of the waves (1..12), e.g. [1, 4, 7, 10]")
        size = require(waves, "respondents", self.where, dict)
        for key in ("per_1000_inhabitants", "min", "max"):
            require(size, key, f"{self.where} waves.respondents", (int, float))
        low, high = int(size["min"]), int(size["max"])
        share = float(size.get("max_share", 1.0))
        if not 1 <= low <= high or not 0 < share <= 1:
            raise ConfigError(f"{at}.respondents' needs 1 <= min <= max and 0 < max_share <= 1")
        pop = self.ctx.population
        target = np.clip(np.round(pop * float(size["per_1000_inhabitants"]) / 1000.0), low, high)
        target = np.minimum(target, np.maximum(1, np.floor(pop * share)))
        calendar = self.ctx.window.start_month - 1 + np.arange(self.ctx.window.months)
        wave = np.isin(calendar % 12 + 1, months)
        if not wave.any():
            w = self.ctx.window
            raise ConfigError(f"{at}.months': the window {w.start_year:04d}-{w.start_month:02d} + {w.months} month(s) "
                              f"holds no survey wave (waves in calendar months {', '.join(map(str, months))}), so "
                              f"there would be no label: move --start or raise --months")
        return (target * wave[None, :]).astype(np.int64)

    def demand(self) -> Demand:
        pop = self.ctx.population
        if self.waves is not None:
            return Demand(fixed=float(self.waves.sum()))
        return Demand(fixed=0.0, minimum=float(self.minimum * pop.size),
                      weight=float(require(self.volume, "weight", self.where, (int, float))) * float(pop.sum()))

    def respondents(self, rows: float) -> np.ndarray:
        """(A, T) respondents per area and month for a table of about `rows` rows."""
        if self.waves is not None:
            return self.waves
        pop = self.ctx.population
        extra = max(0, int(round(rows)) - self.minimum * pop.size)
        return self.minimum + _largest_remainder(extra, pop.ravel()).reshape(pop.shape)

    def render(self, rows: float | None) -> dict[str, np.ndarray]:
        ctx, c, spec, rng = self.ctx, self.columns, self.spec, self.rng
        n = self.respondents(rows if rows is not None else 0 if self.waves is not None else
                             self.minimum * ctx.population.size)
        month, area = np.unravel_index(np.repeat(np.arange(n.size), n.T.ravel()), n.T.shape)
        sd = per_dimension(spec, "response_sd", self.where)
        own = ctx.latent.scores[area, month] + sd * rng.standard_normal((len(area), 5))
        logit = require(spec, "unsafe_logit", self.where, dict)
        p = 1.0 / (1.0 + np.exp(-(float(logit["intercept"]) + float(logit["per_point"]) * own[:, 4])))
        unsafe = rng.random(len(area)) < p
        yes, no = require(spec, "unsafe_values", self.where, list)
        decimals = int(spec.get("decimals", 3))
        labels = np.asarray(ctx.window.month_labels(require(spec, "month_format", self.where, str)), dtype=object)
        out = {
            c["id"]: formats.sequence_ids(require(spec, "id_template", self.where, str),
                                          ctx.window.month_years[month], self.where),
            c["area"]: np.asarray(ctx.areas.codes, dtype=object)[area],
            c["month"]: labels[month],
        }
        for k, dim in enumerate(DIMENSIONS):
            out[c["scores"][dim]] = np.round(own[:, k], decimals) if self.format.kind == "parquet" else \
                formats.numbers(own[:, k], decimals, self.format.decimal)
        out[c["unsafe"]] = np.where(unsafe, yes, no).astype(object)
        return out
