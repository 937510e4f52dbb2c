"""The REAL Leicestershire street-level crime records as a vertical federation of three police-data partners.

Source (`../shared/data/uk_police_leicestershire`, see SOURCES.md there): every street-level crime and
anti-social-behaviour record data.police.uk published for Leicestershire Police, 2019-12 to 2022-10
(301,838 rows), and the mid-2015 LSOA populations of the English Indices of Deprivation 2019.

`prepare(root)` writes one node directory per partner, `root/<partner>/`, in the layout of
docs/raw-records.md ("Leicestershire (real records, benchmark)"):

- `public/areas.csv`: the public area register (area_code, area_name, year, population): the 611 LSOAs
  (2011) of the force area, each with its mid-2015 population (excluding prisoners) repeated for every
  calendar year the crime records cover (2019-2022);
- `raw/crimes.csv`: that partner's records (plain UTF-8 CSV, `,`), only those located in an LSOA of the
  force area.

The force area is Leicestershire Police's: the City of Leicester, the seven districts of the county of
Leicestershire, and Rutland (FORCE_AREA_DISTRICTS, by the 2019 district codes of the population file).
`Falls within` cannot tell it (it is "Leicestershire Police" on every row of this force's files), and
the LSOAs seen in the file are too many: 129 of the 740 codes lie in 22 other districts (records snapped
to a point across the force boundary, and a few far away). Rows dropped, and why: no LSOA code (the
publisher could not place them), or an LSOA outside the force area. Nothing else is dropped; repeated
crime IDs and identical anti-social-behaviour rows stay (see the docs).

Partners (PARTNERS): `uk_violence` (violence and sexual offences, public order, possession of weapons,
robbery; also the label: its records per 1,000 residents of the month), `uk_property` (burglary, vehicle
crime, criminal damage and arson, shoplifting, bicycle theft, other theft, theft from the person) and
`uk_asb` (anti-social behaviour, drugs, other crime). Contracts `configs/contract/uk_<partner>.yaml`,
blocks `configs/block/uk_<partner>.yaml`, federation `configs/federation/leicestershire.yaml`.

    python -m benchmarks.leicestershire --out DIR      # prints what it wrote, the row counts and timings

Deterministic: the same source files give the same bytes (records keep the publisher's order).
"""
from __future__ import annotations

import argparse
import gzip
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import pandas as pd

APP_ROOT = Path(__file__).resolve().parent.parent
SOURCE_DIR = APP_ROOT.parent / "shared" / "data" / "uk_police_leicestershire"
CRIMES_FILE = "leicestershire_street_2019-12_2022-10.csv.gz"
POPULATION_FILE = "iod2019_lsoa_population_mid2015.csv.gz"
DEFAULT_OUT = APP_ROOT / "data" / "leicestershire"   # data_root of configs/federation/leicestershire.yaml

FORCE = "Leicestershire Police"
# Local authority districts (2019 codes) that make up the Leicestershire Police force area.
FORCE_AREA_DISTRICTS: dict[str, str] = {
    "E06000016": "Leicester",
    "E06000017": "Rutland",
    "E07000129": "Blaby",
    "E07000130": "Charnwood",
    "E07000131": "Harborough",
    "E07000132": "Hinckley and Bosworth",
    "E07000133": "Melton",
    "E07000134": "North West Leicestershire",
    "E07000135": "Oadby and Wigston",
}

# Each of the publisher's 14 crime types belongs to exactly one partner (values as published).
PARTNERS: dict[str, tuple[str, ...]] = {
    "uk_violence": ("Violence and sexual offences", "Public order", "Possession of weapons", "Robbery"),
    "uk_property": ("Burglary", "Vehicle crime", "Criminal damage and arson", "Shoplifting", "Bicycle theft",
                    "Other theft", "Theft from the person"),
    "uk_asb": ("Anti-social behaviour", "Drugs", "Other crime"),
}
LABEL_PARTNER = "uk_violence"

