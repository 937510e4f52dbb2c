"""Periods: months as integers (year * 12 + month - 1) for fast grouping, `YYYY-MM` at the edges."""
from __future__ import annotations

import datetime as dt
import re
from typing import Mapping

import numpy as np

from clients.contracts.spec import Contract
from clients.contracts.validation import Table

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
# Without a declared window, one export spans at most this many months: beyond it, the earliest or latest
# date is far more likely a typing error (1900, 2099) than data, and would silently stretch the grid.
MAX_UNDECLARED_SPAN = 120


def month_index(text: str, where: str, fail) -> int:
    """`YYYY-MM` -> year * 12 + month - 1."""
    m = _MONTH.match(text)
    if not m or not 1 <= int(m.group(2)) <= 12:
        raise fail(f"{where}: {text!r} is not a month 'YYYY-MM'")
    return int(m.group(1)) * 12 + int(m.group(2)) - 1


def month_label(index: int) -> str:
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def covered_periods(contract: Contract, tables: Mapping[str, Table]) -> tuple[list[str], np.ndarray | None]:
    """The node's periods: every month from the first to the last month seen in `periods.from`
    (clamped by `periods.start` / `periods.end`), or the one fixed period. Returns labels and month indices
    (None for a fixed period).

    `periods.not_before` serves exports of case files "open at any time in the window": their opening
    dates reach back years before the window, so the window cannot start before the first month in
    which an exported file was closed (files closed earlier are not in the export)."""
    spec = contract.periods
    if spec.kind == "fixed":
        return [str(spec.value)], None
    lows, highs = [], []
    now = dt.date.today()
    this_month = now.year * 12 + now.month - 1
    for table, column in spec.sources:
        all_months = tables[table].months(column)
        future = np.flatnonzero(all_months > this_month)
        if len(future):
            raise contract.error(
                f"{tables[table].raw.where(int(future[0]), column)}: dated {month_label(int(all_months[future[0]]))}, "
                f"after this month ({month_label(this_month)}); {len(future)} record(s) like it. An export holds no "
                "future events: fix the date (a typing error?) before the node builds anything")
        months = all_months[all_months >= 0]
        if len(months):
            lows.append(int(months.min()))
            highs.append(int(months.max()))
    if not lows:
        refs = ", ".join(f"{t}.{c}" for t, c in spec.sources)
        raise contract.error(f"periods.from ({refs}): no dates in the raw data, so no period is covered")
    first, last = min(lows), max(highs)
    for table, column in spec.not_before:
        months = tables[table].months(column)
        months = months[months >= 0]
        if not len(months):
            raise contract.error(f"periods.not_before ({table}.{column}): no dates in the raw data, so the start "
                                 "of the export window is unknown; give it with periods.start=YYYY-MM")
        first = max(first, int(months.min()))
    if spec.start is not None:
        first = max(first, month_index(spec.start, "periods.start", contract.error))
    if spec.end is not None:
        last = min(last, month_index(spec.end, "periods.end", contract.error))
    if last < first:
        raise contract.error(f"periods: start {month_label(first)} is after end {month_label(last)}; "
                             "no period is covered")
    if (spec.start is None or spec.end is None) and last - first >= MAX_UNDECLARED_SPAN:
        _refuse_stretched_window(contract, tables, first, last)
    months = np.arange(first, last + 1, dtype=np.int64)
    return [month_label(int(m)) for m in months], months


def _refuse_stretched_window(contract: Contract, tables: Mapping[str, Table], first: int, last: int) -> None:
    """Name the record that stretches an undeclared window beyond MAX_UNDECLARED_SPAN months."""
    spec = contract.periods
    every = np.concatenate([tables[t].months(c) for t, c in spec.sources])
    median = int(np.median(every[every >= 0]))
    edge = first if median - first > last - median else last
    for table, column in spec.sources + spec.not_before:
        rows = np.flatnonzero(tables[table].months(column) == edge)
        if len(rows):
            where = tables[table].raw.where(int(rows[0]), column)
            break
    else:
        where = "periods"
    raise contract.error(
        f"{where}: dated {month_label(edge)}, which makes the node's months span {month_label(first)} to "
        f"{month_label(last)} ({last - first + 1} months; the middle record is from {month_label(median)}). "
        f"Without a declared window an export may span at most {MAX_UNDECLARED_SPAN} months: fix the date "
        "(a typing error?), or declare the export window with periods.start and periods.end")


def period_years(labels: list[str]) -> np.ndarray:
    """Calendar year of each period label (`YYYY-MM` or `YYYY`)."""
    return np.array([int(p[:4]) for p in labels], dtype=np.int64)
