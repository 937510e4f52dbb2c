"""Periods: months as integers (year * 12 + month - 1) for fast grouping, `YYYY-MM` at the edges."""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from clients.contracts.spec import Contract, TableSpec
from clients.contracts.validation import Table

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
    """The node's periods: every month of the declared window `periods.start` .. `periods.end` (set by the
    contract or the run, never by the records' dates: the grid a node releases on is public), or the one
    fixed period. Returns labels and month indices (None for a fixed period).

    The records are only checked against the window: a date after this month is a typing error, and
    `periods.not_before` (exports of case files "open at any time in the window", whose opening dates reach
    back years) refuses a window that starts before the first month in which an exported file was closed:
    files closed earlier are not in the export, so those months would be undercounted."""
    spec = contract.periods
    if spec.kind == "fixed":
        return [str(spec.value)], None
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
    first = month_index(str(spec.start), "periods.start", contract.error)
    last = month_index(str(spec.end), "periods.end", contract.error)
    for table, column in spec.not_before:
        months = tables[table].months(column)
        months = months[months >= 0]
        if not len(months):
            raise contract.error(f"periods.not_before ({table}.{column}): no dates in the raw data, so the export "
                                 "window's start cannot be checked")
        if first < int(months.min()):
            raise contract.error(
                f"periods.start {month_label(first)} precedes the first month of {table}.{column} "
                f"({month_label(int(months.min()))}): the export holds no file closed before then, so the earlier "
                "months would be undercounted; start the window there (periods.start) or export from earlier")
    months = np.arange(first, last + 1, dtype=np.int64)
    return [month_label(int(m)) for m in months], months


# A month below `min_share` of the usual volume is missing only when so few records are beyond chance for a
# Poisson count with the usual monthly mean: 2 where 20 is usual (p = 5e-7), not 1 where 7 is (p = 0.007).
CHANCE = 1e-3


def wave_mask(table: TableSpec, months: np.ndarray) -> np.ndarray:
    """Per month of the grid, whether the table has records there by design (every month without a cadence)."""
    cadence = table.cadence
    if cadence is None:
        return np.ones(len(months), dtype=bool)
    if cadence.months:
        waves = [month_index(m, "cadence.months", ValueError) for m in cadence.months]
        return np.isin(months, waves)
    first = int(months[0]) if cadence.first is None else month_index(cadence.first, "cadence.first", ValueError)
    return ((months - first) % cadence.every == 0) & (months >= first)


@dataclass
class Completeness:
    """Months of the window in which a table holds no data: by design (not a wave of its cadence) or missing
    from the export. Both are missing in the table's series, never zero."""

    absent: dict[str, np.ndarray] = field(default_factory=dict)    # table -> mask over the grid's months
    missing: dict[str, list[str]] = field(default_factory=dict)    # table -> months missing from the export
    lines: list[str] = field(default_factory=list)                 # one line per missing month, for the report


def completeness(contract: Contract, tables: Mapping[str, Table], months: np.ndarray | None) -> Completeness:
    """Check every month of the window against the `periods.from` columns: a month (of the table's waves)
    with no record, or fewer than `periods.min_share` of the column's median month (and so few that chance
    cannot explain it, `CHANCE`), is missing. Refused
    (`periods.missing: refuse`, the default) or marked (`mark`)."""
    from scipy.stats import poisson   # as dp_accounting does (scipy comes with opacus and fairlearn)

    out = Completeness()
    if months is None:
        return out
    spec = contract.periods
    for name, table in tables.items():
        if table.spec.cadence is not None:
            out.absent[name] = ~wave_mask(table.spec, months)
    for name, column in spec.sources:
        waves = wave_mask(tables[name].spec, months)
        got = tables[name].months(column)
        got = got[(got >= months[0]) & (got <= months[-1])]
        counts = np.bincount(got - months[0], minlength=len(months))[waves]
        usual = float(np.median(counts)) if len(counts) else 0.0
        low = (counts == 0) | ((counts < spec.min_share * usual) & (poisson.cdf(counts, max(usual, 1e-9)) < CHANCE))
        if not low.any():
            continue
        wave_months = months[waves]
        empty = [int(m) for m in wave_months[counts == 0]]
        parts = [f"no record in {_ranges(empty)}"] if empty else []
        parts += [f"{month_label(int(m))} holds {int(c):,} records, below {spec.min_share:g} of the usual "
                  f"{usual:,.0f} a month" for m, c in zip(wave_months[low], counts[low]) if c > 0]
        out.lines.append(f"{name}.{column}: " + "; ".join(parts))
        out.missing.setdefault(name, []).extend(month_label(int(m)) for m in wave_months[low])
        mask = out.absent.setdefault(name, np.zeros(len(months), dtype=bool))
        mask[wave_months[low] - int(months[0])] = True
    for name in out.missing:
        out.missing[name] = sorted(set(out.missing[name]))
    if out.lines and spec.missing == "refuse":
        count = len({m for ms in out.missing.values() for m in ms})
        raise contract.error(
            f"{count} month(s) of the window {month_label(int(months[0]))} to {month_label(int(months[-1]))} are "
            "missing from the export (rule: complete_periods), and would read as zero:\n  "
            + "\n  ".join(out.lines) + "\n"
            "Export the missing months, narrow the window (periods.start / periods.end), declare the table's "
            "`cadence` if it has records in waves only, or mark them missing with periods.missing=mark")
    return out


def _ranges(months: list[int]) -> str:
    """Sorted month indices as `2019-01 to 2019-10, 2020-03`."""
    runs: list[list[int]] = []
    for m in months:
        if runs and m == runs[-1][1] + 1:
            runs[-1][1] = m
        else:
            runs.append([m, m])
    return ", ".join(month_label(a) if a == b else f"{month_label(a)} to {month_label(b)}" for a, b in runs)


def period_years(labels: list[str]) -> np.ndarray:
    """Calendar year of each period label (`YYYY-MM` or `YYYY`)."""
    return np.array([int(p[:4]) for p in labels], dtype=np.int64)
