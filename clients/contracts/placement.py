"""Placing records on the area-period grid: events in their month, intervals in every month they span.

Shared by the generic ops and the partners' ops, so that "cases open in the month" means the same
thing everywhere: start <= month end and (end empty or end >= month start). Everything is numpy:
`bincount` for sums, a difference array plus cumulative sum for intervals.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from clients.contracts.register import Grid
from clients.contracts.spec import Contract
from clients.contracts.validation import Table
from federation.errors import ContractError


@dataclass
class OpContext:
    """What an op may read: the contract, the validated tables and the grid."""

    contract: Contract
    tables: Mapping[str, Table]
    grid: Grid
    _areas: dict[str, np.ndarray] = field(default_factory=dict)

    def table(self, name: str) -> Table:
        return self.tables[name]

    def area_index(self, table: Table) -> np.ndarray:
        """Grid area index of each row of `table` (-1: none), computed once per table."""
        if table.area is None:
            raise self.contract.error(f"table '{table.spec.name}' has no area column; it cannot be placed on areas")
        if table.spec.name not in self._areas:
            self._areas[table.spec.name] = self.grid.area_index(table.area)
        return self._areas[table.spec.name]

    def per_1000(self, values: np.ndarray) -> np.ndarray:
        """Divide by the area's residents (register, year of the period) and multiply by 1,000."""
        if self.grid.population is None:
            raise self.contract.error("per_1000 needs populations from the public area register")
        pop = self.grid.population.reshape(-1)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(pop > 0, values / pop * 1000.0, np.nan)


def contains(series, value: str, separator: str) -> np.ndarray:
    """Rows whose `separator`-separated list holds exactly `value` (not merely a substring of an item)."""
    sep = re.escape(separator)
    pattern = f"(?:^|{sep}){re.escape(value)}(?:{sep}|$)"
    return series.fillna("").astype(str).str.contains(pattern, regex=True).to_numpy(dtype=bool)


def where_mask(table: Table, where: Mapping[str, Any] | None) -> np.ndarray:
    """Rows whose columns equal the given value (or one of the given values) for every column named."""
    mask = np.ones(len(table), dtype=bool)
    for column, wanted in (where or {}).items():
        values = list(wanted) if isinstance(wanted, (list, tuple)) else [wanted]
        series = table.data[column]
        if table.columns[column].type in ("integer", "float"):
            values = [float(v) for v in values]
        else:
            values = [str(v) for v in values]
        mask &= series.isin(values).to_numpy()
    return mask


def event_sums(ctx: OpContext, table: Table, time: str | None, mask: np.ndarray,
               weights: np.ndarray | None = None) -> np.ndarray:
    """Per grid row: number (or sum of `weights`) of selected records dated in that period."""
    grid = ctx.grid
    months = table.months(time) if time is not None and grid.months is not None else None
    pos = grid.positions(ctx.area_index(table), grid.period_index(months, len(table)))
    keep = mask & (pos >= 0)
    if weights is not None:
        keep &= ~np.isnan(weights)
    w = None if weights is None else weights[keep]
    return np.bincount(pos[keep], weights=w, minlength=grid.size).astype("float64")


def check_order(table: Table, start: str, end: str) -> None:
    """An interval may not end before it starts: refuse the first such record."""
    s, e = table.data[start], table.data[end]
    bad = (e.notna() & s.notna() & (e < s)).to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        more = int(bad.sum()) - 1
        shown = "%Y-%m-%d %H:%M:%S" if table.columns[end].type == "datetime" else "%Y-%m-%d"
        raise ContractError(f"{table.raw.where(row, end)}: {end} {e.iloc[row]:{shown}} is before {start} "
                            f"{s.iloc[row]:{shown}}" + (f" ({more} more row(s) like it)" if more else ""))


def interval_sums(ctx: OpContext, table: Table, start: str, end: str, mask: np.ndarray,
                  weights: np.ndarray | None = None) -> np.ndarray:
    """Per grid row: number (or sum of `weights`) of selected records open at any time in that period.

    Open in month m: start month <= m and (end empty or end month >= m).
    """
    grid = ctx.grid
    check_order(table, start, end)
    area = ctx.area_index(table)
    keep = mask & (area >= 0)
    if weights is not None:
        keep &= ~np.isnan(weights)
    if grid.months is None:  # one fixed period: every record counts once
        return event_sums(ctx, table, None, keep, weights)
    n_p = len(grid.periods)
    s = table.months(start) - grid.months[0]
    e_raw = table.months(end)
    e = np.where(e_raw < 0, n_p - 1, e_raw - grid.months[0])
    keep &= (table.months(start) >= 0) & (s <= n_p - 1) & (e >= 0)
    s, e = np.clip(s, 0, n_p - 1)[keep], np.clip(e, 0, n_p - 1)[keep]
    a = area[keep]
    w = np.ones(len(a)) if weights is None else weights[keep]
    width = n_p + 1
    diff = np.bincount(a * width + s, weights=w, minlength=len(grid.areas) * width)
    diff -= np.bincount(a * width + e + 1, weights=w, minlength=len(grid.areas) * width)
    return np.cumsum(diff.reshape(len(grid.areas), width), axis=1)[:, :n_p].reshape(-1)


Segments = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def event_segments(ctx: OpContext, table: Table, time: str | None) -> Segments:
    """(row, area index, first period, last period) of every record placed in its month.

    Used to count how many area-period rows one person touches (the privacy unit's k)."""
    grid = ctx.grid
    months = table.months(time) if time is not None and grid.months is not None else None
    p = grid.period_index(months, len(table))
    area = ctx.area_index(table)
    rows = np.flatnonzero((area >= 0) & (p >= 0))
    return rows, area[rows], p[rows], p[rows]


def interval_segments(ctx: OpContext, table: Table, start: str, end: str) -> Segments:
    """(row, area index, first period, last period) of every record over the months it is open."""
    grid = ctx.grid
    if grid.months is None:
        return event_segments(ctx, table, None)
    n_p = len(grid.periods)
    area = ctx.area_index(table)
    s = table.months(start) - grid.months[0]
    e_raw = table.months(end)
    e = np.where(e_raw < 0, n_p - 1, e_raw - grid.months[0])
    keep = (area >= 0) & (table.months(start) >= 0) & (s <= n_p - 1) & (e >= 0) & (e >= s)
    rows = np.flatnonzero(keep)
    return rows, area[rows], np.clip(s[rows], 0, n_p - 1), np.clip(e[rows], 0, n_p - 1)
