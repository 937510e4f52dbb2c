"""A small Signalen-shaped export for the community node, with the values worked out on paper.

Two real Heerlen buurten (the public boundaries place the coordinates): B1 = BU09171000 (Maria Gewanden)
and B2 = BU09171001, 1,000 and 2,000 residents. Window 2019-01 .. 2021-12 as the contract declares; every
month holds a few reports (a complete export), and the cells the tests read are planted on top:

- 2020-03, B1: resident `r-heavy` reports 5 times (the bound keeps 1, so 4 are cut and reported);
  resident `r-one` reports once, placed ONLY by coordinates (empty buurtcode), closed in 3 days, satisfied.
- 2020-03, B2: `r-late` reports once, closed after 10 days (outside the 7-day norm), unsatisfied.
- 2020-03, B1: frontliner `wijkagent-7` signals 6 times (the bound keeps 4).
Every row carries planted free text, a photo link, an e-mail and a phone number that must never leave.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd

from federation.config import APP_ROOT

B1, B2 = "BU09171000", "BU09171001"
POINT_B1 = "5.91545,50.92497638"        # a point inside B1 (the mean of its boundary's vertices)
PLANTED_TEXT = "Planted-free-text-4711 lamp kapot bij nummer 12"
PLANTED_EMAIL = "planted.person@example.org"
PLANTED_PHONE = "+31 6 1234 0000"
BOUNDARIES = "server/report/data/heerlen_buurten_2019.geojson"


def _row(i: int, reporter: str, buurt: str, created: str, closed: str = "", source: str = "bewoner",
         category: str = "openbare_ruimte", sub: str = "verlichting", satisfaction: str = "",
         point: str = "") -> dict:
    return {"melding_id": f"SIG-{i:06d}", "hoofdcategorie": category, "subcategorie": sub, "bron": source,
            "gemeld_op": created, "afgehandeld_op": closed, "status": "afgehandeld" if closed else "gemeld",
            "statushistorie": "gemeld>afgehandeld" if closed else "gemeld", "buurtcode": buurt,
            "locatie": point, "melder_pseudoniem": reporter, "tevredenheid": satisfaction,
            "omschrijving": PLANTED_TEXT, "foto_url": "https://example.org/foto/4711.jpg",
            "email": PLANTED_EMAIL, "telefoon": PLANTED_PHONE}


def export_rows() -> list[dict]:
    rows: list[dict] = []
    for m, month in enumerate(pd.period_range("2019-01", "2021-12", freq="M")):
        # background: one report per buurt-month by a resident of its own, in the waste category
        for j, buurt in enumerate((B1, B2)):
            rows.append(_row(len(rows), f"r-bg-{m}-{j}", buurt, f"{month}-15T10:00:00", category="afval",
                             sub="grofvuil"))
    rows += [_row(len(rows) + k, "r-heavy", B1, f"2020-03-0{k + 1}T09:00:00") for k in range(5)]
    rows.append(_row(len(rows), "r-one", "", "2020-03-10T09:00:00", "2020-03-13T09:00:00",
                     satisfaction="tevreden", point=POINT_B1))
    rows.append(_row(len(rows), "r-late", B2, "2020-03-10T09:00:00", "2020-03-20T09:00:00",
                     satisfaction="ontevreden"))
    rows += [_row(len(rows) + k, "wijkagent-7", B1, f"2020-03-1{k}T11:00:00", source="wijkagent",
                  category="overlast", sub="jongeren") for k in range(6)]
    return rows


def write_community(node: Path, rows: list[dict] | None = None) -> Path:
    """The community node's public files and its raw export under `node`."""
    (node / "public").mkdir(parents=True, exist_ok=True)
    (node / "raw").mkdir(parents=True, exist_ok=True)
    pd.DataFrame([{"area_code": c, "area_name": n, "year": 2019, "population": p}
                  for c, n, p in ((B1, "Maria Gewanden", 1000), (B2, "Tweede buurt", 2000))]
                 ).to_csv(node / "public" / "areas.csv", index=False)
    shutil.copyfile(APP_ROOT / BOUNDARIES, node / "public" / "buurten.geojson")
    path = node / "raw" / "meldingen.csv"
    pd.DataFrame(rows if rows is not None else export_rows()).to_csv(path, index=False)
    return path
