"""Small Heerlen node directories in the raw-record formats of docs/raw-records.md, written by the tests.

Every table is a frame of TEXT cells (as an export would hold them) that a test may edit before
`write()`: put "abc" in an integer column, drop a column, add a row. The values are few and chosen by
hand, so expected features can be worked out on paper (see the comments).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

A1, A2, A3 = "BU09170001", "BU09170002", "BU09170003"   # A3 has 60 residents: suppressed at 100


def _frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows).astype(str)


def areas() -> pd.DataFrame:
    # A1: 1,000 residents in 2019 and 1,250 in 2020 (per-1,000 rates divide by the period's year);
    # A2: 2,000 in 2019 only (2020 uses 2019); A3: 60 (below the default min_population of 100), then 150.
    return _frame([
        {"area_code": A1, "area_name": "Eerste buurt", "year": 2019, "population": 1000},
        {"area_code": A1, "area_name": "Eerste buurt", "year": 2020, "population": 1250},
        {"area_code": A2, "area_name": "Tweede buurt", "year": 2019, "population": 2000},
        {"area_code": A3, "area_name": "Derde buurt", "year": 2019, "population": 60},
        {"area_code": A3, "area_name": "Derde buurt", "year": 2020, "population": 150},
    ])


def incidents() -> pd.DataFrame:
    # Months 2019-11 .. 2020-01. A1 2019-11: 2 burglaries, 1 drugs; A2 2019-12: 1 vandalism;
    # A1 2020-01: 1 nuisance; A3 2019-11: 1 burglary.
    rows = [
        ("PL2300-2019-0000001", "03-11-2019 10:15", A1, "woninginbraak", "2"),
        ("PL2300-2019-0000002", "17-11-2019 22:40", A1, "woninginbraak", "1"),
        ("PL2300-2019-0000003", "20-11-2019 01:05", A1, "drugs", "3"),
        ("PL2300-2019-0000004", "05-12-2019 14:00", A2, "vernieling_openbare_orde", "2"),
        ("PL2300-2020-0000001", "31-01-2020 23:59", A1, "overlast", "3"),
        ("PL2300-2019-0000005", "11-11-2019 09:00", A3, "woninginbraak", "1"),
    ]
    return _frame([dict(zip(["registratienummer", "datum_registratie", "buurtcode", "incidentsoort",
                             "prioriteit"], r)) for r in rows])


def register() -> pd.DataFrame:
    rows = []
    for area, year, inw, migr in [(A1, 2019, 1000, 0.2), (A1, 2020, 1250, 0.2), (A2, 2019, 2000, 0.4),
                                  (A3, 2019, 60, 0.1), (A3, 2020, 150, 0.1)]:
        rows.append({"buurtcode": area, "jaar": year, "inwoners": inw, "aandeel_0_15": 0.15,
                     "aandeel_65_plus": 0.25 if area == A1 else 0.20, "gem_huishoudgrootte": 2.1,
                     "aandeel_corporatiewoningen": 0.3, "gem_inkomen_per_inwoner": 22.5 if year == 2019 else 23.5,
                     "aandeel_laag_inkomen": 0.12, "bijstand_per_1000": 40.0, "jeugdzorg_pct": 11.0,
                     "wmo_per_1000": 60.0, "aandeel_migratieachtergrond": migr})
    return pd.DataFrame(rows)


def uitkeringen() -> pd.DataFrame:
    # HH-A: bijstand in A1 from 2019-06 (before the window), still open -> active in every month.
    # HH-B: bijstand in A1 starting 2019-12-15, closed 2020-01-03 -> new in 2019-12, active 2019-12, 2020-01.
    # HH-B: schuldhulp in A1 2019-11-01 .. 2019-11-30 -> debt assistance in 2019-11 only.
    # HH-C: bijstand in A2 ended 2019-10-31 (before the window) -> never counted.
    return pd.DataFrame([
        {"dossiernummer": "UK-1", "huishouden_pseudoniem": "HH-A", "buurtcode": A1, "regeling": "bijstand",
         "startdatum": "2019-06-01", "einddatum": None},
        {"dossiernummer": "UK-2", "huishouden_pseudoniem": "HH-B", "buurtcode": A1, "regeling": "bijstand",
         "startdatum": "2019-12-15", "einddatum": "2020-01-03"},
        {"dossiernummer": "UK-3", "huishouden_pseudoniem": "HH-B", "buurtcode": A1, "regeling": "schuldhulp",
         "startdatum": "2019-11-01", "einddatum": "2019-11-30"},
        {"dossiernummer": "UK-4", "huishouden_pseudoniem": "HH-C", "buurtcode": A2, "regeling": "bijstand",
         "startdatum": "2018-01-01", "einddatum": "2019-10-31"},
    ])


def meldingen() -> pd.DataFrame:
    # A1 2019-11: 2 reports, one of them youth nuisance; A2 2020-01: 1 report; A3 (suppressed) 2019-12: 1
    # report, so that every month of the window holds reports (periods.from).
    rows = [
        ("M-1", "2019-11-02T08:00:00", A1, "afval"),
        ("M-2", "2019-11-20T19:30:00", A1, "overlast_jeugd"),
        ("M-3", "2020-01-10T12:00:00", A2, "graffiti"),
        ("M-4", "2019-12-05T09:00:00", A3, "afval"),
    ]
    return _frame([dict(zip(["melding_id", "gemeld_op", "buurtcode", "categorie"], r)) for r in rows])


SCORES = ["score_woningvoorraad", "score_fysieke_omgeving", "score_voorzieningen", "score_sociale_samenhang",
          "score_overlast_onveiligheid"]


def enquete() -> pd.DataFrame:
    # A1 2019-11: two respondents, dimension means 0.1, 0.0, -0.1, 0.2, 0.0 -> liveability 4.30.
    # A2 2019-12: one respondent, scores sum to -0.2 -> 3.90.
    rows = [
        ("R1", A1, "2019-11", [0.2, 0.1, -0.1, 0.3, -0.1], 0),
        ("R2", A1, "2019-11", [0.0, -0.1, -0.1, 0.1, 0.1], 1),
        ("R3", A2, "2019-12", [-0.1, -0.1, 0.0, 0.0, 0.0], 0),
    ]
    return _frame([{"respondent_id": r, "buurtcode": a, "peilmaand": m, **dict(zip(SCORES, s)),
                    "voelt_zich_onveilig": u} for r, a, m, s, u in rows])


def casussen() -> pd.DataFrame:
    # K0 (A2) opened 2019-03-01 (before the window), closed 2019-11-10, jeugd, 2 h -> open 2019-11; the
    #    earliest closing month, 2019-11, is where the export window starts (periods.not_before).
    # K1 (A1) opened 2019-11-05, closed 2019-12-20, schulden|wonen, 10 h -> open 2019-11, 2019-12.
    # K2 (A1) opened 2019-12-01, still open, psychisch, 4 h -> open 2019-12, 2020-01.
    # K3 (A2) opened 2020-01-15, still open, schulden, 6 h -> open 2020-01.
    rows = [
        ("K0", "HH-W", A2, "2019-03-01", "2019-11-10", "jeugd", "2"),
        ("K1", "HH-X", A1, "2019-11-05", "2019-12-20", "schulden|wonen", "10"),
        ("K2", "HH-Y", A1, "2019-12-01", "", "psychisch", "4"),
        ("K3", "HH-Z", A2, "2020-01-15", "", "schulden", "6"),
    ]
    return _frame([dict(zip(["casusnummer", "huishouden_pseudoniem", "buurtcode", "datum_aanmelding",
                             "datum_afsluiting", "leefgebieden", "contacturen"], r)) for r in rows])


def write_csv(frame: pd.DataFrame, path: Path, encoding: str = "utf-8", delimiter: str = ",") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, sep=delimiter, index=False, encoding=encoding, lineterminator="\n")
    return path


def typed_register(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for col in out.columns:
        if col not in ("buurtcode",):
            out[col] = pd.to_numeric(out[col])
    return out


def typed_cases(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for col in ("startdatum", "einddatum"):
        out[col] = pd.to_datetime(out[col]).dt.date
    return out


@dataclass
class HeerlenFixture:
    """Editable raw tables of the three Heerlen nodes; `write(root)` puts them in node directories."""

    areas: pd.DataFrame = field(default_factory=areas)
    incidents: pd.DataFrame = field(default_factory=incidents)
    register: pd.DataFrame = field(default_factory=register)
    uitkeringen: pd.DataFrame = field(default_factory=uitkeringen)
    meldingen: pd.DataFrame = field(default_factory=meldingen)
    enquete: pd.DataFrame = field(default_factory=enquete)
    casussen: pd.DataFrame = field(default_factory=casussen)

    def copy(self) -> "HeerlenFixture":
        return copy.deepcopy(self)

    def write_police(self, node: Path) -> Path:
        write_csv(self.areas, node / "public" / "areas.csv")
        write_csv(self.incidents, node / "raw" / "incidents.csv", encoding="cp1252", delimiter=";")
        return node

    def write_municipality(self, node: Path) -> Path:
        write_csv(self.areas, node / "public" / "areas.csv")
        (node / "raw").mkdir(parents=True, exist_ok=True)
        typed_register(self.register).to_parquet(node / "raw" / "register_buurt.parquet", index=False)
        typed_cases(self.uitkeringen).to_parquet(node / "raw" / "uitkeringen.parquet", index=False)
        write_csv(self.meldingen, node / "raw" / "meldingen_openbare_ruimte.csv")
        write_csv(self.enquete, node / "raw" / "bewonersenquete.csv")
        return node

    def write_buurtteams(self, node: Path) -> Path:
        write_csv(self.areas, node / "public" / "areas.csv")
        write_csv(self.casussen, node / "raw" / "casussen.csv")
        return node

    def write(self, root: Path) -> dict[str, Path]:
        return {
            "police": self.write_police(root / "police"),
            "municipality": self.write_municipality(root / "municipality"),
            "buurtteams": self.write_buurtteams(root / "buurtteams"),
        }


# The fixture's export window (every table's months lie in it): the contracts' own windows are the synthetic
# data's, so a test building this fixture sets the window as a run would (periods.start / periods.end).
WINDOW = ("periods.start=2019-11", "periods.end=2020-01")
CITY_WINDOW = ("periods.start=2019-12", "periods.end=2020-01")   # the transfer-city fixtures (cities.py)


# The municipality's survey comes in quarterly waves (its contract's `cadence`); the fixture's survey answers
# in every month, as an export of a monthly survey would.
MUNICIPALITY_WINDOW = (*WINDOW, "tables.enquete.cadence.every=1")


def window(contract: str) -> tuple[str, ...]:
    """The fixture window of a project contract by name: the Heerlen fixture's or the transfer cities'."""
    if contract == "municipality":
        return MUNICIPALITY_WINDOW
    return CITY_WINDOW if contract in ("genk", "sant_boi", "piraeus") else WINDOW


def generated_window(node_dir: Path, months: int, start: str = "2019-01") -> list[str]:
    """A generated node's window as a run sets it: its own contract (`node init`'s copy) is set to the generated
    months, and the overrides for `pulse-twin features --contract <name>` are returned."""
    import re

    first = int(start[:4]) * 12 + int(start[5:7]) - 1
    last = first + months - 1
    end = f"{last // 12:04d}-{last % 12 + 1:02d}"
    own = Path(node_dir) / "contract.yaml"
    if own.is_file():
        text = re.sub(r"(?m)^  start: .*$", f"  start: {start}", own.read_text(encoding="utf-8"), count=1)
        own.write_text(re.sub(r"(?m)^  end: .*$", f"  end: {end}", text, count=1), encoding="utf-8")
    return [f"periods.start={start}", f"periods.end={end}"]