# Source column -> column of raw/crimes.csv. `Reported by` and `Falls within` (always this force) and
# `Context` (always empty) are checked and left out; `record_no` is added: the record's 1-based data row in
# the published file (header = row 0), a unique key, because `Crime ID` is blank for anti-social behaviour
# and a few crime IDs reappear in a later month.
COLUMNS: dict[str, str] = {
    "Crime ID": "crime_id",
    "Month": "month",
    "LSOA code": "lsoa_code",
    "LSOA name": "lsoa_name",
    "Crime type": "crime_type",
    "Last outcome category": "last_outcome",
    "Longitude": "longitude",
    "Latitude": "latitude",
    "Location": "location",
}
SOURCE_COLUMNS = ("Crime ID", "Month", "Reported by", "Falls within", "Longitude", "Latitude", "Location",
                  "LSOA code", "LSOA name", "Crime type", "Last outcome category", "Context")
POPULATION_COLUMNS = {
    "LSOA code (2011)": "area_code",
    "LSOA name (2011)": "area_name",
    "Local Authority District code (2019)": "district",
    "Total population: mid 2015 (excluding prisoners)": "population",
}


@dataclass
class Prepared:
    """What `build` wrote and what it counted."""

    nodes: dict[str, Path]
    rows_read: int = 0
    rows_kept: int = 0
    dropped: dict[str, int] = field(default_factory=dict)        # reason -> rows
    rows_per_partner: dict[str, int] = field(default_factory=dict)
    areas: int = 0
    areas_without_records: int = 0
    residents: int = 0
    years: tuple[int, ...] = ()
    months: tuple[str, str] = ("", "")
    timings: dict[str, float] = field(default_factory=dict)      # step -> seconds
    files: list[Path] = field(default_factory=list)


