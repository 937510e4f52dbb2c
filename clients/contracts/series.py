"""What a table releases: counts and clipped sums per (area, period) cell, each unit's contribution bounded.

Every feature is post-processing of a few *series* of its table (a count of records, or a sum of a
clipped column, per grid cell). The builder computes each table's series once, on the raw records after
enforcing the table's contribution bounds (`privacy:` in the contract): a unit (person, household, or
record) keeps at most `max_cells` cells (its most recent ones) and at most `max_per_cell` records in
each. A node's DP release adds Gaussian noise to exactly these series; rates per 1,000, means, logs and
trailing means are computed afterwards, at no privacy cost.

Sensitivity, derived here and nowhere else: with each series divided by its per-record weight `w`
(1 for a count, the clip bound's magnitude for a sum), one record changes at most `hits` series by at
most 1 each in one cell, where `hits` is the largest number of the table's series a single record can
fall in (their `where` filters and domains checked jointly). One unit then changes the normalised release
by at most sqrt(max_cells) * max_per_cell * sqrt(hits) in L2 norm.

A contract may give a feature an `emphasis` a (default 1): its series are released multiplied by a, so
their noise, back on their own scale, is divided by a. A record's hits then weigh a^2 each (`max_load`:
the largest sum of a^2 over the series one record can fall in, replacing `hits` in both bounds), so a
larger share for one series is paid for by the table's others, and the unit's guarantee stays exact.

With `max_events` E, each date column's series (records counted at one date) are bounded apart: one unit
adds at most E records per date column, at most `max_per_cell` m in a cell, so those series change by at
most E * m * hits_date in squared L2 norm (a sum of at most E counts of at most m each), the others by
max_cells * m^2 * hits_other. The release uses the smaller of the two bounds.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field, replace
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from clients.contracts.spec import TablePrivacy, TableSpec

OTHER = "\0other"   # a value matching no `where` clause
MAX_ASSIGNMENTS = 1 << 14


@dataclass(frozen=True)
class Series:
    """One released statistic of a table per grid cell: a count of records, or the sum of clipped values.

    `placement` says which cells a record falls in: ("time", column) its month, ("interval", start, end)
    every month it is open, ("none",) the one fixed period. A record counts when it matches `where`
    (column -> allowed values), holds `domain` (multi-category column, value) and has every `require`d
    column. `values` are summed per record (after clipping each), or None for a count.
    """

    table: str
    placement: tuple[str, ...]
    where: tuple[tuple[str, tuple[str, ...]], ...] = ()
    domain: tuple[str, str] | None = None
    values: tuple[str, ...] | None = None
    require: tuple[str, ...] = ()
    total_clip: tuple[float, float] | None = None   # bounds of the per-record sum of `values`
    emphasis: float = 1.0   # share of the table's noise budget (not part of `key`: the same statistic)
    within: tuple[str, str, float] | None = None   # (start, end, days): only records ended within days of start

    @property
    def key(self) -> str:
        """Stable text id (also the column name in a stored release)."""
        parts = [self.table, ":".join(self.placement)]
        parts += [f"{c}={'|'.join(v)}" for c, v in self.where]
        if self.domain:
            parts.append(f"{self.domain[0]}~{self.domain[1]}")
        if self.require:
            parts.append("req=" + ",".join(self.require))
        if self.within:
            parts.append(f"{self.within[1]}-{self.within[0]}<={self.within[2]:g}d")
        parts.append("count" if self.values is None else "sum(" + "+".join(self.values) + ")")
        if self.total_clip is not None:
            parts.append(f"clip[{self.total_clip[0]:g},{self.total_clip[1]:g}]")
        return "/".join(parts)

    def weight(self, privacy: TablePrivacy) -> float:
        """Most one record adds to this series in one cell (1 for a count; clip bounds for a sum)."""
        if self.values is None:
            return 1.0
        if self.total_clip is not None:
            return float(max(abs(self.total_clip[0]), abs(self.total_clip[1])))
        return float(sum(max(abs(lo), abs(hi)) for lo, hi in (privacy.clip[c] for c in self.values)))


def where_items(where: Mapping | None) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """A contract's `where: {column: value or [values]}` as sorted, hashable text."""
    out = []
    for column, wanted in (where or {}).items():
        values = wanted if isinstance(wanted, (list, tuple)) else [wanted]
        out.append((str(column), tuple(sorted(str(v) for v in values))))
    return tuple(sorted(out))


