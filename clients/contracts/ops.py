"""Aggregation ops: one small interface, a few implementations, referred to by name from contract YAML.

An op says which raw columns it reads (`uses`, so protected attributes can be refused before any data
is touched), which records it places on which area-period rows (`segments`, so the privacy unit's k can
be checked), and computes one value per grid row (`compute`). Generic ops live here; partner-specific
ones in `clients/<partner>/features.py`; `registry.py` names them all.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Mapping

import numpy as np
import pandas as pd

from clients.contracts import expr as expression
from clients.contracts.placement import OpContext, Segments, event_segments, interval_segments
from clients.contracts.register import asof_years
from clients.contracts.series import Series, placement_of, where_items
from federation.grammar import Key as Param
from clients.contracts.spec import NUMERIC_TYPES, TIME_TYPES, Contract, FeatureSpec

FILTER_TYPES = ("category", "string", "integer")

# Parameters several ops share, declared once (the reference documents them from here).
TABLE = Param("table", "text", "The declared table the feature reads.", required=True)
TIME = Param("time", "text", "Monthly data: the date column placing each record in its month.")
INTERVAL = Param("interval", "list", "Monthly data: `[start column, end column]`; a record counts in every month "
                                     "it is open (end empty: still open).")
WHERE = Param("where", "mapping", "Only records whose columns hold these values: `{column: value or [values]}`.")
PER_1000 = Param("per_1000", "boolean", "Divide by the area's residents (area register) and multiply by 1,000.",
                 default=False)


@dataclass(frozen=True)
class ColumnUse:
    """One raw column a feature reads, and the column types that make sense for that role."""

    table: str
    column: str
    kinds: tuple[str, ...]
    role: str


class Op:
    """Base of every aggregation op. Subclasses declare their `params` (types, defaults, meaning) and a
    YAML `example`; `required` and `optional` follow from `params`, and so does docs/contract-reference.md."""

    name: ClassVar[str] = ""
    params: ClassVar[tuple[Param, ...]] = ()
    example: ClassVar[str] = ""
    required: ClassVar[tuple[str, ...]] = ()
    optional: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.required = tuple(p.name for p in cls.params if p.required)
        cls.optional = tuple(p.name for p in cls.params if not p.required)

    def uses(self, p: Mapping[str, Any]) -> list[ColumnUse]:
        raise NotImplementedError

    def series(self, p: Mapping[str, Any], contract: Contract) -> list[Series] | None:
        """The counts and sums per cell this feature is computed from (what a DP release noises), or None
        for an op that reads a public table directly (`compute`)."""
        return None

    def finish(self, p: Mapping[str, Any], values: list[np.ndarray], ctx: OpContext) -> np.ndarray:
        """The feature from its series (exact or noised): post-processing only, never raw records."""
        raise NotImplementedError

    def compute(self, p: Mapping[str, Any], ctx: OpContext) -> np.ndarray:
        """The feature of an op without series, from its (public) table."""
        raise NotImplementedError

    def noise_sd(self, p: Mapping[str, Any], sds: list[np.ndarray], ctx: OpContext) -> np.ndarray | None:
        """Per cell, the standard deviation of the noise a release put in the feature, given its series' noise
        `sds`; None where it is not known in closed form (a non-linear op). Lets the coordinator shrink
        noisy area means by their known noise, at no privacy cost."""
        return None

    def segments(self, p: Mapping[str, Any], ctx: OpContext) -> Segments:
        """Records this op places on the grid; by default those of its `time` or `interval`."""
        table = ctx.table(p["table"])
        if "interval" in p:
            return interval_segments(ctx, table, p["interval"][0], p["interval"][1])
        return event_segments(ctx, table, p.get("time"))

    def check(self, p: Mapping[str, Any], feature: FeatureSpec, contract: Contract) -> None:
        """Checks beyond names and column types (raise `contract.error(...)`)."""


def _series(p: Mapping[str, Any], contract: Contract, **extra: Any) -> Series:
    return Series(table=str(p["table"]), placement=placement_of(p, contract.periods.kind == "month"),
                  where=where_items(p.get("where")), **extra)


def check_clipped(table: str, column: str, feature: FeatureSpec, contract: Contract) -> None:
    """A summed column of a private table needs clip bounds: they are its release's sensitivity."""
    spec = contract.tables.get(table)
    if spec is not None and column in spec.columns and not spec.privacy.is_public and column not in spec.privacy.clip:
        raise contract.error(f"{feature.where()}: column '{column}' of table '{table}' is summed, so the "
                             f"table's privacy.clip must bound it (e.g. clip: {{{column}: [low, high]}})")


