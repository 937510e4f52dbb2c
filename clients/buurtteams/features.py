"""Buurtteams op for the `care` block: case files open in a month, per problem domain.

A case file lists several problem domains in one column (`leefgebieden`, e.g. `schulden|wonen`); a file
counts for a domain in every month it is open (opened <= month end, closed empty or >= month start).
Contracts name it `open_cases_by_domain`; Sant Boi's social-services files use it with their own columns.
"""
from __future__ import annotations

from clients.contracts.ops import PER_1000, TABLE, ColumnUse, Op, Param
from clients.contracts.placement import interval_segments
from clients.contracts.series import Series
from clients.contracts.spec import TIME_TYPES


class OpenCasesByDomain(Op):
    """Files open in the month whose domain list contains `domain`, optionally per 1,000 residents."""

    name = "open_cases_by_domain"
    params = (TABLE, Param("opened", "text", "The date column a file opens.", required=True),
              Param("closed", "text", "The date column a file closes (empty: still open).", required=True),
              Param("domains", "text", "The multi_category column listing a file's problem domains.", required=True),
              Param("domain", "text", "The domain counted (one of the column's values).", required=True),
              PER_1000)
    example = ("debt_cases_per_1000: {op: open_cases_by_domain, table: cases, opened: opened, closed: closed, "
               "domains: domains, domain: debts, per_1000: true}")

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

    def series(self, p, contract):
        placement = ("interval", str(p["opened"]), str(p["closed"]))
        if contract.periods.kind != "month":
            placement = ("none",)
        return [Series(table=str(p["table"]), placement=placement, domain=(str(p["domains"]), str(p["domain"])))]

    def finish(self, p, values, ctx):
        return ctx.per_1000(values[0]) if p.get("per_1000") else values[0]

    def noise_sd(self, p, sds, ctx):
        return self.finish(p, sds, ctx)   # linear and positively homogeneous in its one series