def placement_of(p: Mapping, periodic: bool) -> tuple[str, ...]:
    if "interval" in p:
        return ("interval", str(p["interval"][0]), str(p["interval"][1]))
    if "time" in p and periodic:
        return ("time", str(p["time"]))
    return ("none",)


def max_hits(series: Sequence[Series], spec: TableSpec) -> int:
    """Largest number of `series` one record can fall in, from their filters alone (data independent)."""
    return int(round(max_load([replace(s, emphasis=1.0) for s in series], spec)))


def max_load(series: Sequence[Series], spec: TableSpec) -> float:
    """Largest sum of squared emphases over the `series` one record can fall in (data independent); with
    every emphasis 1 the number of series, `max_hits`."""
    if not series:
        return 0.0
    columns: dict[str, set[str]] = {}
    domains: set[tuple[str, str]] = set()
    for s in series:
        for column, values in s.where:
            columns.setdefault(column, set()).update(values)
        if s.domain:
            domains.add(s.domain)
    choices = [sorted(v) + [OTHER] for v in columns.values()]
    n = math.prod(len(c) for c in choices) * 2 ** len(domains)
    if n > MAX_ASSIGNMENTS:   # too many to enumerate: assume a record can fall in every series
        return float(sum(s.emphasis ** 2 for s in series))
    names, dom = list(columns), sorted(domains)
    best = 0.0
    for values in itertools.product(*choices):
        record = dict(zip(names, values))
        for flags in itertools.product((False, True), repeat=len(dom)):
            held = {d for d, f in zip(dom, flags) if f}
            load = sum(s.emphasis ** 2 for s in series
                       if all(record[c] in v for c, v in s.where) and (s.domain is None or s.domain in held))
            best = max(best, load)
    return best


@dataclass
class TableAggregate:
    """A table's series per grid cell after its bounds, with what the bounds cut and what one unit can change."""

    table: str
    privacy: TablePrivacy
    series: tuple[Series, ...]
    values: dict[str, np.ndarray]
    records: int                          # records placed on the grid
    sensitivity: float = 0.0              # L2 bound of one unit on the normalised series (0: public)
    stats: dict = field(default_factory=dict)
    # standard deviation of the noise a release added to each series, per cell (None: exact, not noised);
    # data-independent (bounds, epsilon), so what is computed from it is post-processing
    noise_sd: dict[str, np.ndarray] | None = None

    def weights(self) -> dict[str, float]:
        """Per series, what one record adds at most to a cell divided by the series' emphasis: the release's
        noise on the series is the noise multiplier x sensitivity x this."""
        return {s.key: s.weight(self.privacy) / s.emphasis for s in self.series}


def unit_ids(data: pd.DataFrame, privacy: TablePrivacy) -> np.ndarray:
    """Integer id of each record's unit: its pseudonym, or the record itself; -1 for a record whose pseudonym is
    missing or blank. Such a record is refused (`aggregate_table` leaves it out of every series): it cannot be
    bounded as its person's, and merging all of them into one unit would let a person with records with and
    without a pseudonym contribute two units' worth."""
    if privacy.column is None:
        return np.arange(len(data), dtype=np.int64)
    names = data[privacy.column].astype("string")   # already folded by the contract (`pseudonyms.py`)
    codes, _ = pd.factorize(names.mask(names.str.strip() == ""), sort=False, use_na_sentinel=True)
    return codes.astype(np.int64)


def bound_pairs(unit: np.ndarray, row: np.ndarray, cell: np.ndarray, period: np.ndarray,
                privacy: TablePrivacy) -> tuple[np.ndarray, dict]:
    """Keep mask over (row, cell) pairs: per unit its `max_cells` most recent cells, per (unit, cell) its first
    `max_per_cell` records. Returns the mask and what was cut."""
    n = len(row)
    if n == 0:
        return np.ones(0, bool), {"units": 0, "units_cut": 0, "pairs": 0, "pairs_cut": 0, "share_cut": 0.0}
    u = unit[row]
    frame = pd.DataFrame({"u": u, "c": cell, "p": period, "r": row})
    # rank of each cell among the unit's distinct cells, most recent first (ties by cell id)
    cells = frame[["u", "c", "p"]].drop_duplicates(["u", "c"]).sort_values(["u", "p", "c"], ascending=[True, False, True])
    cells["rank"] = cells.groupby("u").cumcount()
    frame = frame.merge(cells[["u", "c", "rank"]], on=["u", "c"], how="left", sort=False)
    within = frame.sort_values(["u", "c", "r"], kind="stable").groupby(["u", "c"]).cumcount().reindex(frame.index)
    keep = (frame["rank"].to_numpy() < privacy.max_cells) & (within.to_numpy() < privacy.max_per_cell)
    units_cut = int(pd.Series(~keep).groupby(u).any().sum())
    stats = {"units": int(len(np.unique(u))), "units_cut": units_cut, "pairs": n, "pairs_cut": int((~keep).sum()),
             "share_cut": float((~keep).sum() / n)}
    return keep, stats


