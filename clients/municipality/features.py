"""Municipality op for the label: the liveability of an area in a month from the resident survey.

Leefbaarometer shape: a reference level (4.10) plus the sum of the five MEAN dimension scores of the
area's respondents in that month, i.e. the reference plus the mean of each respondent's total score (over
respondents who scored all five). Each respondent's total is clipped into the op's `clip: [low, high]`
(or, without it, each score into the table's `privacy.clip`): the bound one respondent adds to a cell. Released as two
series per cell, the number of such respondents and the sum of their totals; the label is their ratio. The label is the liveability OF that month; the shift to "next month"
is the model's business (`federation.dataset`). Area-months without respondents have no label.
Contracts name it `liveability`; the transfer cities use it with their own survey columns.
"""
from __future__ import annotations

import numpy as np

from clients.contracts.ops import TABLE, ColumnUse, Op, Param, check_clipped, mean_of
from clients.contracts.placement import event_segments
from clients.contracts.series import Series, placement_of
from clients.contracts.spec import NUMERIC_TYPES, TIME_TYPES


class Liveability(Op):
    """`reference` + sum over `dimensions` of the mean score per area-month (month from `period`)."""

    name = "liveability"
    params = (TABLE, Param("period", "text", "The month column of each response.", required=True),
              Param("reference", "number", "The reference level (4.10 in the Leefbaarometer).", required=True),
              Param("dimensions", "list", "The five dimension score columns.", required=True),
              Param("clip", "list", "`[low, high]`: bounds of one respondent's total score (else each score's "
                                    "privacy.clip)."))
    example = ("label: {op: liveability, table: survey, period: month, reference: 4.10, clip: [-0.5, 0.5], "
               "dimensions: [housing, physical, amenities, cohesion, nuisance]}")

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
        clip = p.get("clip")
        if clip is not None:
            ok = (isinstance(clip, (list, tuple)) and len(clip) == 2
                  and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in clip) and clip[0] < clip[1])
            if not ok:
                raise contract.error(f"{feature.where()}: `clip` must be [low, high] (bounds of one respondent's "
                                     f"total score) with low < high; got {clip!r}")
            return
        for column in dims:
            check_clipped(str(p["table"]), str(column), feature, contract)

    def segments(self, p, ctx):
        return event_segments(ctx, ctx.table(p["table"]), p["period"])

    def series(self, p, contract):
        dims = tuple(str(d) for d in p["dimensions"])
        placement = placement_of({"time": p["period"]}, contract.periods.kind == "month")
        total = None if p.get("clip") is None else (float(p["clip"][0]), float(p["clip"][1]))
        return [Series(table=str(p["table"]), placement=placement, values=dims, total_clip=total),
                Series(table=str(p["table"]), placement=placement, require=dims)]

    def finish(self, p, values, ctx):
        total, count = values
        clip = ctx.contract.tables[str(p["table"])].privacy.clip
        low = sum(clip.get(str(d), (-np.inf, np.inf))[0] for d in p["dimensions"])
        high = sum(clip.get(str(d), (-np.inf, np.inf))[1] for d in p["dimensions"])
        if p.get("clip") is not None:
            low, high = float(p["clip"][0]), float(p["clip"][1])
        return float(p["reference"]) + mean_of(total, count, low, high, np.nan)
