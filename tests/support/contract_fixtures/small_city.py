"""A small synthetic city onboarded from YAML alone: a national statistics table (no time dimension,
thousands separators, gzip- or zip-compressed) of which the node keeps one authority's rows (`where`), with
shares derived by `expr`. Values chosen by hand (see `AREAS`) so features can be checked on paper.
"""
from __future__ import annotations

import gzip
import zipfile
from pathlib import Path

import yaml

# area, authority, population, children, elderly, households, income total (EUR), benefits, social housing share
AREAS = [
    ("0001", "NORTH", "1,252", "250", "313", "626", "30,048,000", "12", "0.20"),
    ("0002", "NORTH", "2,000", "300", "400", "0", "44,000,000", "40", "0.35"),    # 0 households: size missing
    ("0003", "NORTH", "4,000", "1,000", "600", "1,600", "100,000,000", "20", "0.10"),
    ("0101", "SOUTH", "3,500", "700", "350", "1,400", "70,000,000", "35", "0.40"),  # another authority
    ("0102", "SOUTH", "800", "x", "120", "300", "16,000,000", "8", "0.25"),         # bad cell, filtered out
]
HEADER = "area;authority;population;children;elderly;households;income_total;benefits;social_share"
PREFIX = "SC:"


def contract(path: str = "raw/stats.csv.gz", **table: object) -> dict:
    """The city's contract as data (written as YAML by `write_small_city`)."""
    expr = {"op": "expr", "table": "stats"}
    return {
        "name": "small_city",
        "description": "A small city's statistical areas, one authority of a national table.",
        "area_register": {"path": "public/areas.csv"},
        "periods": {"kind": "fixed", "value": "2021"},
        "privacy_unit": {"row": "area-period", "max_rows_per_person": 1},
        "min_population": 100,
        "tables": {"stats": {
            "path": path, "format": "csv", "delimiter": ";", "thousands": ",",
            "privacy": {"unit": "public"},
            "where": {"column": "authority", "equals": "NORTH"},
            "columns": {
                "area": {"type": "area", "prefix": PREFIX},
                "authority": {"type": "string"},
                "population": {"type": "integer", "min": 0},
                "children": {"type": "integer", "min": 0},
                "elderly": {"type": "integer", "min": 0},
                "households": {"type": "integer", "min": 0},
                "income_total": {"type": "integer", "min": 0},
                "benefits": {"type": "integer", "min": 0},
                "social_share": {"type": "float", "unit": "share"},
            },
            **table,
        }},
        "blocks": {"context": {
            "log_population": {"op": "area_value", "table": "stats", "column": "population", "apply": "log"},
            "share_0_15": {**expr, "expr": "children / population"},
            "share_65_plus": {**expr, "expr": "elderly / population"},
            "household_size": {**expr, "expr": "population / households"},
            "share_social_housing": {"op": "area_value", "table": "stats", "column": "social_share"},
            "income_per_resident_k": {**expr, "expr": "income_total / population / 1000"},
            "share_low_income": {**expr, "expr": "(benefits * 2) / population"},
            "benefits_per_1000": {**expr, "expr": "benefits * 1000 / population"},
        }},
    }


def csv_text(rows=AREAS) -> str:
    return HEADER + "\n" + "".join(";".join(r) + "\n" for r in rows)


def write_register(node: Path, codes=("0001", "0002", "0003")) -> None:
    pops = {r[0]: r[2].replace(",", "") for r in AREAS}
    lines = ["area_code,area_name,year,population"] + [f"{PREFIX}{c},Area {c},2021,{pops[c]}" for c in codes]
    (node / "public").mkdir(parents=True, exist_ok=True)
    (node / "public" / "areas.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_small_city(node: Path, packing: str = "gzip", members: dict[str, str] | None = None,
                     **table: object) -> Path:
    """Node directory with the national table packed as `gzip` or `zip` (`members`: the archive's files),
    the authority's register, and the contract YAML; returns the contract's path."""
    raw = node / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    write_register(node)
    if packing == "gzip":
        path = "raw/stats.csv.gz"
        with gzip.open(node / path, "wt", encoding="utf-8") as fh:
            fh.write(csv_text())
    else:
        path = "raw/stats.zip"
        with zipfile.ZipFile(node / path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name, text in (members if members is not None else {"stats.csv": csv_text()}).items():
                archive.writestr(name, text)
    target = node / "contract.yaml"
    target.write_text(yaml.safe_dump(contract(path, **table), sort_keys=False), encoding="utf-8")
    return target
