"""Building a node's feature blocks and label from its raw tables, as its contract says.

Order matters for the user: first every raw table is read and validated (one ContractError for the
first problem), then the data checks (protected content, the privacy unit's k), then the aggregation
on the area-period grid, then small-area suppression. Nothing is written here (see `output.py`).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from clients.contracts.checks import check_data, check_public_tables
from clients.contracts.periods import Completeness, completeness, covered_periods
from clients.contracts.placement import OpContext
from clients.contracts.privacy_unit import check_privacy_unit
from clients.contracts.proxies import load_proxy_rule, proxy_correlations
from clients.contracts.reading import read_raw
from clients.contracts.register import build_grid, read_register
from clients.contracts.registry import get_op
from clients.contracts.rowfilter import filter_rows
from clients.contracts.series import Series, TableAggregate, aggregate_table, clipped_columns
from clients.contracts.spec import Contract
from clients.contracts.suppression import suppressed_areas
from clients.contracts.validation import Table, validate
from federation.errors import ContractError

KEYS = ["area_code", "period"]
# Given the bounded aggregates of the private tables, returns them noised (a node's DP release).
Release = Callable[[OpContext, dict[str, TableAggregate]], dict[str, TableAggregate]]


@dataclass
class NodeFeatures:
    """What a node's contract produces: area-period rows only, nothing about a person."""

    blocks: dict[str, pd.DataFrame]
    label: pd.DataFrame | None
    suppressed_areas: list[str]
    partition: pd.DataFrame | None
    privacy_unit_k: int
    stats: dict = field(default_factory=dict)
    aggregates: dict[str, TableAggregate] = field(default_factory=dict)
    # per block, the same rows with each feature's noise standard deviation per cell (0: exact or public;
    # NaN: not known in closed form); None for an exact build
    noise: dict[str, pd.DataFrame] | None = None
    # per block (and "label"): periods of the grid without rows because a table it reads has no data there
    # (not a wave of its cadence, or a month missing from the export, `periods.missing: mark`)
    missing_periods: dict[str, list[str]] = field(default_factory=dict)


def read_tables(contract: Contract, node_dir: Path) -> tuple[Table | None, dict[str, Table]]:
    """The validated area register and raw tables of the node."""
    register = read_register(node_dir, contract.register_path) if contract.register_path else None
    known = None if register is None else np.array(sorted(set(register.data["area_code"])), dtype=object)
    shown = str(node_dir / contract.register_path) if contract.register_path else "(none)"
    tables = {name: validate(filter_rows(read_raw(spec, node_dir), spec), spec, node_dir, known, shown)
              for name, spec in contract.tables.items()}
    return register, tables


def _frame(base: pd.DataFrame, columns: dict[str, np.ndarray], keep: np.ndarray) -> tuple[pd.DataFrame, int]:
    """Rows of kept areas where every value is known, float64, sorted by (area_code, period)."""
    values = pd.DataFrame({name: np.asarray(v, dtype="float64") for name, v in columns.items()}, index=base.index)
    frame = pd.concat([base, values], axis=1)[keep]
    complete = frame[list(columns)].notna().all(axis=1).to_numpy()
    out = frame[complete].sort_values(KEYS, kind="stable").reset_index(drop=True)
    return out, int((~complete).sum())


def _partition(contract: Contract, tables: dict[str, Table], suppressed: set[str]) -> pd.DataFrame | None:
    spec = contract.partition
    if spec is None:
        return None
    table = tables[spec.table]
    values = table.data[spec.column]
    if pd.api.types.is_float_dtype(values) and values.dropna().mod(1).eq(0).all():
        values = values.astype("Int64")
    text = values.astype(str)
    frame = pd.DataFrame({"area_code": table.area, "partition": text.to_numpy(dtype=object)})
    for group, mapping in spec.groups.items():
        mapped = text.map(dict(mapping))
        if mapped.isna().any():
            row = int(np.flatnonzero(mapped.isna().to_numpy())[0])
            raise ContractError(f"{table.raw.where(row, spec.column)}: value {text.iloc[row]!r} has no "
                                f"'{group}' in partition.groups.{group} of {contract.path}")
        frame[group] = mapped.to_numpy(dtype=object)
    frame = frame[~frame["area_code"].isin(suppressed)].drop_duplicates()
    return frame.sort_values("area_code").reset_index(drop=True)


def aggregate(ctx: OpContext) -> dict[str, TableAggregate]:
    """Each table's series (those its features need), computed once with the table's bounds enforced."""
    wanted: dict[str, dict[str, Series]] = {}
    for feature in ctx.contract.features():
        for s in get_op(feature.op).series(feature.params, ctx.contract) or ():
            # a series shared by several features gets the largest of their emphases
            held = wanted.setdefault(s.table, {}).get(s.key)
            wanted[s.table][s.key] = replace(s, emphasis=max(feature.emphasis, held.emphasis if held else 0.0))
    return {table: aggregate_table(ctx, table, list(series.values())) for table, series in wanted.items()}


def _compute(feature, ctx: OpContext, aggregates: dict[str, TableAggregate]) -> np.ndarray:
    op = get_op(feature.op)
    series = op.series(feature.params, ctx.contract)
    if series is None:
        return op.compute(feature.params, ctx)
    return op.finish(feature.params, [aggregates[s.table].values[s.key] for s in series], ctx)


