"""Records handled within a norm: counted in the month they start, only if they ended within `days`.

A municipality promises to handle a report within a norm (e.g. five working days, or a category's own
term); whether a report met it is a comparison of two of its dates, made on the node on the raw records.
The count is one more series of the table (`Series.within`), so it is bounded, noised and charged with
the table's other series; the share handled within the norm is post-processing at the coordinator.
"""
from __future__ import annotations

from dataclasses import replace

from clients.contracts.ops import PER_1000, TABLE, WHERE, ColumnUse, Op, Param, _series, _where_uses
from clients.contracts.placement import event_segments
from clients.contracts.spec import TIME_TYPES


class CountWithin(Op):
    """Records per area-period (in the month of `time`) whose `end` lies at most `days` days after `time`:
    e.g. reports handled within the municipality's norm. Optionally filtered and per 1,000 residents."""

    name = "count_within"
    params = (TABLE,
              Param("time", "text", "The date column a record starts (places it in its month).", required=True),
              Param("end", "text", "The date column a record ends (empty: not ended, never within).", required=True),
              Param("days", "number", "The norm: the most days from start to end that count.", required=True),
              WHERE, PER_1000)
    example = "handled_in_norm: {op: count_within, table: reports, time: created, end: closed, days: 5}"

    def uses(self, p):
        return [ColumnUse(p["table"], str(p["time"]), TIME_TYPES, "start"),
                ColumnUse(p["table"], str(p["end"]), TIME_TYPES, "end")] + _where_uses(p)

    def check(self, p, feature, contract):
        days = p.get("days")
        if isinstance(days, bool) or not isinstance(days, (int, float)) or not days > 0:
            raise contract.error(f"{feature.where()}: days must be a positive number of days; got {days!r}")
        if contract.periods.kind != "month":
            raise contract.error(f"{feature.where()}: op {self.name} needs monthly periods")
        if p.get("per_1000") and contract.register_path is None:
            raise contract.error(f"{feature.where()}: per_1000 needs populations from an area register `path`")

    def segments(self, p, ctx):
        return event_segments(ctx, ctx.table(p["table"]), str(p["time"]))

    def series(self, p, contract):
        return [replace(_series(p, contract), within=(str(p["time"]), str(p["end"]), float(p["days"])))]

    def finish(self, p, values, ctx):
        return ctx.per_1000(values[0]) if p.get("per_1000") else values[0]

    def noise_sd(self, p, sds, ctx):
        return self.finish(p, sds, ctx)   # linear and positively homogeneous in its one series
