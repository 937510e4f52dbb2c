"""`pulse-twin partition`: one node directory per value of a column (e.g. one per regional authority)."""
from __future__ import annotations

import argparse
from pathlib import Path

from federation.errors import ConfigError
from federation.output import progress, result

EVERY_LINE = 20   # up to this many partitions, one line each; beyond, a line per tenth and a summary


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "partition",
        help="split a node's raw table into one node directory per value of a column",
        description="For regional set-ups and benchmarks: reads the contract's table from --node-dir (validated "
                    "against the contract), and writes OUT/<value>/ for every value of --by: its rows (same "
                    "format, encoding and compression), its slice of the area register, the contract's other "
                    "tables cut to its areas, and a copy of the contract and of its node-local block schemas "
                    "(blocks/ beside it). Existing non-empty directories are refused.",
    )
    p.add_argument("--contract", required=True, metavar="PATH", help="the contract YAML file (copied to every node)")
    p.add_argument("--node-dir", required=True, type=Path, metavar="DIR", help="the directory holding all the data")
    p.add_argument("--by", required=True, metavar="COLUMN", help="the column whose values name the nodes")
    p.add_argument("--table", default=None, metavar="NAME", help="the table to split (needed if the contract has "
                                                                  "several)")
    p.add_argument("--out", required=True, type=Path, metavar="DIR", help="where the node directories are written")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from clients.contracts import load_contract
    from clients.contracts.splitting import split

    path = Path(args.contract)
    if not path.is_file():
        raise ConfigError(f"{path}: contract file not found (partition needs the YAML file, to copy it)")
    if not args.node_dir.is_dir():
        raise ConfigError(f"{args.node_dir}: node directory not found")
    contract = load_contract(path)

    def report(done, total, part):
        if total <= EVERY_LINE or done == total or done % max(total // 10, 1) == 0:
            progress(f"  [{done}/{total}] {part.node_dir}: {part.rows:,} rows, {part.areas:,} areas")

    parts = split(contract, path, args.node_dir, args.table, args.by, args.out, report)
    rows = sorted(p.rows for p in parts)
    result(f"wrote {len(parts)} node directories under {args.out} (rows per node: min {rows[0]:,}, "
           f"median {rows[len(rows) // 2]:,}, max {rows[-1]:,})")
    return 0