def _read_csv_gz(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: source file not found (see ../shared/data/SOURCES.md)")
    with gzip.open(path, "rt", encoding="utf-8", newline="") as fh:
        return pd.read_csv(fh, dtype=str, keep_default_na=False, na_filter=False)


def read_register(source: Path = SOURCE_DIR) -> pd.DataFrame:
    """area_code, area_name, population of the LSOAs of the force area, sorted by code."""
    pop = _read_csv_gz(source / POPULATION_FILE)
    missing = [c for c in POPULATION_COLUMNS if c not in pop.columns]
    if missing:
        raise ValueError(f"{source / POPULATION_FILE}: missing column(s) {missing}")
    pop = pop[list(POPULATION_COLUMNS)].rename(columns=POPULATION_COLUMNS)
    area = pop[pop["district"].isin(list(FORCE_AREA_DISTRICTS))].copy()
    area["population"] = pd.to_numeric(area["population"], errors="raise").astype("int64")
    if area["area_code"].duplicated().any():
        raise ValueError(f"{source / POPULATION_FILE}: an LSOA code appears twice")
    found = set(area["district"])
    if found != set(FORCE_AREA_DISTRICTS):
        raise ValueError(f"{source / POPULATION_FILE}: no LSOA for district(s) "
                         f"{sorted(set(FORCE_AREA_DISTRICTS) - found)}")
    return area[["area_code", "area_name", "population"]].sort_values("area_code").reset_index(drop=True)


def read_crimes(source: Path = SOURCE_DIR) -> pd.DataFrame:
    """The published records as text, with `record_no`; refuses a file whose constant columns changed."""
    path = source / CRIMES_FILE
    crimes = _read_csv_gz(path)
    if tuple(crimes.columns) != SOURCE_COLUMNS:
        raise ValueError(f"{path}: columns {list(crimes.columns)}, expected {list(SOURCE_COLUMNS)}")
    for column, expected in (("Reported by", FORCE), ("Falls within", FORCE), ("Context", "")):
        other = crimes[column] != expected
        if other.any():
            raise ValueError(f"{path}: column '{column}' is {crimes.loc[other, column].iloc[0]!r} on "
                             f"{int(other.sum())} row(s), expected always {expected!r}; it is left out of the "
                             "node files, so review the partner split before using this file")
    known = {t for types in PARTNERS.values() for t in types}
    unknown = sorted(set(crimes["Crime type"]) - known)
    if unknown:
        raise ValueError(f"{path}: crime type(s) {unknown} belong to no partner (PARTNERS)")
    crimes.insert(0, "record_no", [str(i) for i in range(1, len(crimes) + 1)])
    return crimes


def _write_csv(frame: pd.DataFrame, path: Path) -> Path:
    """UTF-8, `,`, LF line ends; written to a temporary name first and renamed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        frame.to_csv(tmp, index=False, encoding="utf-8", lineterminator="\n")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def build(root: Path, source: Path = SOURCE_DIR) -> Prepared:
    """Write every partner's node directory under `root`; return the nodes, row counts and timings."""
    root = Path(root)
    clock = time.perf_counter()
    timings: dict[str, float] = {}

    def lap(step: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[step] = now - clock
        clock = now

    register = read_register(source)
    crimes = read_crimes(source)
    lap("read")

    force_area = set(register["area_code"])
    no_lsoa = crimes["LSOA code"] == ""
    outside = ~no_lsoa & ~crimes["LSOA code"].isin(force_area)
    kept = crimes[~no_lsoa & ~outside]
    months = sorted(kept["Month"].unique())
    bad = [m for m in months if len(m) != 7 or m[4] != "-" or not (m[:4] + m[5:]).isdigit()]
    if bad:
        raise ValueError(f"{source / CRIMES_FILE}: month {bad[0]!r} is not YYYY-MM")
    years = tuple(range(int(months[0][:4]), int(months[-1][:4]) + 1))
    unseen = sorted(force_area - set(kept["LSOA code"]))

    areas = pd.DataFrame({
        "area_code": register["area_code"].repeat(len(years)).to_numpy(),
        "area_name": register["area_name"].repeat(len(years)).to_numpy(),
        "year": list(years) * len(register),
        "population": register["population"].repeat(len(years)).to_numpy(),
    })
    records = kept[["record_no", *COLUMNS]].rename(columns=COLUMNS)
    lap("select")

    out = Prepared(nodes={}, rows_read=len(crimes), rows_kept=len(records),
                   dropped={"no LSOA code": int(no_lsoa.sum()),
                            "LSOA outside the force area": int(outside.sum())},
                   areas=len(register), residents=int(register["population"].sum()), years=years,
                   months=(months[0], months[-1]))
    out.areas_without_records = len(unseen)
    for partner, types in PARTNERS.items():
        node = root / partner
        mine = records[records["crime_type"].isin(types)]
        out.files.append(_write_csv(areas, node / "public" / "areas.csv"))
        out.files.append(_write_csv(mine, node / "raw" / "crimes.csv"))
        out.nodes[partner] = node
        out.rows_per_partner[partner] = len(mine)
    if sum(out.rows_per_partner.values()) != out.rows_kept:
        raise AssertionError("the partners' records do not add up to the kept records")
    lap("write")
    out.timings = timings
    return out


def prepare(root: Path) -> dict[str, Path]:
    """Write `root/<partner>/public/areas.csv` and `root/<partner>/raw/crimes.csv` for every partner;
    return {partner: node directory}."""
    return build(root).nodes


def report(p: Prepared) -> str:
    lines = [f"Leicestershire street-level crime, {p.months[0]} .. {p.months[1]} (source {SOURCE_DIR})",
             f"  rows read: {p.rows_read:,}",
             f"  rows kept: {p.rows_kept:,} (located in one of the {p.areas} LSOAs of the force area, "
             f"{p.residents:,} residents mid-2015)"]
    lines += [f"  rows dropped, {why}: {n:,}" for why, n in p.dropped.items()]
    if p.areas_without_records:
        lines.append(f"  force-area LSOAs without any record (all months zero): {p.areas_without_records}")
    for partner, node in p.nodes.items():
        lines.append(f"  {partner}: {p.rows_per_partner[partner]:,} records -> {node}/raw/crimes.csv "
                     f"({', '.join(PARTNERS[partner])})")
    lines.append(f"  area register: {p.areas} areas x years {p.years[0]}-{p.years[-1]} -> "
                 "<node>/public/areas.csv (every partner)")
    lines.append(f"  label partner: {LABEL_PARTNER}")
    lines.append("  timings: " + ", ".join(f"{k} {v:.2f} s" for k, v in p.timings.items())
                 + f"; total {sum(p.timings.values()):.2f} s")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.leicestershire",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, metavar="DIR",
                        help=f"root of the partners' node directories (default: {DEFAULT_OUT})")
    parser.add_argument("--source", type=Path, default=SOURCE_DIR, metavar="DIR",
                        help="folder holding the two source files (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        prepared = build(args.out, args.source)
    except (OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(report(prepared))
    print("  written:")
    for path in prepared.files:
        print(f"    {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
