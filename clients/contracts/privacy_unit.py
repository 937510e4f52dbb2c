"""The privacy unit's k, checked against the data: how many area-period rows one person's records touch.

A contract declares `privacy_unit: {row: area-period, max_rows_per_person: k}`; DP guarantees for a
person follow from the row-level ones by group privacy over k rows. Where the raw tables carry a person
or household pseudonym (`person_columns`), the builder counts, per pseudonym, the distinct area-period
rows its records fall on (events in their month, open intervals in every month) across all features,
and refuses a contract whose k is smaller than what the data shows. Tables without a pseudonym rely on
the declared k, which the contract justifies in a comment.
"""
from __future__ import annotations

from collections import defaultdict

import numpy as np
import pandas as pd

from clients.contracts.placement import OpContext
from clients.contracts.registry import get_op


def _union_length(person: np.ndarray, area: np.ndarray, first: np.ndarray, last: np.ndarray) -> pd.Series:
    """Per person: number of distinct (area, period) cells covered by their [first, last] segments."""
    df = pd.DataFrame({"p": person, "a": area, "s": first, "e": last}).sort_values(["p", "a", "s"], kind="stable")
    group = df["p"].ne(df["p"].shift()) | df["a"].ne(df["a"].shift())
    gid = group.cumsum()
    prev_max = df.groupby(gid)["e"].cummax().groupby(gid).shift()   # furthest end of earlier segments
    start = np.maximum(df["s"].to_numpy() - 1, prev_max.fillna(-1).to_numpy())
    covered = np.clip(df["e"].to_numpy() - start, 0, None)
    return pd.Series(covered, index=df.index).groupby(df["p"]).sum()


def observed_rows_per_person(ctx: OpContext) -> tuple[int | None, str | None, str | None]:
    """(largest number of area-period rows one pseudonym touches, its column, where its first record is)."""
    parts: dict[str, list[tuple[np.ndarray, ...]]] = defaultdict(list)
    for feature in ctx.contract.features():
        table = ctx.table(str(feature.params["table"]))
        if not table.spec.person_columns:
            continue
        rows, area, first, last = get_op(feature.op).segments(feature.params, ctx)
        for column in table.spec.person_columns:
            ids = table.data[column].to_numpy(dtype=object)[rows]
            ok = pd.notna(ids)
            parts[column].append((ids[ok], area[ok], first[ok], last[ok]))
    best: tuple[int | None, str | None, str | None] = (None, None, None)
    for column, chunks in parts.items():
        person = np.concatenate([c[0] for c in chunks]).astype(str)
        if not len(person):
            continue
        touched = _union_length(person, np.concatenate([c[1] for c in chunks]),
                                np.concatenate([c[2] for c in chunks]), np.concatenate([c[3] for c in chunks]))
        worst = str(touched.idxmax())
        count = int(touched.max())
        if best[0] is None or count > best[0]:
            best = (count, column, _first_record(ctx, column, worst))
    return best


def _first_record(ctx: OpContext, column: str, person: str) -> str:
    for table in ctx.tables.values():
        if column in table.spec.person_columns:
            hits = np.flatnonzero((table.data[column].astype(str) == person).to_numpy())
            if len(hits):
                return f"{table.raw.path}, {table.raw.locate(int(hits[0]))}"
    return "unknown"


def check_privacy_unit(ctx: OpContext) -> int | None:
    """The observed k (None without pseudonyms); refuse a declared k below it."""
    observed, column, where = observed_rows_per_person(ctx)
    k = ctx.contract.max_rows_per_person
    if observed is not None and observed > k:
        raise ctx.contract.error(
            f"privacy_unit.max_rows_per_person is {k}, but one '{column}' in the data touches {observed} "
            f"area-period rows (first record: {where}); raise k in the contract (and its justification) or "
            "cover fewer periods (e.g. override periods.start)")
    return observed