def mean_of(total: np.ndarray, count: np.ndarray, low: float, high: float, fill: float) -> np.ndarray:
    """total / count where at least one (noised) record is counted, kept within the values' own range."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(count >= 1, np.clip(total / np.maximum(count, 1), low, high), fill)


def _where_uses(p: Mapping[str, Any]) -> list[ColumnUse]:
    return [ColumnUse(p["table"], str(c), FILTER_TYPES, "filter (where)") for c in (p.get("where") or {})]


def _placement_uses(p: Mapping[str, Any]) -> list[ColumnUse]:
    if "interval" in p:
        start, end = p["interval"]
        return [ColumnUse(p["table"], str(start), TIME_TYPES, "interval start"),
                ColumnUse(p["table"], str(end), TIME_TYPES, "interval end")]
    if "time" in p:
        return [ColumnUse(p["table"], str(p["time"]), TIME_TYPES, "time")]
    return []


def _check_placement(p: Mapping[str, Any], feature: FeatureSpec, contract: Contract) -> None:
    has_time, has_interval = "time" in p, "interval" in p
    if has_time and has_interval:
        raise contract.error(f"{feature.where()}: give either `time` or `interval`, not both")
    if has_interval and (not isinstance(p["interval"], (list, tuple)) or len(p["interval"]) != 2):
        raise contract.error(f"{feature.where()}: `interval` must be [start column, end column]")
    if contract.periods.kind == "month" and not (has_time or has_interval):
        raise contract.error(f"{feature.where()}: monthly features need `time` (event date) or "
                             "`interval` ([start, end]) to place records in months")
    if p.get("per_1000") and contract.register_path is None:
        raise contract.error(f"{feature.where()}: per_1000 needs populations from an area register `path`")


class Count(Op):
    """Number of records per area-period (events in their month, or intervals open in it), optionally
    filtered with `where` and per 1,000 residents."""

    name = "count"
    params = (TABLE, TIME, INTERVAL, WHERE, PER_1000)
    example = "burglary_per_1000: {op: count, table: incidents, time: registered, where: {kind: burglary}, per_1000: true}"

    def uses(self, p):
        return _placement_uses(p) + _where_uses(p)

    def check(self, p, feature, contract):
        _check_placement(p, feature, contract)

    def series(self, p, contract):
        return [_series(p, contract)]

    def finish(self, p, values, ctx):
        return ctx.per_1000(values[0]) if p.get("per_1000") else values[0]

    def noise_sd(self, p, sds, ctx):
        return self.finish(p, sds, ctx)   # linear and positively homogeneous in its one series


class Mean(Op):
    """Mean of a numeric column over the records of an area-period; `fill` where there are none
    (without `fill` such rows are missing and left out of the block)."""

    name = "mean"
    params = (TABLE, Param("column", "text", "The numeric column averaged (its table's privacy.clip must bound it).",
                           required=True),
              TIME, INTERVAL, WHERE, Param("fill", "number", "The value where an area-period has no record "
                                                             "(without it such rows are left out)."))
    example = "mean_score: {op: mean, table: survey, column: score, time: month, fill: 0}"

    def uses(self, p):
        return [ColumnUse(p["table"], str(p["column"]), NUMERIC_TYPES, "value")] + _placement_uses(p) + _where_uses(p)

    def check(self, p, feature, contract):
        _check_placement(p, feature, contract)
        check_clipped(str(p["table"]), str(p["column"]), feature, contract)

    def series(self, p, contract):
        column = str(p["column"])
        return [_series(p, contract, values=(column,)), _series(p, contract, require=(column,))]

    def finish(self, p, values, ctx):
        total, count = values
        low, high = ctx.contract.tables[str(p["table"])].privacy.clip.get(str(p["column"]), (-np.inf, np.inf))
        return mean_of(total, count, low, high, np.nan if p.get("fill") is None else float(p["fill"]))


class AreaValue(Op):
    """A value the node holds per area (and year): e.g. a register figure. `year` names the year column
    (the value of the period's year, else the latest earlier year); `scale` multiplies (unit changes such
    as percent -> share); `apply: log | log1p` transforms."""

    name = "area_value"
    APPLY: ClassVar[dict[str, Any]] = {"log": np.log, "log1p": np.log1p}
    SHAPING: ClassVar[tuple[Param, ...]] = (
        Param("year", "text", "The integer year column: the value of the period's year, else the latest earlier "
                              "year."),
        Param("scale", "number", "Multiply by this (unit changes such as percent -> share).", default=1),
        Param("apply", "text", "Transform after scaling; a result that is not finite is missing.",
              choices=tuple(APPLY)),
    )
    params = (TABLE, Param("column", "text", "The numeric column holding the value.", required=True)) + SHAPING
    example = "log_population: {op: area_value, table: register, column: population, year: year, apply: log}"

    def uses(self, p):
        return self._value_uses(p) + self._year_uses(p)

    def _value_uses(self, p):
        return [ColumnUse(p["table"], str(p["column"]), NUMERIC_TYPES, "value")]

    def _year_uses(self, p):
        out = []
        if p.get("year"):
            out.append(ColumnUse(p["table"], str(p["year"]), ("integer",), "year"))
        return out

    def check(self, p, feature, contract):
        table = contract.tables.get(str(p["table"]))
        if table is not None and not table.privacy.is_public:
            raise contract.error(f"{feature.where()}: op {self.name} reads published values; table '{p['table']}' "
                                 f"must declare privacy.unit: public (it protects {table.privacy.describe()})")
        if p.get("apply") is not None and p["apply"] not in self.APPLY:
            raise contract.error(f"{feature.where()}: apply must be one of {', '.join(self.APPLY)}; "
                                 f"got {p['apply']!r}")
        if p.get("scale") is not None and not isinstance(p["scale"], (int, float)):
            raise contract.error(f"{feature.where()}: scale must be a number; got {p['scale']!r}")

    def segments(self, p, ctx):
        table = ctx.table(p["table"])
        area = ctx.area_index(table)
        rows = np.flatnonzero(area >= 0)
        n_p = max(len(ctx.grid.periods), 1)
        # a register value is used for every period of its area (the as-of rule may carry it forward)
        return rows, area[rows], np.zeros(len(rows), np.int64), np.full(len(rows), n_p - 1, np.int64)

    def compute(self, p, ctx):
        table = ctx.table(p["table"])
        grid = ctx.grid
        area = ctx.area_index(table)
        values = self.row_values(p, ctx)
        keep = area >= 0
        key = pd.DataFrame({"area": area[keep]})
        if p.get("year"):
            key["year"] = table.data[p["year"]].to_numpy()[keep]
        dup = key.duplicated().to_numpy()
        if dup.any():
            row = int(np.flatnonzero(keep)[np.flatnonzero(dup)[0]])
            what = "area and year" if p.get("year") else "area"
            raise ctx.contract.error(f"table '{p['table']}' has more than one row per {what} "
                                     f"({table.raw.locate(row)} repeats an earlier one); "
                                     f"op {self.name} needs one value per {what}")
        if p.get("year"):
            key["value"] = values[keep]
            pivot = key.pivot(index="area", columns="year", values="value").reindex(range(len(grid.areas)))
            out = asof_years(pivot, grid.periods).reshape(-1)
        else:
            per_area = np.full(len(grid.areas), np.nan)
            per_area[area[keep]] = values[keep]
            out = np.repeat(per_area, len(grid.periods))
        if p.get("scale") is not None:
            out = out * float(p["scale"])
        if p.get("apply"):
            with np.errstate(divide="ignore", invalid="ignore"):
                out = self.APPLY[p["apply"]](out)
            out = np.where(np.isfinite(out), out, np.nan)
        return out

    def row_values(self, p: Mapping[str, Any], ctx: OpContext) -> np.ndarray:
        """The value of each row of the table, before the per-area placement."""
        return ctx.table(p["table"]).data[p["column"]].to_numpy(dtype="float64")


class Expr(AreaValue):
    """A value derived per row of one published table from its columns and numbers with + - * / and
    parentheses (e.g. `children / population`), then placed per area (and year) like area_value. A division
    by zero or a missing operand gives a missing value. No code: a tiny grammar, no functions, no attributes."""

    name = "expr"
    params = (TABLE, Param("expr", "text", "The expression, e.g. `\"children / population\"`: column names, "
                                           "numbers, + - * / and parentheses.", required=True)) + AreaValue.SHAPING
    example = 'share_0_15: {op: expr, table: register, expr: "children / population", year: year}'

    def _value_uses(self, p):
        try:
            cols = expression.columns(expression.parse(p["expr"]))
        except expression.ExprError:
            return []   # `check` names the syntax error
        return [ColumnUse(p["table"], c.name, NUMERIC_TYPES, f"operand at position {c.position + 1} of expr")
                for c in cols]

    def check(self, p, feature, contract):
        text = p["expr"]
        if not isinstance(text, str):
            raise contract.error(f"{feature.where()}: expr must be a text such as \"a / b\"; got {text!r}")
        try:
            tree = expression.parse(text)
        except expression.ExprError as err:
            raise contract.error(f"{feature.where()}: expr {text!r}, position {err.position + 1}: {err}") from None
        table = contract.tables.get(str(p["table"]))
        for col in expression.columns(tree):
            if table is not None and not table.columns_from and col.name not in table.columns:
                raise contract.error(f"{feature.where()}: expr {text!r}, position {col.position + 1}: column "
                                     f"'{col.name}' is not a column of table '{p['table']}' "
                                     f"({', '.join(table.columns)})")
        super().check(p, feature, contract)

    def row_values(self, p, ctx):
        table = ctx.table(p["table"])
        tree = expression.parse(p["expr"])
        data = {c.name: table.data[c.name].to_numpy(dtype="float64") for c in expression.columns(tree)}
        return expression.evaluate(tree, data, len(table))
