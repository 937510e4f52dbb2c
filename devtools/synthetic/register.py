"""Register aggregates per area and year (the `context` block's source, plus audit-only columns)."""
from __future__ import annotations

import numpy as np

from federation.errors import ConfigError
from devtools.synthetic import formats
from devtools.synthetic.areas import ATTRIBUTES
from devtools.synthetic.context import CityContext, Demand, require
from devtools.synthetic.writer import FileFormat


class RegisterTable:
    """One row per area and year; `scale` converts canonical units into the city's own (EUR, percent);
    `decimals` is a number or a mapping attribute -> places with a `default`."""

    def __init__(self, ctx: CityContext, node: str, name: str, spec: dict):
        self.ctx, self.node, self.name, self.spec = ctx, node, name, spec
        self.where = f"{ctx.where} (nodes.{node}.{name})"
        self.path = str(require(spec, "file", self.where, str))
        self.format = FileFormat.from_spec(spec, self.where)
        self.columns = require(spec, "columns", self.where, dict)
        for key in ("area", "year", "population"):
            require(self.columns, key, f"{self.where} columns", str)
        unknown = set(self.columns) - {"area", "year", "population", *ATTRIBUTES}
        if unknown:
            raise ConfigError(f"{self.where}: field 'columns.{sorted(unknown)[0]}' is not a register attribute "
                              f"({', '.join(ATTRIBUTES)})")
        unknown = set(spec.get("scale", {}) or {}) - set(ATTRIBUTES)
        if unknown:
            raise ConfigError(f"{self.where}: field 'scale' names unknown attribute '{sorted(unknown)[0]}'")

    def demand(self) -> Demand:
        return Demand(fixed=float(self.ctx.areas.count * len(self.ctx.areas.years)))

    def render(self, rows: float | None = None) -> dict[str, np.ndarray]:
        areas, c = self.ctx.areas, self.columns
        a, y = np.meshgrid(np.arange(areas.count), np.arange(len(areas.years)), indexing="ij")
        a, y = a.ravel(), y.ravel()
        decimals = self.spec.get("decimals", 4)
        places = (lambda name: int(decimals.get(name, decimals.get("default", 4)))) if isinstance(decimals, dict) \
            else (lambda name: int(decimals))
        scale = self.spec.get("scale", {}) or {}
        out = {
            c["area"]: np.asarray(areas.codes, dtype=object)[a],
            c["year"]: np.asarray(areas.years, dtype=np.int64)[y],
            c["population"]: areas.population[a, y],
        }
        for name in (n for n in ATTRIBUTES if n in c):  # a city writes only the attributes it holds
            values = np.round(areas.attributes[name][a, y] * float(scale.get(name, 1.0)), places(name)) + 0.0
            out[c[name]] = values if self.format.kind == "parquet" else formats.numbers(values, places(name), self.format.decimal)
        if self.format.kind != "parquet":
            out[c["year"]] = out[c["year"]].astype(str).astype(object)
            out[c["population"]] = out[c["population"]].astype(str).astype(object)
        return out
