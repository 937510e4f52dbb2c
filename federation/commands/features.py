"""`pulse-twin features`: validate a node's raw tables against its data contract and write its feature blocks."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from federation.commands.options import add_json, add_overrides
from federation.output import emit_json, result


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "features",
        help="build a node's feature blocks and label from its raw tables, as its data contract says",
        description=(
            "Reads the node's raw tables and public area register, refuses bad input with one message naming "
            "the file, row and column, aggregates per (area_code, period) into the blocks of the contract, "
            "drops areas below the contract's minimum population, and writes <node-dir>/features/<block>.parquet "
            "(and label.parquet). Each build is written whole to <node-dir>/features/builds/<id>/ first and "
            "replaces the current features only when it is accepted: a build in which a feature moved far from "
            "the last accepted build (configs/build_checks.yaml) is held (exit 4) until re-run with --accept. "
            "Nothing leaves the node."
        ),
    )
    p.add_argument("--contract", required=True, metavar="NAME|PATH",
                   help="data contract: a name in configs/contract/ (police, municipality, buurtteams, genk, "
                        "sant_boi, piraeus, uci_communities) or the path of a contract YAML file")
    p.add_argument("--node-dir", required=True, type=Path, metavar="DIR",
                   help="the node's data directory (holds public/areas.csv and raw/; features/ is written here)")
    p.add_argument("--out", type=Path, default=None, metavar="DIR",
                   help="write the features to DIR/features/ instead of <node-dir>/features/ (for a read-only "
                        "data folder such as the UCI data)")
    add_overrides(p, "min_population=200 periods.start=2019-06 (fields of the contract)")
    add_json(p)
    p.add_argument("--accept", action="store_true",
                   help="make this build current even if a feature moved far from the last accepted build "
                        "(after checking that the change is real)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from clients.contracts import build_features, load_contract, write_features
    from clients.contracts.proxies import describe

    contract = load_contract(args.contract, overrides=args.overrides)
    features = build_features(contract, node_dir=args.node_dir)
    written = write_features(features, args.out or args.node_dir, accept=args.accept)
    stats = features.stats
    build = json.loads(written[-1].read_text(encoding="utf-8"))["build"]
    if args.json:
        emit_json({"contract": contract.name, "contract_path": str(contract.path), "node_dir": str(args.node_dir),
                   "stats": stats, "suppressed_areas": list(features.suppressed_areas),
                   "privacy_unit_k": features.privacy_unit_k, "build": build, "written": [str(p) for p in written]})
        return 0
    periods = stats["periods"]
    result(f"contract {contract.name} ({contract.path}) on {args.node_dir}")
    result(f"  periods: {periods['first']} .. {periods['last']} ({periods['count']})")
    for table, months in (stats.get("missing_months") or {}).items():
        result(f"  table {table}: months missing from the export, marked missing (never zero): {', '.join(months)}")
    for block, months in (stats.get("missing_periods") or {}).items():
        result(f"  {block}: no rows in {', '.join(months)} (a table it reads has no data then)")
    for table, columns in (stats.get("pseudonyms") or {}).items():
        for column, c in columns.items():
            if c["merged_spellings"] or c["near_duplicates"]:
                result(f"  table {table}, {column}: {c['merged_spellings']:,} spellings folded into the same person; "
                       f"{c['near_duplicates']:,} pseudonyms differ only in punctuation (check the export)")
    for table, kept in stats["row_filters"].items():
        result(f"  table {table}: row filter ({kept['where']}) kept {kept['rows_kept']:,} of {kept['rows_read']:,} "
               f"rows ({kept['rows_dropped']:,} dropped)")
    for block, rows in stats["rows_per_block"].items():
        dropped = stats["rows_incomplete_dropped"].get(block, 0)
        result(f"  block {block}: {rows} area-period rows" + (f" ({dropped} incomplete rows left out)" if dropped else ""))
    if stats["label_rows"] is not None:
        result(f"  label: {stats['label_rows']} area-period rows")
    suppressed = features.suppressed_areas
    shown = ", ".join(suppressed[:10]) + (" ..." if len(suppressed) > 10 else "")
    if contract.min_population is None:
        result("  suppressed areas: none (the contract sets no min_population; see its comment)")
    else:
        result(f"  suppressed areas (population < {contract.min_population}): {len(suppressed)}"
               + (f" ({shown})" if suppressed else ""))
    observed = stats["observed_max_rows_per_person"]
    result(f"  privacy unit: area-period row, k = {features.privacy_unit_k} rows per person"
           + (f" (largest seen in the data: {observed})" if observed is not None else ""))
    for proxy in stats["protected_proxies"]:
        result(f"  warning: {describe(proxy)}")
    result(f"  build {build['id']} accepted" + (f" (previous {build['previous']})" if build["previous"] else ""))
    for line in build["shifts"]:
        result(f"  accepted with --accept although it moved: {line}")
    result(f"  written: {', '.join(str(p) for p in written)}")
    return 0
