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

Which export, force, area list and populations: the `export` section of the federation config
(configs/federation/leicestershire.yaml; `Export`): any police force's street-level export of
data.police.uk in the same format runs by configuration, with its force name (checked on every row), the
districts whose LSOAs form its area (or its own area list with populations), and the months it must
cover. A month in which the export, or one partner's share of it, holds no record at all was not
published: it is refused (`missing_months: refuse`, the default) or written to
`<node>/public/missing_months.csv` (`mark`), never read as a month of zero crime. The window itself goes to
`<node>/public/window.json`: the contracts require one, and every build of a prepared node's contract takes it
as overrides (`contract_window`), so another force's export with other months needs no contract edit.

The force area is Leicestershire Police's: the City of Leicester, the seven districts of the county of
Leicestershire, and Rutland (`export.districts`, by the 2019 district codes of the population file).
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
    python -m benchmarks.leicestershire --out DIR --federation FORCE   # configs/federation/FORCE.yaml's export

Deterministic: the same source files give the same bytes (records keep the publisher's order).
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd

from federation.errors import PulseTwinError

APP_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = APP_ROOT / "data" / "leicestershire"   # data_root of configs/federation/leicestershire.yaml
FEDERATION = "leicestershire"
MISSING_MONTHS_FILE = "missing_months.csv"   # <node>/public/: months the export did not publish (mode `mark`)
WINDOW_FILE = "window.json"   # <node>/public/: the export's window, {"start", "end", "missing"}, for its contract


@dataclass(frozen=True)
class Export:
    """One police force's data.police.uk street-level export and its area register, as the federation
    config's `export` section sets them (configs/federation/leicestershire.yaml)."""

    source_dir: Path
    crimes_file: str
    force: str
    populations_file: str | None = None
    districts: Mapping[str, str] = field(default_factory=dict)   # district code (2019) -> name
    areas_file: Path | None = None                              # area_code, area_name, population
    months: tuple[str, str] | None = None
    missing_months: str = "refuse"                              # refuse | mark

    @classmethod
    def from_config(cls, export: Mapping[str, Any]) -> "Export":
        try:
            months = export.get("months")
            out = cls(Path(str(export["source_dir"])), str(export["crimes_file"]), str(export["force"]),
                      export.get("populations_file"), dict(export.get("districts") or {}),
                      Path(str(export["areas_file"])) if export.get("areas_file") else None,
                      (str(months[0]), str(months[1])) if months else None,
                      str(export.get("missing_months", "refuse")))
        except (KeyError, TypeError, IndexError) as err:
            raise ValueError(f"federation.export: {err!r} (needs source_dir, crimes_file, force, and either "
                             "populations_file with districts or areas_file)") from None
        if out.missing_months not in ("refuse", "mark"):
            raise ValueError(f"federation.export.missing_months: 'refuse' or 'mark', not {out.missing_months!r}")
        if out.areas_file is None and not (out.populations_file and out.districts):
            raise ValueError("federation.export: set areas_file, or populations_file and districts")
        for month in out.months or ():
            if not _is_month(month):
                raise ValueError(f"federation.export.months: {month!r} is not YYYY-MM")
        return out

    @property
    def crimes_path(self) -> Path:
        return self.source_dir / self.crimes_file


def load_export(federation: str = FEDERATION, overrides: Sequence[str] = ()) -> Export:
    """The `export` section of `configs/federation/<federation>.yaml`, with Hydra overrides."""
    from federation.config import compose, to_container

    fed = to_container(compose("config", [f"federation={federation}", *overrides]))["federation"]
    if "export" not in fed:
        raise ValueError(f"federation '{federation}' has no `export` section (see configs/federation/leicestershire.yaml)")
    return Export.from_config(fed["export"])


def _is_month(m: str) -> bool:
    return len(m) == 7 and m[4] == "-" and (m[:4] + m[5:]).isdigit() and 1 <= int(m[5:]) <= 12


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
    force: str = ""
    source: Path | None = None
    missing: dict[str, list[str]] = field(default_factory=dict)  # partner (or "all") -> months marked missing


def _read_csv_gz(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: source file not found (see ../shared/data/SOURCES.md)")
    with gzip.open(path, "rt", encoding="utf-8", newline="") as fh:
        return pd.read_csv(fh, dtype=str, keep_default_na=False, na_filter=False)


def read_register(export: Export) -> pd.DataFrame:
    """area_code, area_name, population of the force area's LSOAs, sorted by code: the export's own area list
    (`areas_file`), or the population file's LSOAs of the configured districts."""
    if export.areas_file is not None:
        path = export.areas_file
        area = _read_csv_gz(path) if path.suffix == ".gz" else _read_csv(path)
        missing = [c for c in ("area_code", "area_name", "population") if c not in area.columns]
        if missing:
            raise ValueError(f"{path}: missing column(s) {missing} (an area list: area_code, area_name, population)")
    else:
        path = export.source_dir / str(export.populations_file)
        pop = _read_csv_gz(path)
        missing = [c for c in POPULATION_COLUMNS if c not in pop.columns]
        if missing:
            raise ValueError(f"{path}: missing column(s) {missing}")
        pop = pop[list(POPULATION_COLUMNS)].rename(columns=POPULATION_COLUMNS)
        area = pop[pop["district"].isin(list(export.districts))].copy()
        found = set(area["district"])
        if found != set(export.districts):
            raise ValueError(f"{path}: no LSOA for district(s) {sorted(set(export.districts) - found)} "
                             "(federation.export.districts)")
    population = pd.to_numeric(area["population"], errors="coerce")
    if population.isna().any() or (population <= 0).any():
        row = int((population.isna() | (population <= 0)).to_numpy().argmax()) + 2
        raise ValueError(f"{path}: line {row}: population {area['population'].iloc[row - 2]!r} is not a positive number")
    area["population"] = population.astype("int64")
    if area["area_code"].duplicated().any():
        raise ValueError(f"{path}: LSOA code {area.loc[area['area_code'].duplicated(), 'area_code'].iloc[0]} "
                         "appears twice")
    return area[["area_code", "area_name", "population"]].sort_values("area_code").reset_index(drop=True)


def _read_csv(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: area list not found (federation.export.areas_file)")
    return pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False)


def read_crimes(export: Export) -> pd.DataFrame:
    """The published records as text, with `record_no`; refuses a file whose constant columns changed or that
    another force published."""
    path = export.crimes_path
    crimes = _read_csv_gz(path) if path.suffix == ".gz" else _read_csv(path)
    if tuple(crimes.columns) != SOURCE_COLUMNS:
        raise ValueError(f"{path}: columns {list(crimes.columns)}, expected {list(SOURCE_COLUMNS)}")
    for column, expected in (("Reported by", export.force), ("Falls within", export.force), ("Context", "")):
        other = crimes[column] != expected
        if other.any():
            raise ValueError(f"{path}: column '{column}' is {crimes.loc[other, column].iloc[0]!r} on "
                             f"{int(other.sum())} row(s), expected always {expected!r} (federation.export.force); "
                             "it is left out of the node files, so review the partner split before using this file")
    bad = sorted(m for m in set(crimes["Month"]) if not _is_month(m))
    if bad:
        row = int((crimes["Month"] == bad[0]).to_numpy().argmax()) + 1
        raise ValueError(f"{path}: data row {row}, column 'Month': {bad[0]!r} is not YYYY-MM")
    known = {t for types in PARTNERS.values() for t in types}
    unknown = sorted(set(crimes["Crime type"]) - known)
    if unknown:
        raise ValueError(f"{path}: crime type(s) {unknown} belong to no partner (PARTNERS)")
    crimes.insert(0, "record_no", [str(i) for i in range(1, len(crimes) + 1)])
    return crimes


def missing_months(crimes: pd.DataFrame, window: tuple[str, str] | None) -> tuple[list[str], dict[str, list[str]]]:
    """The window's months (configured, or the export's first to last) and, per partner, the months in which
    it holds no record at all in the whole export ("all": none of the export's records): months the publisher
    did not publish for those crime types, which must never be read as a month of zero crime."""
    first, last = window or (min(crimes["Month"]), max(crimes["Month"]))
    months = [str(p) for p in pd.period_range(first, last, freq="M")]
    seen = {partner: set(crimes.loc[crimes["Crime type"].isin(types), "Month"]) for partner, types in PARTNERS.items()}
    seen["all"] = set(crimes["Month"])
    return months, {who: [m for m in months if m not in got] for who, got in seen.items() if set(months) - got}


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


def build(root: Path, export: Export | None = None) -> Prepared:
    """Write every partner's node directory under `root`; return the nodes, row counts and timings."""
    export = export or load_export()
    root = Path(root)
    clock = time.perf_counter()
    timings: dict[str, float] = {}

    def lap(step: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[step] = now - clock
        clock = now

    register = read_register(export)
    crimes = read_crimes(export)
    lap("read")

    months, gaps = missing_months(crimes, export.months)
    if gaps and export.missing_months == "refuse":
        listed = "; ".join(f"{'every partner' if who == 'all' else who}: {', '.join(m)}" for who, m in gaps.items())
        raise ValueError(f"{export.crimes_path}: month(s) of {months[0]} .. {months[-1]} without any record ({listed}): "
                         "the export did not publish them, and they would be read as months of zero crime. Use an "
                         "export that covers every month, narrow federation.export.months, or set "
                         "federation.export.missing_months=mark")
    outside_window = ~crimes["Month"].isin(months)
    force_area = set(register["area_code"])
    no_lsoa = crimes["LSOA code"] == ""
    outside = ~no_lsoa & ~crimes["LSOA code"].isin(force_area)
    kept = crimes[~no_lsoa & ~outside & ~outside_window]
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

    dropped = {"no LSOA code": int(no_lsoa.sum()), "LSOA outside the force area": int(outside.sum())}
    if outside_window.any():
        dropped["month outside federation.export.months"] = int((outside_window & ~no_lsoa & ~outside).sum())
    out = Prepared(nodes={}, rows_read=len(crimes), rows_kept=len(records), dropped=dropped,
                   areas=len(register), residents=int(register["population"].sum()), years=years,
                   months=(months[0], months[-1]), force=export.force, source=export.crimes_path, missing=gaps)
    out.areas_without_records = len(unseen)
    for partner, types in PARTNERS.items():
        node = root / partner
        mine = records[records["crime_type"].isin(types)]
        out.files.append(_write_csv(areas, node / "public" / "areas.csv"))
        out.files.append(_write_csv(mine, node / "raw" / "crimes.csv"))
        marked = sorted(set(gaps.get(partner, [])) | set(gaps.get("all", [])))
        (node / "public" / MISSING_MONTHS_FILE).unlink(missing_ok=True)
        if marked:
            out.files.append(_write_csv(pd.DataFrame({"period": marked, "reason": "not published in the export"}),
                                        node / "public" / MISSING_MONTHS_FILE))
        window = {"start": months[0], "end": months[-1], "missing": export.missing_months}
        (node / "public" / WINDOW_FILE).write_text(json.dumps(window) + "\n", encoding="utf-8")
        out.files.append(node / "public" / WINDOW_FILE)
        out.nodes[partner] = node
        out.rows_per_partner[partner] = len(mine)
    if sum(out.rows_per_partner.values()) != out.rows_kept:
        raise AssertionError("the partners' records do not add up to the kept records")
    lap("write")
    out.timings = timings
    return out


def contract_window(node_dir: Path) -> list[str]:
    """The overrides a prepared node's contract is built with: the export's window (`periods.start`/`end`; the
    contracts require one and refuse a month of it without records) and, when the export's missing months are
    marked, `periods.missing=mark`. [] for a directory this benchmark did not prepare."""
    path = Path(node_dir) / "public" / WINDOW_FILE
    if not path.is_file():
        return []
    try:
        window = json.loads(path.read_text(encoding="utf-8"))
        out = [f"periods.start={window['start']}", f"periods.end={window['end']}"]
        return out + (["periods.missing=mark"] if window.get("missing") == "mark" else [])
    except (ValueError, KeyError, TypeError):
        raise ValueError(f"{path}: not a window this benchmark wrote (rerun python -m benchmarks.leicestershire)") from None


def prepare(root: Path, export: Export | None = None) -> dict[str, Path]:
    """Write `root/<partner>/public/areas.csv` and `root/<partner>/raw/crimes.csv` for every partner (the
    export of `configs/federation/leicestershire.yaml` unless another is given); return {partner: node dir}."""
    return build(root, export).nodes


def report(p: Prepared) -> str:
    lines = [f"{p.force}: street-level crime, {p.months[0]} .. {p.months[1]} (source {p.source})",
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
    for who, months in p.missing.items():
        lines.append(f"  MARKED MISSING ({'every partner' if who == 'all' else who}; not published, not zero): "
                     f"{', '.join(months)} -> <node>/public/{MISSING_MONTHS_FILE}")
    lines.append(f"  window: {p.months[0]} .. {p.months[1]} -> <node>/public/{WINDOW_FILE} (the contracts' "
                 "periods.start/end: `contract_window`)")
    lines.append(f"  label partner: {LABEL_PARTNER}")
    lines.append("  timings: " + ", ".join(f"{k} {v:.2f} s" for k, v in p.timings.items())
                 + f"; total {sum(p.timings.values()):.2f} s")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.leicestershire",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, metavar="DIR",
                        help=f"root of the partners' node directories (default: {DEFAULT_OUT})")
    parser.add_argument("--federation", default=FEDERATION, metavar="NAME",
                        help="the federation config whose `export` section names the export, force, area list and "
                             "populations (default: %(default)s; another force: a copy of "
                             "configs/federation/leicestershire.yaml)")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                        help="config overrides, e.g. federation.export.crimes_file=avon_street.csv.gz "
                             "'federation.export.force=Avon and Somerset Constabulary'")
    args = parser.parse_args(argv)
    try:
        prepared = build(args.out, load_export(args.federation, args.overrides))
    except (OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except PulseTwinError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(report(prepared))
    print("  written:")
    for path in prepared.files:
        print(f"    {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
