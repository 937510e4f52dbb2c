"""The resident survey: the label's source, one row per respondent.

A respondent's five dimension scores are the area's scores in that month plus response noise; the
number of respondents per area and month is deterministic (a minimum, plus the survey's share of the
record volume spread in proportion to population), so the label is usable in every area and month.
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

    def demand(self) -> Demand:
        pop = self.ctx.population
        return Demand(fixed=0.0, minimum=float(self.minimum * pop.size),
                      weight=float(require(self.volume, "weight", self.where, (int, float))) * float(pop.sum()))

    def respondents(self, rows: float) -> np.ndarray:
        """(A, T) respondents per area and month for a table of about `rows` rows."""
        pop = self.ctx.population
        extra = max(0, int(round(rows)) - self.minimum * pop.size)
        return self.minimum + _largest_remainder(extra, pop.ravel()).reshape(pop.shape)

    def render(self, rows: float | None) -> dict[str, np.ndarray]:
        ctx, c, spec, rng = self.ctx, self.columns, self.spec, self.rng
        n = self.respondents(self.minimum * ctx.population.size if rows is None else rows)
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
