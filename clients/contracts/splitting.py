"""Splitting one node's raw data into one node directory per value of a column (`pulse-twin partition`).

For regional set-ups and benchmarks: a national table becomes one node per regional authority, each with
its rows (written as the source is: same encoding, delimiter, compression and cell text), its slice of the
area register, the contract's other tables cut to its areas, and a copy of the contract and of its node-local
block schemas (`blocks/` beside it). Rows the table's
own `where` drops go to no node. The table is validated against the contract first, so a bad cell is refused once, naming its row, not once per node.
"""
from __future__ import annotations

import gzip
import re
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from federation.blocks import LOCAL_DIR
from clients.contracts.reading import RawTable, Source, read_raw
from clients.contracts.rowfilter import filter_rows
from clients.contracts.spec import Contract, TableSpec
from clients.contracts.validation import validate
from federation.errors import ContractError


@dataclass
class Part:
    """One node directory written: the value it holds, its directory, rows and areas."""

    value: str
    node_dir: Path
    rows: int
    areas: int


def directory_name(value: str) -> str:
    """A value as a directory name: letters, digits, `.`, `_` and `-` kept, anything else `_`."""
    name = re.sub(r"[^A-Za-z0-9._-]", "_", value.strip()).strip(".") or "_"
    return name


def _write(raw: RawTable, spec: TableSpec, rows: np.ndarray, dest: Path) -> None:
    """Rows `rows` of `raw` to `dest`, written the way the source file is."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    frame = raw.frame.iloc[rows]
    if raw.kind == "parquet":
        frame.to_parquet(dest, index=False)
        return
    text = frame.to_csv(sep=spec.delimiter, index=False, header=spec.header, lineterminator="\n")
    data = text.encode(spec.encoding if spec.encoding.lower() != "utf-8-sig" else "utf-8")
    if spec.encoding.lower() == "utf-8-sig":
        data = b"\xef\xbb\xbf" + data
    src = raw.path
    if isinstance(src, Source) and src.member is not None:
        with zipfile.ZipFile(dest, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(src.member, data)
    elif isinstance(src, Source) and src.gzip:
        with gzip.open(dest, "wb") as fh:
            fh.write(data)
    else:
        dest.write_bytes(data)


def _areas(contract: Contract, spec: TableSpec, node_dir: Path) -> tuple[RawTable, np.ndarray | None]:
    raw = filter_rows(read_raw(spec, node_dir), spec)
    table = validate(raw, spec, node_dir, known_areas=None, register=str(contract.register_path))
    return raw, table.area


def split(contract: Contract, contract_file: Path, node_dir: Path, table: str | None, column: str, out: Path,
          progress: Callable[[int, int, Part], None] | None = None) -> list[Part]:
    """Write one node directory under `out` per value of `table.column`; returns what was written."""
    if table is None:
        if len(contract.tables) != 1:
            raise ContractError(f"{contract.path}: the contract has {len(contract.tables)} tables "
                                f"({', '.join(contract.tables)}); name the one to split with --table")
        table = next(iter(contract.tables))
    if table not in contract.tables:
        raise ContractError(f"{contract.path}: no table '{table}' (tables: {', '.join(contract.tables)})")
    spec = contract.tables[table]
    raw, area = _areas(contract, spec, node_dir)
    if column not in raw.frame.columns:
        raise ContractError(f"{raw.path}: table '{table}' has no column '{column}' to split by "
                            f"(columns: {', '.join(map(str, raw.frame.columns))})")
    values = raw.frame[column].astype(str).str.strip()
    empty = (values == "").to_numpy()
    if empty.any():
        row = int(np.flatnonzero(empty)[0])
        raise ContractError(f"{raw.where(row, column)}: no value, so the row belongs to no partition")
    names: dict[str, str] = {}
    for value in pd.unique(values):
        name = directory_name(value)
        if name in names.values():
            other = next(v for v, n in names.items() if n == name)
            raise ContractError(f"{raw.path}, column '{column}': values {other!r} and {value!r} give the same "
                                f"directory name '{name}'")
        names[value] = name
    taken = [out / n for n in names.values() if (out / n).exists() and any((out / n).iterdir())]
    if taken:
        raise ContractError(f"{taken[0]}: already exists and is not empty ({len(taken)} of the {len(names)} "
                            "node directories); choose another --out or remove them")
    register = None
    if contract.register_path:
        register = pd.read_csv(node_dir / contract.register_path, dtype=str, keep_default_na=False)
    others = {name: _areas(contract, s, node_dir) for name, s in contract.tables.items()
              if name != table and (s.area_column() or s.area_template)}
    parts: list[Part] = []
    for i, (value, name) in enumerate(sorted(names.items())):
        target = out / name
        rows = np.flatnonzero((values == value).to_numpy())
        _write(raw, spec, rows, target / spec.path)
        codes = set() if area is None else set(area[rows]) - {None}
        if register is not None:
            kept = register[register["area_code"].isin(codes)]
            if kept.empty:
                raise ContractError(f"{node_dir / contract.register_path}: no area of partition {value!r} is in the "
                                    "area register")
            (target / contract.register_path).parent.mkdir(parents=True, exist_ok=True)
            kept.to_csv(target / contract.register_path, index=False, lineterminator="\n")
        for other, (other_raw, other_area) in others.items():
            _write(other_raw, contract.tables[other], np.flatnonzero(np.isin(other_area, list(codes))),
                   target / contract.tables[other].path)
        for s in contract.tables.values():
            if s.columns_from:
                shutil.copyfile(node_dir / s.columns_from, target / s.columns_from)
        shutil.copyfile(contract_file, target / "contract.yaml")
        for schema in sorted((Path(contract_file).parent / LOCAL_DIR).glob("*.yaml")):
            (target / LOCAL_DIR).mkdir(exist_ok=True)
            shutil.copyfile(schema, target / LOCAL_DIR / schema.name)
        parts.append(Part(value=value, node_dir=target, rows=len(rows), areas=len(codes)))
        if progress is not None:
            progress(i + 1, len(names), parts[-1])
    return parts
