"""`pulse-twin analytics`: DP counts, sums and means per area, wijk or city, across partners' nodes.

The coordinating lab's view of released data, run by a local operator over node directories. For each
node that holds one of the asked statistics, the node's own release path runs: its data contract
(`<node-dir>/contract.yaml`), `build_features(..., release=DpRelease(...))` (one Gaussian release per
private table, or the node's stored release re-used at no privacy cost), and its egress guard, which
checks the outgoing payload against the node's site policy, charges its ledger and logs it. Only then is
the release kept (`commit`). The payload of a node is the released series the statistics need, for its
areas that are not suppressed; everything printed is computed from those payloads and the public area
register, so it is post-processing of the release and costs nothing more:

- a count or a sum (a released series, or a feature that is a plain count): the sum over the group's
  areas and the chosen periods;
- a rate per 1,000 residents: the ratio of sums, 1000 * sum(count) / sum(population), i.e. the per-area
  rates weighted by their public populations (a rate per month, averaged over the chosen periods);
- a mean (op `mean`, the liveability label): the ratio of the summed released totals to the summed
  released counts, then the op's own finishing (its clip range, its fill).

Areas group into wijken and cities by their CBS codes (BU0917wwbb -> WK0917ww -> GM0917); other codes by
a `wijk` / `city` column of the node's public/areas.csv, or (city only) by the prefix before ':' that
transfer cities put in front of their own codes. Where none applies the command refuses.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import os
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from federation.bundle import running_code_hash
from federation.errors import ConfigError, PolicyRefusal
from federation.output import emit_json, result

BY = ("area", "wijk", "city")
CONTRACT_FILE = "contract.yaml"
RUN_KIND = "analytics"
REUSED_KIND = "dp-aggregate-reused"   # the guard's message kind for a release re-sent at no charge
_CBS_BUURT = re.compile(r"^BU(\d{4})(\d{2})(\d{2})$")
_PERIOD = re.compile(r"^\d{4}-\d{2}$")
# Columns of public/areas.csv that may name an area's wijk or city when its code does not say it.
GROUP_COLUMNS = {"wijk": ("wijk", "district"), "city": ("city", "gemeente", "municipality")}
KIND_TEXT = {"sum": "sum", "rate": "per 1,000 residents per period", "mean": "mean (ratio of sums; sd approx.)"}


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "analytics",
        help="federated analytics: DP counts, sums and means per area, wijk or city from the nodes' DP releases",
        description=(
            "For each node directory that holds one of the statistics, obtains the node's DP release through "
            "the node's own release path (its data contract, one Gaussian release per private table, or the "
            "stored release re-used at no privacy cost) and passes the payload through the node's egress guard, "
            "which checks its site policy, charges its privacy ledger and logs it. Then sums the released "
            "per-area values into areas, wijken or cities (post-processing: rates per 1,000 as ratios of sums "
            "weighted by the public population, means as ratios of released sums), prints an aligned table and "
            "each node's epsilon with its delta (the node's own: a new release is calibrated at it too), unit and "
            "accountant, and, with several nodes, the federation-level epsilon of one person who is a unit in every "
            "table of every node (all their ledgers composed), and writes CSV with --out. Areas under "
            "the contract's min_population are not in any release and so in no value. Each node must allow "
            "run kind 'analytics' and have approved this code (`pulse-twin node approve`); a node that refuses "
            "stops the run before any node released anything."
        ),
    )
    p.add_argument("--node-dir", type=Path, action="append", required=True, metavar="DIR", dest="node_dirs",
                   help="a node directory (holds contract.yaml, site_policy.yaml, public/ and raw/); repeat for "
                        "each partner")
    p.add_argument("--stat", action="extend", nargs="+", required=True, metavar="FEATURE|SERIES", dest="stats",
                   help="a feature of a node's contract (e.g. burglary_per_1000, mean_contact_hours, label) or a "
                        "released series key (e.g. "
                        "'incidents/time:datum_registratie/incidentsoort=woninginbraak/count'); several allowed")
    p.add_argument("--by", default="area", metavar="area|wijk|city",
                   help="group the released per-area values by area, wijk or city (default: area)")
    p.add_argument("--period", default=None, metavar="YYYY-MM[..YYYY-MM]",
                   help="the period or range of periods to aggregate over (default: every period released)")
    p.add_argument("--epsilon", type=float, default=3.0,
                   help="target epsilon per unit of each table's release, if a node must release anew "
                        "(default 3; a stored release is re-used whatever this says)")
    p.add_argument("--delta", type=float, default=None,
                   help="the delta the run states its guarantee at, checked by each node: a node refuses a --delta "
                        "above its own (a weaker guarantee than it gives); whatever it says, each node calibrates a "
                        "new release and prints its epsilon at its own delta (its site policy's privacy.delta, which "
                        "its ledger and budget use). Default: each node's own")
    p.add_argument("--run-id", default=None,
                   help="the run's name in the nodes' ledgers and egress logs (default: analytics-<UTC time>-<random>)")
    p.add_argument("--redraw-lost", action="append", default=[], metavar="TABLE", dest="redraw_lost",
                   help="a node refuses to draw a table again when its ledger or egress log shows a charged release "
                        "of it whose kept cells (state/releases/TABLE/) are gone; if they are really lost (deleted, "
                        "or the node stopped between the charge and keeping them), this draws them afresh and charges "
                        "them in full again (the earlier charge stays); the egress record names the lost runs. "
                        "Repeat for each table")
    p.add_argument("--out", type=Path, default=None, metavar="FILE.csv", help="also write the table as CSV")
    p.add_argument("--json", action="store_true", help="print the result as JSON instead of a table")
    p.set_defaults(func=run)


# --- what is asked of each node ---------------------------------------------------------------------

@dataclass
class Stat:
    """One asked statistic as one node holds it: its kind and the released series it is computed from."""

    name: str
    kind: str                         # "sum" | "rate" | "mean"
    table: str
    keys: tuple[str, ...]             # released series: (value,) or (total, count)
    op: Any = None                    # mean: the op whose `finish` turns the ratio into the feature
    params: Any = None


@dataclass
class NodePlan:
    """One node in the run: its contract and asked stats, then its release, payload and guard record."""

    node_dir: Path
    contract: Any
    stats: list[Stat]
    name: str = ""
    accountant: str = "prv"
    delta: float = 1e-5               # the node's own (site policy): its release is calibrated and reported at it
    release: Any = None
    ctx: Any = None
    payload: bytes = b""
    suppressed: list[str] = field(default_factory=list)
    groups: dict[str, str] = field(default_factory=dict)
    periods: list[str] = field(default_factory=list)
    record: dict[str, Any] = field(default_factory=dict)


def _check_args(args: argparse.Namespace) -> tuple[str, str | None, str | None]:
    if args.by not in BY:
        raise ConfigError(f"--by {args.by!r}: choose one of {', '.join(BY)}")
    if not (isinstance(args.epsilon, float) and math.isfinite(args.epsilon) and args.epsilon > 0):
        raise ConfigError(f"--epsilon {args.epsilon!r}: must be a number > 0")
    if args.delta is not None and not (0 < args.delta < 1):
        raise ConfigError(f"--delta {args.delta!r}: must be a number in (0, 1)")
    first = last = None
    if args.period is not None:
        first, _, last = args.period.partition("..")
        last = last or first
        if not (_PERIOD.match(first) and _PERIOD.match(last)) or first > last:
            raise ConfigError(f"--period {args.period!r}: give YYYY-MM or FIRST..LAST (e.g. 2019-01..2019-12)")
    if args.out is not None:
        _check_out(args.out)
    seen: set[Path] = set()
    for node_dir in args.node_dirs:
        if not node_dir.is_dir():
            raise ConfigError(f"--node-dir {node_dir}: no such directory")
        if not (node_dir / CONTRACT_FILE).is_file():
            raise ConfigError(f"--node-dir {node_dir}: no {CONTRACT_FILE} (a node directory made by "
                              "`pulse-twin node init` holds its data contract there)")
        if node_dir.resolve() in seen:
            raise ConfigError(f"--node-dir {node_dir}: given twice")
        seen.add(node_dir.resolve())
    return args.by, first, last


def _stat_of(name: str, contract: Any) -> Stat | None:
    """`name` as this contract holds it (a feature or a series key), None if it holds no such thing."""
    from clients.contracts.registry import get_op

    for feature in contract.features():
        if feature.name != name:
            continue
        op = get_op(feature.op)
        series = op.series(feature.params, contract)
        if series is None:
            raise ConfigError(f"--stat {name}: in contract {contract.name} it is a public figure (op "
                              f"{feature.op}), not a DP release; analytics reports DP releases only")
        _private(name, contract, series[0].table)
        if len(series) == 1:
            kind = "rate" if feature.params.get("per_1000") else "sum"
            return Stat(name, kind, series[0].table, (series[0].key,))
        if len(series) == 2 and series[0].values is not None and series[1].values is None:
            return Stat(name, "mean", series[0].table, (series[0].key, series[1].key), op, feature.params)
        raise ConfigError(f"--stat {name}: op {feature.op} of contract {contract.name} has no federated "
                          "aggregate here; ask for its released series instead")
    for feature in contract.features():
        op = get_op(feature.op)
        for s in op.series(feature.params, contract) or ():
            if s.key == name:
                _private(name, contract, s.table)
                return Stat(name, "sum", s.table, (s.key,))
    return None


def _private(name: str, contract: Any, table: str) -> None:
    if contract.tables[table].privacy.is_public:
        raise ConfigError(f"--stat {name}: table '{table}' of contract {contract.name} is public statistics, "
                          "not a DP release; analytics reports DP releases only")


def _plans(args: argparse.Namespace) -> list[NodePlan]:
    from clients.contracts import load_contract

    plans = []
    found: set[str] = set()
    for node_dir in args.node_dirs:
        contract = load_contract(node_dir / CONTRACT_FILE)
        stats = [s for s in (_stat_of(name, contract) for name in dict.fromkeys(args.stats)) if s is not None]
        found.update(s.name for s in stats)
        plans.append(NodePlan(node_dir, contract, stats))
    missing = [name for name in dict.fromkeys(args.stats) if name not in found]
    if missing:
        shown = ", ".join(node_dir.name for node_dir in args.node_dirs)
        from clients.contracts.registry import get_op

        names = [f.name for plan in plans for f in plan.contract.features()
                 if get_op(f.op).series(f.params, plan.contract) is not None]
        hint = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
        raise ConfigError(f"--stat {missing[0]}: unknown; no contract of the nodes given ({shown}) has a feature "
                          f"or released series of that name (features: {hint})")
    kinds: dict[str, set[str]] = {}
    for plan in plans:
        for s in plan.stats:
            kinds.setdefault(s.name, set()).add(s.kind)
    for name, seen in kinds.items():
        if len(seen) > 1:
            raise ConfigError(f"--stat {name}: the nodes hold it as different kinds ({', '.join(sorted(seen))}); "
                              "they cannot be summed")
    return plans


# --- the node's release -----------------------------------------------------------------------------

def _build(plan: NodePlan, args: argparse.Namespace, run_id: str, by: str, first: str | None,
           last: str | None) -> None:
    """The node's DP release and its payload; nothing leaves the node here and nothing is charged."""
    import numpy as np

    from clients.release import DpRelease
    from clients.contracts import build_features
    from clients.egress.recover import ledger_trouble
    from clients.site_policy import load_site_policy

    policy = load_site_policy(plan.node_dir)
    plan.name, plan.accountant, plan.delta = policy.partner, policy.privacy.accountant, policy.privacy.delta
    # Pre-flight, so that a node that would refuse stops the run before any other node released anything;
    # the guard checks again (and everything else) when the payload is sent.
    try:
        policy.check_run_kind(RUN_KIND)
        policy.check_bundle(running_code_hash())
        if args.delta is not None:
            policy.check_delta(args.delta)
    except PolicyRefusal as refusal:
        raise PolicyRefusal(f"node {plan.name} ({plan.node_dir}): {refusal}") from None
    # A ledger the egress log does not vouch for (deleted, replaced) is named now, with the way back, rather
    # than as a stored release whose charge the ledger lacks (and before the guard would create an empty one).
    trouble = ledger_trouble(plan.node_dir)
    if trouble is not None:
        raise trouble
    # Calibrated at the node's own delta: the epsilon its ledger and budget charge is the one aimed at.
    plan.release = DpRelease(plan.node_dir, args.epsilon, plan.delta, run_id, accountant=plan.accountant,
                             redraw_lost=args.redraw_lost)

    def release(ctx, aggregates):
        plan.ctx = ctx
        return plan.release(ctx, aggregates)

    features = build_features(plan.contract, plan.node_dir, release=release)
    grid = plan.ctx.grid
    periods = list(grid.periods)
    chosen = [p for p in periods if (first is None or p >= first) and (last is None or p <= last)]
    if not chosen:
        raise ConfigError(f"--period {args.period}: node {plan.name} has no such period "
                          f"(it covers {periods[0]}..{periods[-1]})")
    plan.periods = chosen
    plan.suppressed = list(features.suppressed_areas)
    suppressed = set(plan.suppressed)
    kept = [str(a) for a in grid.areas if str(a) not in suppressed]
    plan.groups = _groups(kept, by, plan)
    frame = grid.frame()
    rows = frame["area_code"].isin(kept).to_numpy() & frame["period"].isin(chosen).to_numpy()
    series: dict[str, Any] = {}
    for stat in plan.stats:
        agg = features.aggregates[stat.table]
        sd = plan.release.report[stat.table]["noise_sd"]
        for key in stat.keys:
            values = np.asarray(agg.values[key], dtype=np.float64)[rows]
            series[key] = {"table": stat.table, "noise_sd": float(sd[key]),
                           "values": [None if not math.isfinite(v) else float(v) for v in values]}
    payload = {
        "node": plan.name, "run_id": run_id, "kind": "released series per (area, period)",
        "area_code": frame["area_code"][rows].astype(str).tolist(),
        "period": frame["period"][rows].astype(str).tolist(),
        "series": series,
    }
    plan.payload = json.dumps(payload, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def _groups(areas: list[str], by: str, plan: NodePlan) -> dict[str, str]:
    """Group of each released area: itself, its wijk, or its city; refuses what cannot be grouped."""
    if by == "area":
        return {a: a for a in areas}
    register = _register_columns(plan)
    out = {}
    for area in areas:
        m = _CBS_BUURT.match(area)
        if m:
            out[area] = f"WK{m.group(1)}{m.group(2)}" if by == "wijk" else f"GM{m.group(1)}"
            continue
        column = next((c for c in GROUP_COLUMNS[by] if c in register), None)
        if column is not None and isinstance(register[column].get(area), str) and register[column][area].strip():
            out[area] = register[column][area].strip()
        elif by == "city" and ":" in area:
            out[area] = area.split(":", 1)[0]
        else:
            where = plan.node_dir / (plan.contract.register_path or "public/areas.csv")
            raise ConfigError(
                f"--by {by}: area {area!r} of node {plan.name} is not a CBS buurt code (BU + 8 digits)"
                + (", has no city prefix before ':'" if by == "city" else "")
                + f" and {where} has no {' or '.join(repr(c) for c in GROUP_COLUMNS[by])} column for it"
            )
    return out


def _register_columns(plan: NodePlan) -> dict[str, dict[str, str]]:
    """Extra grouping columns of the node's public area register (area_code -> value), if it has any."""
    import pandas as pd

    if not plan.contract.register_path:
        return {}
    path = plan.node_dir / plan.contract.register_path
    try:
        data = pd.read_csv(path, dtype=str)
    except (OSError, ValueError):
        return {}
    wanted = [c for cols in GROUP_COLUMNS.values() for c in cols if c in data.columns]
    return {c: dict(zip(data["area_code"], data[c])) for c in wanted}


def _send(plan: NodePlan, run_id: str, args: argparse.Namespace, by: str) -> None:
    """Pass the payload through the node's egress guard (which charges and logs it), then keep the release."""
    from clients.egress import MESSAGE_KINDS, Egress, EgressGuard, bytes_digest

    rel = plan.release
    sha, nbytes = bytes_digest(plan.payload)
    tables = sorted({s.table for s in plan.stats})
    params: dict[str, Any] = {"stats": [s.name for s in plan.stats], "by": by,
                              "periods": [plan.periods[0], plan.periods[-1]],
                              "epsilon_target": args.epsilon, "delta": plan.delta}
    with EgressGuard.open(plan.node_dir) as guard:
        # The tables whose series this payload carries and that were not released anew: re-sent from the
        # node's stored release, so each must have been charged already.
        reused = {}
        for table in (t for t in tables if t in rel.reused):
            reused[table] = _charged_runs(rel.charged_runs(table), table, guard.ledger, plan)
        if reused:
            params["reused_tables"] = ",".join(sorted(reused))
            params["reused_releases"] = {t: runs for t, runs in sorted(reused.items())}
        if rel.redrawn:   # the operator's --redraw-lost, in the tamper-evident record of the charge it caused
            params["redrawn_lost_releases"] = {t: runs for t, runs in sorted(rel.redrawn.items())}
        if rel.charges:
            kind = "dp-aggregate"
        else:
            # Every table was re-used: the payload is post-processing of releases this node's ledger has
            # already charged (checked just above: each stored release names the runs that charged it, and
            # the ledger holds those charges). Re-sending a released value discloses nothing the release did
            # not, so the message charges nothing and claims no charge: it goes out as the guard's kind for a
            # re-sent release ("dp-aggregate-reused", whose own check finds the tables' charges in the
            # ledger), or, with a guard that lacks that kind, as a public fact naming the releases it re-sends
            # (params "reused_tables"/"reused_releases") -- never as "dp-aggregate", which must charge.
            kind = REUSED_KIND if REUSED_KIND in MESSAGE_KINDS else "public-fact"
        record = guard.release(Egress(run_id=run_id, round=0, kind=kind, run_kind=RUN_KIND, payload_sha256=sha,
                                      payload_bytes=nbytes, charges=list(rel.charges), rows=rel.records,
                                      params=params, bundle_hash=running_code_hash(),
                                      fields=analytics_fields(plan.payload)))
        rel.commit()
        plan.record = {"kind": kind, "epsilon_charged": record.get("epsilon_charged", 0.0),
                       "charged_tables": [r.table for r in rel.charges], "reused_tables": sorted(reused),
                       "redrawn_lost": dict(rel.redrawn), "tables": tables}


def _check_redraw_lost(tables: list[str], plans: list[NodePlan]) -> None:
    """Every --redraw-lost table must have been re-drawn on a node (a lost store found and drawn afresh); else
    the option names nothing lost (a typo, or a store put back) and the run stops before anything is sent."""
    redrawn = {t for plan in plans for t in plan.release.redrawn}
    for table in dict.fromkeys(tables):
        if table not in redrawn:
            raise ConfigError(f"--redraw-lost {table}: no node given ({', '.join(p.name for p in plans)}) has a lost "
                              f"release of table {table} that this run draws; nothing was released")


def analytics_fields(payload: bytes) -> tuple[str, ...]:
    """The fields of an analytics payload, for the guard's allow-list (`federation.messages.REPLY_FIELDS`)."""
    data = json.loads(payload)
    return tuple(sorted([f"analytics.{k}" for k in data if k != "series"]
                        + [f"analytics.series:{k}" for k in data.get("series", {})]))


def _charged_runs(runs: list[str], table: str, ledger: Any, plan: NodePlan) -> list[str]:
    """The runs that charged the stored cells a re-send carries, each checked against the ledger (a re-send
    must be covered)."""
    if not runs:
        raise ConfigError(f"node {plan.name}: the stored release of table {table} does not say which run charged "
                          "it; it is not re-sent")
    for run_id in runs:
        if not any(r.mechanism == "gaussian" and r.table == table for r in ledger.history(run_id=run_id)):
            raise ConfigError(f"node {plan.name}: the stored release of table {table} names run {run_id}, but the "
                              "node's ledger holds no charge of that table in that run; it is not re-sent")
    return runs


# --- post-processing at the lab ---------------------------------------------------------------------

def _aggregate(plans: list[NodePlan], stats: list[str], by: str) -> list[dict[str, Any]]:
    """Rows (stat, group) computed from the payloads that left the nodes and their public populations.

    Per group, `num` sums the released numerator over its (area, period) cells and `den` the denominator:
    nothing for a sum, residents / 1,000 for a rate (so `population_weight` is the residents summed over
    the cells), the released count for a mean. `var` sums the per-cell noise variances (independent draws).
    """
    import numpy as np

    acc: dict[tuple[str, str], dict[str, Any]] = {}
    for plan in plans:
        payload = json.loads(plan.payload)
        areas = np.array(payload["area_code"], dtype=object)
        periods = np.array(payload["period"], dtype=object)
        population = _population(plan, areas, periods)
        group = np.array([plan.groups[a] for a in areas], dtype=object)
        for stat in plan.stats:
            released = [payload["series"][k] for k in stat.keys]
            num = np.array([np.nan if v is None else v for v in released[0]["values"]], dtype=np.float64)
            if stat.kind == "rate":
                den = population / 1000.0
            elif stat.kind == "mean":
                den = np.array([np.nan if v is None else v for v in released[1]["values"]], dtype=np.float64)
            else:
                den = np.zeros_like(num)
            ok = np.isfinite(num) & np.isfinite(den) & ((den > 0) if stat.kind == "rate" else True)
            sd = released[0]["noise_sd"]
            for g in sorted(set(group[ok])):
                mask = ok & (group == g)
                row = acc.setdefault((stat.name, g), {"stat": stat.name, "group": g, "nodes": [], "areas": set(),
                                                      "periods": set(), "cells": 0, "num": 0.0, "den": 0.0,
                                                      "var": 0.0, "kind": stat.kind, "stat_obj": stat, "ctx": plan.ctx})
                overlap = row["areas"] & set(areas[mask])
                if overlap:
                    raise ConfigError(f"--stat {stat.name}: area {sorted(overlap)[0]} is released by two nodes "
                                      f"({row['nodes'][0]} and {plan.name}); give one of them")
                row["nodes"].append(plan.name)
                row["areas"] |= set(areas[mask])
                row["periods"] |= set(periods[mask])
                row["cells"] += int(mask.sum())
                row["num"] += float(num[mask].sum())
                row["den"] += float(den[mask].sum())
                row["var"] += sd * sd * int(mask.sum())
                if stat.kind == "mean":
                    sd_count = released[1]["noise_sd"]
                    row["var_den"] = row.get("var_den", 0.0) + sd_count * sd_count * int(mask.sum())
    order = {name: i for i, name in enumerate(stats)}
    out = []
    for (name, g), row in sorted(acc.items(), key=lambda item: (order[item[0][0]], item[0][1])):
        kind, stat = row["kind"], row["stat_obj"]
        if kind == "sum":
            value, noise_sd = row["num"], math.sqrt(row["var"])
        elif kind == "rate":
            value, noise_sd = row["num"] / row["den"], math.sqrt(row["var"]) / row["den"]
        else:
            value = float(stat.op.finish(stat.params, [np.array([row["num"]]), np.array([row["den"]])], row["ctx"])[0])
            noise_sd = _ratio_sd(row)
        out.append({"stat": name, "node": "+".join(row["nodes"]), by: g, "areas": len(row["areas"]),
                    "periods": len(row["periods"]), "value": value, "noise_sd": noise_sd, "kind": KIND_TEXT[kind],
                    "population_weight": row["den"] * 1000.0 if kind == "rate" else None})
    return out


def _ratio_sd(row: dict[str, Any]) -> float | None:
    """Approximate noise sd of a ratio of two noised sums (first-order, before the op's clip); None where the
    summed count is too small for the approximation to mean anything."""
    num, den = row["num"], row["den"]
    if not den >= 1:
        return None
    ratio = num / den
    return math.sqrt(row["var"] + ratio * ratio * row.get("var_den", 0.0)) / den


def _population(plan: NodePlan, areas: np.ndarray, periods: np.ndarray) -> np.ndarray:
    """Public residents (the node's public/areas.csv, year of the period) of each released cell."""
    import numpy as np

    grid = plan.ctx.grid
    if grid.population is None:
        return np.full(len(areas), np.nan)
    a = {str(code): i for i, code in enumerate(grid.areas)}
    p = {str(period): i for i, period in enumerate(grid.periods)}
    return np.array([grid.population[a[x], p[y]] for x, y in zip(areas, periods)], dtype=np.float64)


def _node_privacy(plan: NodePlan, delta: float) -> dict[str, Any]:
    """The node's epsilon recomputed from its ledger now, with delta, accountant and the tables' units."""
    from dp_accounting import PrivacyLedger, get_accountant, ledger_path
    from dp_accounting.accountants import second_opinion
    from dp_accounting.report import table_lines

    with PrivacyLedger(ledger_path(plan.node_dir)) as ledger:
        history = ledger.history()
    chosen = get_accountant(plan.accountant)
    lines = table_lines(history, chosen, second_opinion(plan.accountant), delta)
    used = set(plan.record.get("tables", []))
    return {
        "node": plan.name, "node_dir": str(plan.node_dir), "epsilon": chosen.epsilon(history, delta), "delta": delta,
        "accountant": chosen.name, "releases": len(history),
        "tables": [{"table": t.table, "unit": t.unit, "epsilon": t.epsilon,
                    "noise_multiplier": list(t.noise_multipliers), "sensitivity": list(t.sensitivities),
                    "record_unit": t.record_unit}
                   for t in lines if t.table in used],
        "message": plan.record.get("kind"), "epsilon_charged": plan.record.get("epsilon_charged", 0.0),
        "charged_tables": plan.record.get("charged_tables", []), "reused_tables": plan.record.get("reused_tables", []),
        "redrawn_lost": plan.record.get("redrawn_lost", {}),
        "suppressed_areas": plan.suppressed, "min_population": plan.contract.min_population,
    }


# --- the command ------------------------------------------------------------------------------------

def run(args: argparse.Namespace) -> int:
    by, first, last = _check_args(args)
    run_id = args.run_id or (f"analytics-{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%SZ')}-"
                             f"{secrets.token_hex(3)}")
    plans = [plan for plan in _plans(args) if plan.stats]
    # Every node's release and payload is made (and every grouping checked) before anything leaves a node.
    for plan in plans:
        _build(plan, args, run_id, by, first, last)
    _check_redraw_lost(args.redraw_lost, plans)
    for plan in plans:
        _send(plan, run_id, args, by)
    stats = list(dict.fromkeys(args.stats))
    rows = _aggregate(plans, stats, by)
    nodes = [_node_privacy(plan, plan.delta) for plan in plans]
    federation = _federation(plans) if len(plans) > 1 else None
    if args.out is not None:
        _write_csv(args.out, rows, by, nodes)
    if args.json:
        emit_json({"run_id": run_id, "by": by, "rows": rows, "nodes": nodes,
                   **({} if federation is None else {"federation": federation.to_dict()})})
    else:
        result(_text(run_id, by, rows, nodes, plans, args.out)
               + ("" if federation is None else f"\n\n{federation.sentence()}"))
    return 0


def _federation(plans: list[NodePlan]):
    """One person who is a unit in every table of every node: all the nodes' ledgers composed, at the largest
    of their deltas (each node's own is stated above)."""
    from dp_accounting import PrivacyLedger, ledger_path
    from dp_accounting.federation_level import federation_guarantee

    histories = {}
    for plan in plans:
        with PrivacyLedger(ledger_path(plan.node_dir)) as ledger:
            histories[plan.name] = ledger.history()
    return federation_guarantee(histories, max(plan.delta for plan in plans), plans[0].accountant)


def _check_out(path: Path) -> None:
    """Refuse an --out the CSV cannot be written to BEFORE anything is released: a typo must not cost a node
    its budget. The folder is not created: a missing one is more often a mistyped path than a wish."""
    folder = path.parent
    if path.is_dir():
        raise ConfigError(f"--out {path}: is a folder; name the CSV file to write")
    if not folder.exists():
        raise ConfigError(f"--out {path}: the folder {folder} does not exist")
    if not folder.is_dir():
        raise ConfigError(f"--out {path}: {folder} is a file, not a folder")
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise ConfigError(f"--out {path}: not writable")


def _write_csv(path: Path, rows: list[dict[str, Any]], by: str, nodes: list[dict[str, Any]]) -> None:
    privacy = {n["node"]: n for n in nodes}
    columns = ["stat", "node", by, "areas", "periods", "value", "noise_sd", "kind", "node_epsilon", "delta",
               "accountant", "unit"]
    try:
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(columns)
            for row in rows:
                names = row["node"].split("+")
                writer.writerow([row["stat"], row["node"], row[by], row["areas"], row["periods"], repr(row["value"]),
                                 "" if row["noise_sd"] is None else repr(row["noise_sd"]), row["kind"],
                                 "+".join(f"{privacy[n]['epsilon']:.6g}" for n in names),
                                 privacy[names[0]]["delta"], "+".join(privacy[n]["accountant"] for n in names),
                                 " | ".join(t["unit"] for n in names for t in privacy[n]["tables"])])
    except OSError as err:
        raise ConfigError(f"--out {path}: cannot write ({err.strerror or err})") from None


def _text(run_id: str, by: str, rows: list[dict[str, Any]], nodes: list[dict[str, Any]], plans: list[NodePlan],
          out: Path | None) -> str:
    periods = sorted({p for plan in plans for p in plan.periods})
    lines = [f"Federated analytics, run {run_id}, by {by}, periods {periods[0]}..{periods[-1]}", ""]
    header = ["stat", "node", by, "areas", "periods", "value", "noise sd", "kind"]
    table = [[r["stat"], r["node"], r[by], str(r["areas"]), str(r["periods"]), f"{r['value']:.3f}",
              "-" if r["noise_sd"] is None else f"{r['noise_sd']:.3f}", r["kind"]] for r in rows]
    widths = [max(len(h), *(len(t[i]) for t in table)) if table else len(h) for i, h in enumerate(header)]
    numeric = {3, 4, 5, 6}
    for cells in [header, *table]:
        lines.append("  " + "  ".join(c.rjust(w) if i in numeric else c.ljust(w)
                                      for i, (c, w) in enumerate(zip(cells, widths))).rstrip())
    lines += ["", "Every value is post-processing of the nodes' DP releases below. noise sd: the standard deviation "
                  "of the DP noise in the value (for a mean a first-order approximation; '-' where its released "
                  "count is below 1). The noise is not clipped, so a small count can come out negative and sums "
                  "stay unbiased. A node's release covers all its private tables at once; later runs re-use it."]
    for n in nodes:
        if n["message"] != "dp-aggregate":
            what = (f"charged nothing: re-sent values of its stored release of {', '.join(n['reused_tables'])}, "
                    "charged when first released")
        else:
            what = (f"charged {n['epsilon_charged']:.4f} for a new release of {', '.join(n['charged_tables'])}"
                    + (f"; re-used {', '.join(n['reused_tables'])}" if n["reused_tables"] else "")
                    + "".join(f"; {t} drawn afresh on --redraw-lost, its kept cells of run(s) {', '.join(runs)} being "
                              "lost (their charge stays)" for t, runs in sorted(n["redrawn_lost"].items())))
        lines += ["", f"node {n['node']} ({n['node_dir']}): this run {what}",
                  f"  epsilon of all its releases: {n['epsilon']:.4f} (delta {n['delta']:g}, {n['accountant'].upper()} "
                  f"accountant, recomputed from its ledger's {n['releases']} releases)"]
        for t in n["tables"]:
            lines.append(f"  table {t['table']}: unit {t['unit']}; epsilon of its releases {t['epsilon']:.4f} "
                         f"(delta {n['delta']:g}, {n['accountant'].upper()})"
                         + ("; a person in several records only by group privacy" if t["record_unit"] else ""))
        if n["min_population"] is None:
            lines.append("  suppression: the contract sets no min_population")
        else:
            shown = ", ".join(n["suppressed_areas"][:6]) + (" ..." if len(n["suppressed_areas"]) > 6 else "")
            lines.append(f"  suppressed (population < {n['min_population']}): {len(n['suppressed_areas'])} area(s)"
                         + (f" ({shown})" if shown else "") + "; they are in no release and in no value above")
    if out is not None:
        lines += ["", f"written: {out}"]
    return "\n".join(lines)
