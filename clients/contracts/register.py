"""The public area register and the area-period grid every feature is computed on.

The register (`public/areas.csv`: area_code, area_name, year, population) has the same fixed form on
every node. Populations are looked up for the year of each period; a year the register does not have
takes the latest earlier year (registers lag a year or two), else the earliest year.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from clients.contracts.periods import period_years
from clients.contracts.reading import read_raw
from clients.contracts.spec import ColumnSpec, TableSpec
from clients.contracts.validation import Table, validate
from federation.errors import ContractError

REGISTER_COLUMNS = {
    "area_code": ColumnSpec("area_code", "string"),
    "area_name": ColumnSpec("area_name", "string", nullable=True),
    "year": ColumnSpec("year", "integer", min=1800, max=2200),
    "population": ColumnSpec("population", "integer", min=0),
}


def read_register(node_dir: Path, path: str) -> Table:
    """The validated area register; (area_code, year) must be unique."""
    spec = TableSpec(name="area_register", path=path, format="csv", columns=REGISTER_COLUMNS, fixed_form=True)
    table = validate(read_raw(spec, node_dir), spec, node_dir, known_areas=None, register=path)
    keys = table.data[["area_code", "year"]]
    dup = keys.duplicated(keep="first").to_numpy()
    if dup.any():
        row = int(np.flatnonzero(dup)[0])
        raise ContractError(f"{table.raw.where(row, 'area_code')}: area {keys.iloc[row, 0]!r} appears twice for "
                            f"year {keys.iloc[row, 1]} (one row per area and year)")
    return table


@dataclass
class Grid:
    """All (area, period) rows of a node, area-major: row = area_index * n_periods + period_index."""

    areas: np.ndarray                 # sorted area codes
    periods: list[str]
    months: np.ndarray | None         # month index per period (None: one fixed period)
    population: np.ndarray | None     # (n_areas, n_periods) residents, None without a register

    @property
    def size(self) -> int:
        return len(self.areas) * len(self.periods)

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame({
            "area_code": np.repeat(self.areas, len(self.periods)).astype(object),
            "period": np.tile(np.array(self.periods, dtype=object), len(self.areas)),
        })

    def area_index(self, codes: np.ndarray) -> np.ndarray:
        """Index of each code in `areas`, -1 where a code is missing or unknown (looked up per distinct code)."""
        row_codes, uniques = pd.factorize(pd.Series(codes, dtype=object), use_na_sentinel=True)
        if len(uniques) == 0:
            return np.full(len(row_codes), -1, dtype=np.int64)
        known = self.areas.astype(str)
        wanted = np.asarray(uniques, dtype=object).astype(str)
        idx = np.clip(np.searchsorted(known, wanted), 0, max(len(known) - 1, 0))
        found = np.where(known[idx] == wanted, idx, -1) if len(known) else np.full(len(wanted), -1)
        return np.where(row_codes >= 0, found[np.maximum(row_codes, 0)], -1).astype(np.int64)

    def period_index(self, months: np.ndarray | None, n: int) -> np.ndarray:
        """Index of each month in the covered periods, -1 outside them; all 0 for a fixed period."""
        if self.months is None:
            return np.zeros(n, dtype=np.int64)
        assert months is not None
        idx = months - self.months[0]
        return np.where((months >= 0) & (idx >= 0) & (idx < len(self.periods)), idx, -1)

    def positions(self, area_idx: np.ndarray, period_idx: np.ndarray) -> np.ndarray:
        """Flat grid row of each record, -1 where it falls outside the grid."""
        ok = (area_idx >= 0) & (period_idx >= 0)
        return np.where(ok, area_idx * len(self.periods) + period_idx, -1)


def asof_years(pivot: pd.DataFrame, periods: list[str]) -> np.ndarray:
    """Values of an (area x year) table for the year of each period, shape (n_areas, n_periods).

    A year the table lacks takes the latest earlier year of that area (registers lag), else its earliest.
    """
    pivot = pivot.sort_index(axis=1)
    years = np.array(pivot.columns, dtype=np.int64)
    pos = np.searchsorted(years, period_years(periods), side="right") - 1
    filled = pivot.ffill(axis=1).bfill(axis=1).to_numpy(dtype="float64")
    return filled[:, np.where(pos < 0, 0, pos)]


def populations(register: Table, areas: np.ndarray, periods: list[str]) -> np.ndarray:
    """Residents of each area in the year of each period, shape (n_areas, n_periods)."""
    pivot = register.data.pivot(index="area_code", columns="year", values="population")
    return asof_years(pivot.reindex(index=list(areas)), periods)


def build_grid(register: Table | None, area_codes: np.ndarray | None, periods: list[str],
               months: np.ndarray | None) -> Grid:
    """The grid: register areas (or the areas of the register table) times the covered periods."""
    if register is not None:
        areas = np.array(sorted(set(register.data["area_code"])), dtype=object)
        pop = populations(register, areas, periods)
    else:
        assert area_codes is not None
        areas = np.array(sorted(set(a for a in area_codes if a is not None)), dtype=object)
        pop = None
    return Grid(areas=areas, periods=periods, months=months, population=pop)
