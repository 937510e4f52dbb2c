"""Periods: months as integers (year * 12 + month - 1) for fast grouping, `YYYY-MM` at the edges."""
from __future__ import annotations

import re
from typing import Mapping

import numpy as np

from federation.contracts.spec import Contract
from federation.contracts.validation import Table

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


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
    for table, column in spec.sources:
        months = tables[table].months(column)
        months = months[months >= 0]
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
    months = np.arange(first, last + 1, dtype=np.int64)
    return [month_label(int(m)) for m in months], months


def period_years(labels: list[str]) -> np.ndarray:
    """Calendar year of each period label (`YYYY-MM` or `YYYY`)."""
    return np.array([int(p[:4]) for p in labels], dtype=np.int64)
