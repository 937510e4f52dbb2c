"""Case-file tables (benefit files, social-care cases): one row per case with start and end date.

Each stream (a benefit scheme, or the single stream of a care team) has a stock of open cases per
1,000 inhabitants and a mean duration. Intakes per area and month are Poisson around the latent-
modulated rate stock / duration, durations are exponential, and the cases open when the window
starts are back-dated. So the open stock in a month follows the latent state of recent months, and
the export shows what an organisation holds at the end of the window (cases still open: no end).
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from federation.errors import ConfigError
from devtools.synthetic import formats, intensity
from devtools.synthetic.context import CityContext, Demand, require
from devtools.synthetic.table import RawTable

_DAYS_PER_MONTH = 30.44
_MAX_AGE_MEANS = 3.0  # open files at the window start are back-dated by at most 3 mean durations


class CasesTable(RawTable):
    """Case files of one or more streams, optionally with problem domains and contact hours."""

    required_columns = ("id", "household", "area", "start", "end")

    def __init__(self, ctx: CityContext, node: str, name: str, spec: dict):
        super().__init__(ctx, node, name, spec)
        streams = require(spec, "streams", self.where, dict)
        if "category" not in self.columns and len(streams) != 1:
            raise ConfigError(f"{self.where}: several streams need a 'columns.category' column")
        self.streams = list(streams)
        pop = ctx.population
        self.mean_days, self.intake, self.stock = [], [], []
        for s in self.streams:
            where = f"{self.where} streams.{s}"
            st = streams[s]
            open_rate = float(require(st, "open_per_1000", where, (int, float)))
            months = float(require(st, "mean_months", where, (int, float)))
            if months <= 0 or open_rate < 0:
                raise ConfigError(f"{where}: 'mean_months' must be > 0 and 'open_per_1000' >= 0")
            raw = intensity.factor(ctx.latent, st.get("loadings"),
                                   float(st.get("noise_sd", 0.0)), self.rng, where)
            norm = intensity.per_city(raw, pop)
            self.intake.append(intensity.monthly_counts(open_rate * 12.0 / months, pop, norm))
            self.stock.append(open_rate * pop[:, 0] / 1000.0 * norm[:, 0])
            self.mean_days.append(months * _DAYS_PER_MONTH)

    def demand(self) -> Demand:
        return Demand(fixed=float(sum(i.sum() for i in self.intake) + sum(s.sum() for s in self.stock)))

    def _sample(self) -> dict[str, np.ndarray]:
        window, rng = self.ctx.window, self.rng
        parts = []
        for k, (intake, stock, mean) in enumerate(zip(self.intake, self.stock, self.mean_days)):
            n0 = rng.poisson(stock)
            area0 = np.repeat(np.arange(len(n0)), n0)
            age = rng.exponential(mean, len(area0)) % (_MAX_AGE_MEANS * mean)  # no decades-old files
            start0 = -1 - np.floor(age).astype(np.int64)
            end0 = np.floor(rng.exponential(mean, len(area0))).astype(np.int64)
            counts = rng.poisson(intake)
            area1, month1 = np.unravel_index(np.repeat(np.arange(counts.size), counts.ravel()), counts.shape)
            start1 = window.first_days[month1] + rng.integers(0, window.month_lengths[month1])
            end1 = start1 + np.floor(rng.exponential(mean, len(area1))).astype(np.int64)
            parts.append((np.full(len(area0) + len(area1), k), np.r_[area0, area1],
                          np.r_[np.zeros(len(area0), np.int64), month1], np.r_[start0, start1], np.r_[end0, end1]))
        stream, area, month, start, end = (np.concatenate(p) for p in zip(*parts))
        end = np.where(end >= window.total_days, formats.MISSING_DAY, end)
        return {"stream": stream, "area": area, "month": month, "start": start, "end": end}

    def _domains(self, area: np.ndarray, month: np.ndarray) -> tuple[np.ndarray, list[str]]:
        """(n, D) membership: each domain with its latent-modulated probability, at least one."""
        spec = require(self.spec, "domains", self.where, dict)
        names, probs = list(spec), []
        for d in names:
            where = f"{self.where} domains.{d}"
            raw = intensity.factor(self.ctx.latent, spec[d].get("loadings"),
                                   float(spec[d].get("noise_sd", 0.0)), self.rng, where)
            p = float(require(spec[d], "probability", where, (int, float))) * intensity.per_city(raw, self.ctx.population)
            probs.append(np.clip(p[area, month], 0.0, 0.95))
        p = np.column_stack(probs)
        member = self.rng.random(p.shape) < p
        none = ~member.any(axis=1)
        pick = (p[none].cumsum(axis=1) / p[none].sum(axis=1, keepdims=True) > self.rng.random((none.sum(), 1))).argmax(axis=1)
        member[np.flatnonzero(none), pick] = True
        return member, names

    def _hours(self, area: np.ndarray, month: np.ndarray, n_domains: np.ndarray) -> np.ndarray:
        spec = require(self.spec, "hours", self.where, dict)
        where = f"{self.where} hours"
        raw = intensity.factor(self.ctx.latent, spec.get("loadings"),
                               float(spec.get("noise_sd", 0.0)), self.rng, where)
        norm = intensity.per_city(raw, self.ctx.population)[area, month]
        mean = (float(require(spec, "base", where, (int, float))) + float(spec.get("per_domain", 0.0)) * n_domains) * norm
        shape = float(spec.get("shape", 2.0))
        return np.round(self.rng.gamma(shape, mean / shape), 1)

    def _households(self, area: np.ndarray) -> np.ndarray:
        areas = self.ctx.areas
        size = np.maximum(areas.attributes["household_size"][:, 0], 1.0)
        pool = np.maximum(1, np.round(areas.population[:, 0] / size)).astype(np.int64)
        offset = np.r_[0, np.cumsum(pool)[:-1]]
        return offset[area] + self.rng.integers(0, pool[area])

    def render(self, rows: float | None = None) -> dict[str, np.ndarray]:
        ctx, c, spec = self.ctx, self.columns, self.spec
        s = self._sample()
        household = self._households(s["area"])
        member, names = self._domains(s["area"], s["month"]) if "domains" in c else (None, [])
        hours = self._hours(s["area"], s["month"], member.sum(axis=1) if member is not None else 0) if "hours" in c else None
        key = int(self.rng.integers(1, 2**40))
        order = np.lexsort((s["stream"], s["area"], s["start"]))
        start, end = s["start"][order], s["end"][order]
        lo, hi = int(start.min(initial=0)), int(start.max(initial=0))
        years = ctx.window.day_years(lo, hi)[start - lo]
        out = {
            c["id"]: formats.sequence_ids(require(spec, "id_template", self.where, str), years, self.where),
            c["household"]: formats.pseudonyms(require(spec, "household_template", self.where, str),
                                               household[order], key, self.where),
            c["area"]: np.asarray(ctx.areas.codes, dtype=object)[s["area"][order]],
        }
        if "category" in c:
            out[c["category"]] = np.asarray(self.streams, dtype=object)[s["stream"][order]]
        out[c["start"]] = self._dates(start)
        out[c["end"]] = self._dates(end)
        if member is not None:
            sep = str(spec.get("domain_separator", "|"))
            combos = np.asarray([sep.join(n for j, n in enumerate(names) if code >> j & 1)
                                 for code in range(2 ** len(names))], dtype=object)
            out[c["domains"]] = combos[member[order] @ (1 << np.arange(len(names)))]
        if hours is not None:
            out[c["hours"]] = hours[order] if self.format.kind == "parquet" else \
                formats.numbers(hours[order], 1, self.format.decimal)
        return out

    def _dates(self, offsets: np.ndarray) -> np.ndarray | pa.Array:
        if self.format.kind == "parquet":
            missing = offsets == formats.MISSING_DAY
            days = (self.ctx.window.origin - np.datetime64("1970-01-01", "D")).astype(np.int64) + np.where(missing, 0, offsets)
            return pa.array(days.astype(np.int32), type=pa.int32(), mask=missing).cast(pa.date32())
        return formats.days(self.ctx.window, offsets, require(self.spec, "date_format", self.where, str), self.where)
