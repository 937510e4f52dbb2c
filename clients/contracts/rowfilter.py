"""A table's row filter (`where:` on the table): rows that fail it are dropped before anything else.

Applied to the cells as read, before the table is validated, so the rows of other regions in a national
export never have to fit the node's contract (their area codes are not in the node's register). Only the
filter's own columns are read here; a cell there that is not a number where a number is compared is
refused naming its row and column. The rows kept keep their line numbers in every later message.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from clients.contracts.reading import RawTable
from clients.contracts.spec import NUMERIC_TYPES, RowFilter, TableSpec
from clients.contracts.validation import _fail, _missing, _number_text, _show
from federation.errors import ContractError


def _numbers(raw: RawTable, spec: TableSpec, column: str, missing: np.ndarray) -> np.ndarray:
    series = raw.frame[column]
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        return series.astype("float64").to_numpy()
    values, why = _number_text(series, missing, spec)
    bad = why != ""
    if bad.any():
        raise _fail(raw, bad, column, lambda r: f"{_show(series.iloc[r])} is not a number, but the table's `where` "
                                                f"compares column '{column}' with numbers")
    return values


def _matches(raw: RawTable, spec: TableSpec, cond: RowFilter) -> np.ndarray:
    """Rows meeting one condition; a missing value never does."""
    column = cond.column
    if column not in raw.frame.columns:
        raise ContractError(f"{raw.path}: table '{spec.name}': the row filter `where` reads column '{column}', "
                            "which the file does not have")
    missing = _missing(raw.frame[column], spec)
    col = spec.columns.get(column) or spec.column_default
    if col is not None and col.type in NUMERIC_TYPES:
        values = _numbers(raw, spec, column, missing)
        mask = ~missing & ~np.isnan(values)
        pick = lambda texts: np.isin(values, [float(t) for t in texts])  # noqa: E731
    else:
        values = raw.frame[column].astype(str).str.strip().to_numpy(dtype=object)
        mask = ~missing
        pick = lambda texts: np.isin(values, list(texts))  # noqa: E731
    if cond.equals is not None:
        mask &= pick([cond.equals])
    if cond.isin is not None:
        mask &= pick(cond.isin)
    if cond.not_in is not None:
        mask &= ~pick(cond.not_in)
    if cond.min is not None:
        mask &= np.where(mask, values, np.inf).astype("float64") >= cond.min
    if cond.max is not None:
        mask &= np.where(mask, values, -np.inf).astype("float64") <= cond.max
    return mask


def filter_rows(raw: RawTable, spec: TableSpec) -> RawTable:
    """The rows of `raw` that meet every condition of the table's `where` (the table itself without one)."""
    if not spec.where:
        return raw
    n = len(raw.frame)
    mask = np.ones(n, dtype=bool)
    for cond in spec.where:
        mask &= _matches(raw, spec, cond)
    kept = int(mask.sum())
    shown = " and ".join(c.describe() for c in spec.where)
    if n and not kept:
        raise ContractError(f"{raw.path}: table '{spec.name}': the row filter `where` ({shown}) keeps none of the "
                            f"{n:,} rows; check the values against the file")
    rows = np.arange(n) if raw.rows is None else raw.rows
    return dataclasses.replace(
        raw, frame=raw.frame[mask].reset_index(drop=True), rows=rows[mask],
        filtered={"where": shown, "rows_read": n, "rows_kept": kept, "rows_dropped": n - kept})