def _noise(feature, ctx: OpContext, aggregates: dict[str, TableAggregate]) -> np.ndarray:
    """Per cell, the standard deviation of the release's noise in `feature` (0 if none of its series is noised)."""
    op = get_op(feature.op)
    series = op.series(feature.params, ctx.contract)
    size = ctx.grid.size
    if series is None:
        return np.zeros(size)
    sds = [aggregates[s.table].noise_sd for s in series]
    if all(sd is None for sd in sds):
        return np.zeros(size)
    per_series = [np.zeros(size) if sd is None else sd[s.key] for sd, s in zip(sds, series)]
    out = op.noise_sd(feature.params, per_series, ctx)
    return np.full(size, np.nan) if out is None else np.asarray(out, dtype=np.float64)


def build_features(contract: Contract, node_dir: Path | str, release: Release | None = None) -> NodeFeatures:
    """Validate the node's raw tables against `contract` and aggregate them into blocks and label.

    Without `release` the blocks are exact (bounded, not noised: for the node's own use and the
    yardstick); with it, every private table's series pass through `release` before any feature is
    computed, so the blocks are post-processing of the DP release."""
    node_dir = Path(node_dir)
    if not node_dir.is_dir():
        raise ContractError(f"{node_dir}: node directory not found (contract {contract.path})")
    register, tables = read_tables(contract, node_dir)
    check_data(contract, tables)
    periods, months = covered_periods(contract, tables)
    complete = completeness(contract, tables, months)
    codes = tables[contract.register_table].area if contract.register_table else None
    grid = build_grid(register, codes, periods, months)
    ctx = OpContext(contract, tables, grid)
    check_public_tables(ctx)
    observed_k = check_privacy_unit(ctx)
    aggregates = aggregate(ctx)
    if release is not None:
        aggregates = release(ctx, aggregates)
    aggregates = _mark_absent(aggregates, complete, len(grid.areas))
    suppressed = suppressed_areas(contract, grid)
    keep = ~np.repeat(np.isin(grid.areas, suppressed), len(grid.periods))
    base = grid.frame()
    blocks, incomplete, noise = {}, {}, {}
    for block, feats in contract.blocks.items():
        values = {f.name: _compute(f, ctx, aggregates) for f in feats}
        blocks[block], incomplete[block] = _frame(base, values, keep)
        if release is not None:
            sds = pd.DataFrame({f.name: _noise(f, ctx, aggregates) for f in feats}, index=base.index)
            rows = pd.concat([base, sds], axis=1)[keep]
            noise[block] = blocks[block][KEYS].merge(rows, on=KEYS, how="left")
    label = None
    if contract.label is not None:
        values = {"label": _compute(contract.label, ctx, aggregates)}
        label, _ = _frame(base, values, keep)
    missing = _missing_periods(contract, complete, periods)
    stats = {
        "contract": contract.name,
        "rows_read": {name: len(t) for name, t in tables.items()},
        "row_filters": {name: t.raw.filtered for name, t in tables.items() if t.raw.filtered is not None},
        "areas": len(grid.areas),
        "periods": {"first": periods[0], "last": periods[-1], "count": len(periods)},
        "rows_per_block": {b: len(f) for b, f in blocks.items()},
        "rows_incomplete_dropped": incomplete,
        "label_rows": None if label is None else len(label),
        "suppressed_areas": len(suppressed),
        "min_population": contract.min_population,
        "observed_max_rows_per_person": observed_k,
        "tables": {name: agg.stats for name, agg in aggregates.items()},
        "missing_months": complete.missing,
        "missing_periods": missing,
        "pseudonyms": {name: t.pseudonyms for name, t in tables.items() if t.pseudonyms},
        "clipped": clipped_columns(aggregates),
        "protected_proxies": proxy_correlations(
            tables, {**blocks, **({} if label is None else {"label": label})}, load_proxy_rule()),
    }
    return NodeFeatures(
        blocks=blocks, label=label, suppressed_areas=suppressed,
        partition=_partition(contract, tables, set(suppressed)),
        privacy_unit_k=contract.max_rows_per_person, stats=stats, aggregates=aggregates,
        noise=noise if release is not None else None, missing_periods=missing,
    )


def _mark_absent(aggregates: dict[str, TableAggregate], complete: Completeness,
                 n_areas: int) -> dict[str, TableAggregate]:
    """Months in which a table holds no data (not a wave, or missing from the export) are missing (NaN) in
    every one of its series, never zero: post-processing of the release, whatever its noise drew there."""
    for name, absent in complete.absent.items():
        agg = aggregates.get(name)
        if agg is None or not absent.any():
            continue
        for key, values in agg.values.items():
            grid = np.asarray(values, dtype=np.float64).reshape(n_areas, len(absent)).copy()
            grid[:, absent] = np.nan
            agg.values[key] = grid.reshape(-1)
    return aggregates


def _missing_periods(contract: Contract, complete: Completeness, periods: list[str]) -> dict[str, list[str]]:
    """Per block (and `label`), the periods it has no rows for because a table it reads had no data then:
    what a release says is missing, so that nobody reads those periods as zero."""
    out: dict[str, list[str]] = {}
    for feature in contract.features():
        tables = {s.table for s in get_op(feature.op).series(feature.params, contract) or ()}
        marked = set()
        for table in tables & set(complete.absent):
            marked |= {periods[i] for i in np.flatnonzero(complete.absent[table])}
        if marked:
            key = feature.block or "label"
            out[key] = sorted(set(out.get(key, [])) | marked)
    return out