def _bound_events(unit: np.ndarray, row: np.ndarray, cell: np.ndarray, period: np.ndarray, kept: np.ndarray,
                  privacy: TablePrivacy) -> tuple[np.ndarray, int]:
    """Keep mask over one date column's (record, cell) pairs: per unit its `max_events` most recent kept ones."""
    frame = pd.DataFrame({"u": unit[row], "p": period, "r": row, "k": kept})
    order = frame[frame["k"]].sort_values(["u", "p", "r"], ascending=[True, False, True], kind="stable")
    rank = order.groupby("u").cumcount()
    keep = np.zeros(len(frame), dtype=bool)
    keep[rank.index[rank.to_numpy() < privacy.max_events]] = True
    return keep, int(kept.sum() - keep.sum())


def _placement_pairs(ctx, table, placement: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row, cell, period index) of every record on the grid under `placement` (intervals expanded)."""
    from clients.contracts.placement import check_order, event_segments, interval_segments

    if placement[0] == "interval":
        check_order(table, placement[1], placement[2])
        rows, area, first, last = interval_segments(ctx, table, placement[1], placement[2])
    else:
        rows, area, first, last = event_segments(ctx, table, placement[1] if placement[0] == "time" else None)
    span = (last - first + 1).astype(np.int64)
    rep_rows = np.repeat(rows, span)
    offsets = np.arange(int(span.sum()), dtype=np.int64) - np.repeat(np.cumsum(span) - span, span)
    period = np.repeat(first, span) + offsets
    cell = np.repeat(area, span) * len(ctx.grid.periods) + period
    return rep_rows.astype(np.int64), cell.astype(np.int64), period.astype(np.int64)


def ended_within(start: pd.Series, end: pd.Series, days: float) -> np.ndarray:
    """Rows whose end is given, not before the start, and at most `days` days after it."""
    gap = (pd.to_datetime(end, errors="coerce") - pd.to_datetime(start, errors="coerce")).dt.total_seconds()
    gap = gap.to_numpy(dtype="float64", na_value=np.nan)
    with np.errstate(invalid="ignore"):
        return np.isfinite(gap) & (gap >= 0) & (gap <= days * 86400.0)


def _record_mask(table, s: Series) -> np.ndarray:
    from clients.contracts.placement import contains

    data = table.data
    mask = np.ones(len(table), dtype=bool)
    for column, values in s.where:
        col = data[column]
        if table.columns[column].type in ("integer", "float"):
            mask &= col.isin([float(v) for v in values]).to_numpy()
        else:
            mask &= col.astype("string").isin(list(values)).fillna(False).to_numpy(dtype=bool)
    if s.domain is not None:
        mask &= contains(data[s.domain[0]], s.domain[1], table.columns[s.domain[0]].separator)
    for column in s.require + (s.values or ()):
        mask &= data[column].notna().to_numpy()
    if s.within is not None:
        mask &= ended_within(data[s.within[0]], data[s.within[1]], s.within[2])
    return mask


def _clip_shares(table, privacy: TablePrivacy, columns: list[str]) -> dict[str, dict]:
    """Per summed column with clip bounds: how many of its values the bounds cut (a plausibility check: a
    few outliers are what clipping is for; a large share is a unit or scale mistake in the export)."""
    out = {}
    for column in dict.fromkeys(columns):
        if column not in privacy.clip:
            continue
        raw = table.data[column].to_numpy(dtype="float64")
        raw = raw[np.isfinite(raw)]
        lo, hi = privacy.clip[column]
        cut = int(((raw < lo) | (raw > hi)).sum())
        out[column] = {"values": int(len(raw)), "clipped": cut, "share": cut / len(raw) if len(raw) else 0.0,
                       "bounds": [lo, hi], "limit": privacy.max_clipped_share}
    return out


def clipped_columns(aggregates: Mapping[str, TableAggregate]) -> list[str]:
    """One line per column of which more than its table's `max_clipped_share` was clipped: such a build is
    held like a drifted one (rule: clip_plausibility)."""
    lines = []
    for name, agg in aggregates.items():
        for column, c in agg.stats.get("clipped", {}).items():
            if c["share"] > c["limit"]:
                lines.append(f"{name}.{column}: {c['share']:.1%} of its {c['values']:,} values lie outside the clip "
                             f"bounds [{c['bounds'][0]:g}, {c['bounds'][1]:g}] (more than {c['limit']:.0%}; rule: "
                             "clip_plausibility): another unit or scale in the export?")
    return lines


def aggregate_table(ctx, name: str, series: Sequence[Series]) -> TableAggregate:
    """The table's series per grid cell, after enforcing its contribution bounds on the raw records."""
    table = ctx.table(name)
    privacy = table.spec.privacy
    placements = sorted({s.placement for s in series})
    parts = {pl: _placement_pairs(ctx, table, pl) for pl in placements}
    size = ctx.grid.size
    rows = np.concatenate([parts[pl][0] for pl in placements])
    cells = np.concatenate([parts[pl][1] for pl in placements])
    periods = np.concatenate([parts[pl][2] for pl in placements])
    key = rows * size + cells
    uniq, first = np.unique(key, return_index=True)
    stats: dict = {"unit": privacy.unit, "records": int(len(np.unique(rows)))}
    event_keep: dict[tuple[str, ...], np.ndarray] = {}
    if privacy.is_public:
        kept = uniq
        stats.update({"units_cut": 0, "share_cut": 0.0})
    else:
        units = unit_ids(table.data, privacy)
        keep, cut = bound_pairs(units, rows[first], cells[first], periods[first], privacy)
        unknown = units[rows[first]] < 0   # a record without its pseudonym is refused, never merged
        keep &= ~unknown
        stats["records_without_unit"] = int(len(np.unique(rows[first][unknown])))
        kept = uniq[keep]
        stats.update(cut)
        stats["bounds"] = {"max_cells": privacy.max_cells, "max_per_cell": privacy.max_per_cell,
                           "clip": {c: list(b) for c, b in privacy.clip.items()}}
        if privacy.max_events is not None:
            stats["bounds"]["max_events"] = privacy.max_events
            stats["events_cut"] = 0
            for pl in placements:
                if pl[0] == "time":
                    r, c, p = parts[pl]
                    # only records that one of this date's series counts use up a unit's events
                    counted = np.logical_or.reduce([_record_mask(table, x) for x in series if x.placement == pl])
                    event_keep[pl], events_cut = _bound_events(units, r, c, p, np.isin(r * size + c, kept) & counted[r],
                                                               privacy)
                    stats["events_cut"] += events_cut
    if not privacy.is_public:
        stats["clipped"] = _clip_shares(table, privacy, [c for s in series for c in (s.values or ())])
    values: dict[str, np.ndarray] = {}
    for s in series:
        r, c, _ = parts[s.placement]
        ok = np.isin(r * size + c, kept, assume_unique=False) & _record_mask(table, s)[r]
        if s.placement in event_keep:
            ok &= event_keep[s.placement]
        if s.values is None:
            values[s.key] = np.bincount(c[ok], minlength=size).astype(np.float64)
            continue
        per_record = np.zeros(len(table), dtype=np.float64)
        for column in s.values:
            raw = table.data[column].to_numpy(dtype="float64")
            lo, hi = privacy.clip.get(column, (-np.inf, np.inf))
            per_record += np.nan_to_num(np.clip(raw, lo, hi))
        if s.total_clip is not None:
            per_record = np.clip(per_record, *s.total_clip)
        values[s.key] = np.bincount(c[ok], weights=per_record[r[ok]], minlength=size)
    sensitivity = 0.0
    if not privacy.is_public:
        # with emphases a_k the release is of series_k * a_k / w_k, so a record's "hits" weigh a_k^2 each
        hits = max_hits(series, table.spec)
        load = max_load(series, table.spec)
        sensitivity = math.sqrt(privacy.max_cells) * privacy.max_per_cell * math.sqrt(load)
        if privacy.max_events is not None:
            m = privacy.max_per_cell
            other = max_load([s for s in series if s.placement not in event_keep], table.spec)
            squared = privacy.max_cells * m * m * other + sum(
                privacy.max_events * m * max_load([s for s in series if s.placement == pl], table.spec)
                for pl in event_keep)
            sensitivity = min(sensitivity, math.sqrt(squared))
        stats["series_per_record"] = hits
        if any(s.emphasis != 1.0 for s in series):
            stats["emphasis"] = {s.key: s.emphasis for s in series}
        stats["sensitivity"] = sensitivity
    return TableAggregate(name, privacy, tuple(series), values, stats["records"], sensitivity, stats)
