"""`pulse-twin contract`: check a data contract without any data, and print its reference."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from federation.commands.options import add_json, add_overrides
from federation.output import emit_json, result

if TYPE_CHECKING:   # the contracts package pulls in pandas: not for `pulse-twin --help`
    from clients.contracts.spec import Contract


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "contract",
        help="check a data contract without data, or print the contract reference",
        description="Data contracts (YAML): check one before any data exists, or print the reference of every "
                    "key and op (docs/contract-reference.md).",
    )
    sub = parser.add_subparsers(dest="contract_command", metavar="ACTION", required=True)
    check = sub.add_parser(
        "check",
        help="validate a contract file without any data",
        description="Checks every key, op, parameter, column reference, unit, privacy bound and the period spec of "
                    "a contract, and the protected-attribute rules, without reading any data. Prints 'ok' and a "
                    "summary, or one message naming the file, the key and what is wrong (exit code 2).",
    )
    check.add_argument("file", metavar="FILE", help="the contract YAML file (or a name in configs/contract/)")
    add_overrides(check, "min_population=200 (fields of the contract, as for `pulse-twin features`)")
    add_json(check)
    check.set_defaults(func=run_check)
    ref = sub.add_parser(
        "reference",
        help="print (or write) the contract reference generated from the contract schema",
        description="The reference of every contract key and op, generated from the schema the parser itself "
                    "reads (the same text as docs/contract-reference.md).",
    )
    ref.add_argument("--out", type=Path, default=None, metavar="FILE", help="write it to FILE instead of printing")
    ref.set_defaults(func=run_reference)


def summary(contract: Contract) -> str:
    """One paragraph: tables and their privacy units, features per block, the label, periods and areas."""
    tables = []
    for t in contract.tables.values():
        extra = f", row filter {' and '.join(c.describe() for c in t.where)}" if t.where else ""
        bounds = "" if t.privacy.is_public or t.privacy.max_cells is None else (
            f", at most {t.privacy.max_cells} cells and {t.privacy.max_per_cell} per cell")
        tables.append(f"{t.name} ({t.format} {t.path}, {len(t.columns)} declared columns; unit: "
                      f"{t.privacy.describe()}{bounds}{extra})")
    n_features = sum(len(f) for f in contract.blocks.values())
    blocks = ", ".join(f"{b} ({len(f)}" + (f", node-local {contract.local_blocks[b].source}"
                                           if b in contract.local_blocks else "") + ")"
                       for b, f in contract.blocks.items()) or "none"
    label = f"; label by op {contract.label.op}" if contract.label is not None else "; no label"
    p = contract.periods
    checked = ", ".join(f"{t}.{c}" for t, c in p.sources)
    periods = (f"one fixed period {p.value}" if p.kind == "fixed"
               else f"every month {p.start} to {p.end}" + (f" (complete in {checked}; a missing month is "
                                                          f"{'refused' if p.missing == 'refuse' else 'marked'})"
                                                          if checked else ""))
    areas = (f"areas from {contract.register_path}, suppressed below {contract.min_population} residents"
             if contract.register_path else f"areas of table {contract.register_table}, no suppression")
    return (f"contract '{contract.name}': {len(contract.tables)} table(s): {'; '.join(tables)}. "
            f"{n_features} feature(s) in {len(contract.blocks)} block(s): {blocks}{label}. Periods: {periods}; "
            f"{areas}; privacy unit of the rows: {contract.privacy_unit_row}, at most "
            f"{contract.max_rows_per_person} row(s) per person."
            + (f" Ignored (YAML anchors only): {', '.join(contract.ignored_keys)}." if contract.ignored_keys else ""))


def run_check(args: argparse.Namespace) -> int:
    from clients.contracts import load_contract

    contract = load_contract(args.file, overrides=args.overrides)
    if args.json:
        emit_json({"ok": True, "path": str(contract.path), "name": contract.name, "summary": summary(contract),
                   "tables": {t.name: {"path": str(t.path), "format": t.format, "unit": t.privacy.describe()}
                              for t in contract.tables.values()},
                   "blocks": {b: list(f) for b, f in contract.blocks.items()},
                   "label": contract.label is not None})
        return 0
    result(f"ok: {contract.path}")
    result(summary(contract))
    return 0


def run_reference(args: argparse.Namespace) -> int:
    from clients.contracts.reference import render

    text = render()
    if args.out is None:
        sys.stdout.write(text)
    else:
        args.out.write_text(text, encoding="utf-8")
        result(f"written: {args.out}")
    return 0
