"""Municipality op for the label: the liveability of an area in a month from the resident survey.

Leefbaarometer shape: a reference level (4.10) plus the sum of the five MEAN dimension scores of the
area's respondents in that month. The label is the liveability OF that month; the shift to "next month"
is the model's business (`federation.dataset`). Area-months without respondents have no label.
Contracts name it `liveability`; the transfer cities use it with their own survey columns.
"""
from __future__ import annotations

import numpy as np

from federation.contracts.ops import ColumnUse, Op
from federation.contracts.placement import event_segments, event_sums
from federation.contracts.spec import NUMERIC_TYPES, TIME_TYPES


class Liveability(Op):
    """`reference` + sum over `dimensions` of the mean score per area-month (month from `period`)."""

    name = "liveability"
    required = ("table", "period", "reference", "dimensions")
    optional = ()

    def uses(self, p):
        t = p["table"]
        return ([ColumnUse(t, str(p["period"]), TIME_TYPES, "period")]
                + [ColumnUse(t, str(d), NUMERIC_TYPES, "dimension score") for d in p["dimensions"]])

    def check(self, p, feature, contract):
        dims = p["dimensions"]
        if not isinstance(dims, (list, tuple)) or len(dims) != 5:
            raise contract.error(f"{feature.where()}: `dimensions` must list the five Leefbaarometer "
                                 "dimension score columns")
        if not isinstance(p["reference"], (int, float)):
            raise contract.error(f"{feature.where()}: `reference` must be a number (4.10 in the Leefbaarometer)")

    def segments(self, p, ctx):
        return event_segments(ctx, ctx.table(p["table"]), p["period"])

    def compute(self, p, ctx):
        table = ctx.table(p["table"])
        everyone = np.ones(len(table), dtype=bool)
        total = np.full(ctx.grid.size, float(p["reference"]))
        answered = None
        for column in p["dimensions"]:
            scores = table.data[column].to_numpy(dtype="float64")
            sums = event_sums(ctx, table, p["period"], everyone, scores)
            counts = event_sums(ctx, table, p["period"], ~np.isnan(scores))
            with np.errstate(divide="ignore", invalid="ignore"):
                total = total + np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
            answered = counts if answered is None else np.minimum(answered, counts)
        return np.where(answered > 0, total, np.nan)
