"""Point-event tables (incident registrations, public-space reports): one row per event.

Counts per area, month and category are Poisson around the modulated expectation (`intensity.py`),
so a CBS-calibrated category's annual count per area is exactly Poisson(rate x population / 1000).
Each event gets a uniform day in its month and an hour from the table's diurnal profile.
"""
from __future__ import annotations

import numpy as np

from federation.errors import ConfigError
from devtools.synthetic import formats, intensity
from devtools.synthetic.context import CityContext, Demand, require
from devtools.synthetic.table import RawTable


class EventsTable(RawTable):
    """A table of events with categories; an absorber when it has a `volume` section."""

    required_columns = ("id", "time", "area", "category")

    def __init__(self, ctx: CityContext, node: str, name: str, spec: dict):
        super().__init__(ctx, node, name, spec)
        categories = require(spec, "categories", self.where, dict)
        self.categories = list(categories)
        self.expected = np.stack([self._expected(c, categories[c]) for c in self.categories])
        self.volume = spec.get("volume")
        self.hours = np.asarray(spec.get("hour_weights", [1.0] * 24), dtype=np.float64)
        if self.hours.shape != (24,) or self.hours.min() < 0 or self.hours.sum() <= 0:
            raise ConfigError(f"{self.where}: field 'hour_weights' must be 24 non-negative numbers")
        self.extras: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for column, extra in (spec.get("extra") or {}).items():
            values = np.asarray(require(extra, "values", f"{self.where} extra.{column}", list), dtype=object)
            p = np.asarray(extra.get("weights", [1.0] * len(values)), dtype=np.float64)
            if p.shape != values.shape or p.min() < 0 or p.sum() <= 0:
                raise ConfigError(f"{self.where}: field 'extra.{column}.weights' must give one weight per value")
            self.extras[column] = (values, p / p.sum())

    def _expected(self, category: str, cat: dict) -> np.ndarray:
        where = f"{self.where} categories.{category}"
        ctx = self.ctx
        raw = intensity.factor(ctx.latent, cat.get("loadings"),
                               float(cat.get("noise_sd", 0.0)), self.rng, where)
        if "cbs" in cat:
            rates = ctx.areas.calibrated.get(str(cat["cbs"]))
            if rates is None:
                raise ConfigError(f"{where}: field 'cbs' names '{cat['cbs']}', which these areas do not carry "
                                  f"(only {sorted(ctx.areas.calibrated) or 'none'})")
            norm = intensity.per_area_year(raw, ctx.window.month_years)
            rate = ctx.areas.by_month(rates, ctx.window.month_years)
        else:
            rate = float(require(cat, "per_1000_year", where, (int, float)))
            norm = intensity.per_city(raw, ctx.population)
        return intensity.monthly_counts(rate, ctx.population, norm)

    def demand(self) -> Demand:
        total = float(self.expected.sum())
        if not self.volume:
            return Demand(fixed=total)
        popmonths = float(self.ctx.population.sum())
        minimum = float(require(self.volume, "min_per_1000_year", self.where, (int, float))) * popmonths / 12000.0
        return Demand(fixed=0.0, minimum=minimum, weight=float(require(self.volume, "weight", self.where, (int, float))) * popmonths)

    def render(self, rows: float | None) -> dict[str, np.ndarray]:
        lam = self.expected if rows is None else self.expected * (rows / self.expected.sum())
        counts = self.rng.poisson(lam)
        cat, area, month = np.unravel_index(np.repeat(np.arange(counts.size), counts.ravel()), counts.shape)
        window = self.ctx.window
        day = window.first_days[month] + self.rng.integers(0, window.month_lengths[month])
        second = self.rng.choice(24, size=len(day), p=self.hours / self.hours.sum()) * 3600
        second += self.rng.integers(0, 3600, size=len(day))
        extras = {column: values[self.rng.choice(len(values), size=len(day), p=p)]
                  for column, (values, p) in self.extras.items()}
        order = np.lexsort((cat, area, second, day))
        day, second, area, cat = day[order], second[order], area[order], cat[order]
        years = window.day_years(0, window.total_days)[day]
        c = self.columns
        out = {
            c["id"]: formats.sequence_ids(require(self.spec, "id_template", self.where, str), years, self.where),
            c["time"]: formats.datetimes(window, day, second, require(self.spec, "datetime_format", self.where, str), self.where),
            c["area"]: np.asarray(self.ctx.areas.codes, dtype=object)[area],
            c["category"]: np.asarray(self.categories, dtype=object)[cat],
        }
        for column, values in extras.items():
            out[column] = values[order]
        return out
