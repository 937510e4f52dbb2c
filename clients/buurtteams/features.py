"""Buurtteams op for the `care` block: case files open in a month, per problem domain.

A case file lists several problem domains in one column (`leefgebieden`, e.g. `schulden|wonen`); a file
counts for a domain in every month it is open (opened <= month end, closed empty or >= month start).
Contracts name it `open_cases_by_domain`; Sant Boi's social-services files use it with their own columns.
"""
from __future__ import annotations

import re

import numpy as np

from federation.contracts.ops import ColumnUse, Op
from federation.contracts.placement import interval_segments, interval_sums
from federation.contracts.spec import TIME_TYPES


def contains(series, value: str, separator: str) -> np.ndarray:
    """Rows whose `separator`-separated list holds exactly `value` (not merely a substring of an item)."""
    sep = re.escape(separator)
    pattern = f"(?:^|{sep}){re.escape(value)}(?:{sep}|$)"
    return series.fillna("").str.contains(pattern, regex=True).to_numpy(dtype=bool)


class OpenCasesByDomain(Op):
    """Files open in the month whose domain list contains `domain`, optionally per 1,000 residents."""

    name = "open_cases_by_domain"
    required = ("table", "opened", "closed", "domains", "domain")
    optional = ("per_1000",)

    def uses(self, p):
        t = p["table"]
        return [ColumnUse(t, str(p["opened"]), TIME_TYPES, "interval start"),
                ColumnUse(t, str(p["closed"]), TIME_TYPES, "interval end"),
                ColumnUse(t, str(p["domains"]), ("multi_category",), "domain list")]

    def check(self, p, feature, contract):
        table = contract.tables.get(p["table"])
        column = table.columns.get(str(p["domains"])) if table else None
        if column is not None and str(p["domain"]) not in column.values:
            raise contract.error(f"{feature.where()}: domain {p['domain']!r} is not an allowed value of "
                                 f"'{p['domains']}' ({', '.join(column.values)})")
        if p.get("per_1000") and contract.register_path is None:
            raise contract.error(f"{feature.where()}: per_1000 needs populations from an area register `path`")

    def segments(self, p, ctx):
        return interval_segments(ctx, ctx.table(p["table"]), p["opened"], p["closed"])

    def compute(self, p, ctx):
        table = ctx.table(p["table"])
        separator = table.columns[p["domains"]].separator
        mask = contains(table.data[p["domains"]], str(p["domain"]), separator)
        values = interval_sums(ctx, table, p["opened"], p["closed"], mask)
        return ctx.per_1000(values) if p.get("per_1000") else values
