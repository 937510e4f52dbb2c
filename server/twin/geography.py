"""Who is where: Heerlen's buurten (CBS boundaries and populations), their wijk, the local stadsdelen and
areas of `configs/twin/<city>.yaml`, and the lab's postcode table when it supplies one."""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import pandas as pd
import yaml

from federation.config import configs_dir
from federation.errors import ConfigError
from server.report import CBS_FILE
from server.report.areas import boundaries, svg_paths


@dataclass(frozen=True)
class Place:
    """One area of any level: `level` is buurt, wijk, stadsdeel, gebied or city; `members` its buurten."""

    code: str
    name: str
    level: str
    population: float
    members: tuple[str, ...]
    wijk: str = ""
    stadsdeel: str = ""


def groupings(city: str = "heerlen", path: Path | None = None) -> dict[str, Any]:
    """The city's local groupings and twin settings (`configs/twin/<city>.yaml`)."""
    path = path or configs_dir() / "twin" / f"{city}.yaml"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: twin settings not found") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({err})") from None
    if not isinstance(data, dict) or "city" not in data:
        raise ConfigError(f"{path}: a mapping with 'city', 'stadsdelen', 'gebieden' expected")
    data["_path"] = str(path)
    return data


def cbs_names_and_population(year: int = 2020) -> tuple[dict[str, str], dict[str, float]]:
    """Names and inhabitants of every buurt and wijk in the shipped CBS file (its latest year by default)."""
    frame = pd.read_csv(CBS_FILE, usecols=["jaar", "niveau", "code_derived", "Wijk_Buurt", "Bevolking_Aantal_inwoners"])
    frame = frame[frame["jaar"] == year]
    names = dict(zip(frame["code_derived"], frame["Wijk_Buurt"].astype(str)))
    population = dict(zip(frame["code_derived"], frame["Bevolking_Aantal_inwoners"].astype(float)))
    return names, population


def wijk_of(buurt: str) -> str:
    """The CBS wijk of a buurt code: BU0917WWBB lies in WK0917WW."""
    return "WK" + buurt[2:8]


def places(buurten: list[str], settings: Mapping[str, Any], other_city: str = "") -> dict[str, Place]:
    """Every buurt of the run, each wijk, stadsdeel and gebied holding any, and the city, by code. Areas that
    are not the configured city's CBS buurten (another city's codes) get no wijk or groupings: only the areas
    and their whole, named `other_city`."""
    city = settings["city"]
    prefix = "BU" + str(city["code"])[2:]
    if not buurten or not all(b.startswith(prefix) for b in buurten):
        out = {b: Place(b, b, "buurt", float("nan"), (b,)) for b in buurten}
        out["ALL"] = Place("ALL", other_city or "all areas", "city", float("nan"), tuple(buurten))
        return out
    names, population = cbs_names_and_population()
    shapes = boundaries()
    wijk_sd = {w: sd for sd, spec in (settings.get("stadsdelen") or {}).items() for w in spec.get("wijken", [])}
    out: dict[str, Place] = {}
    for b in buurten:
        name = shapes[b].name if b in shapes else names.get(b, b)
        w = wijk_of(b)
        out[b] = Place(b, name, "buurt", float(population.get(b, float("nan"))), (b,), w, wijk_sd.get(w, ""))
    for w in sorted({p.wijk for p in out.values()}):
        members = tuple(b for b, p in out.items() if p.wijk == w)
        out[w] = Place(w, names.get(w, w), "wijk", _total(out, members), members, w, wijk_sd.get(w, ""))
    for sd, spec in (settings.get("stadsdelen") or {}).items():
        members = tuple(b for b, p in out.items() if p.level == "buurt" and p.stadsdeel == sd)
        if members:
            out[sd] = Place(sd, str(spec["name"]), "stadsdeel", _total(out, members), members, "", sd)
    for g, spec in (settings.get("gebieden") or {}).items():
        members = tuple(b for b, p in out.items() if p.level == "buurt" and p.stadsdeel in spec.get("stadsdelen", []))
        if members:
            out[g] = Place(g, str(spec["name"]), "gebied", _total(out, members), members)
    out[str(city["code"])] = Place(str(city["code"]), str(city["name"]), "city", _total(out, tuple(buurten)),
                                   tuple(buurten))
    return out


def _total(found: Mapping[str, Place], members: tuple[str, ...]) -> float:
    return float(sum(found[m].population for m in members if found[m].population == found[m].population))


def same_city(buurten: list[str]) -> set[str]:
    """The shipped buurten of the run's own municipality (same BU+municipality code), released or not."""
    cities = {b[:6] for b in buurten if b.startswith("BU")}
    return {c for c in boundaries() if c[:6] in cities}


def map_shapes(buurten: list[str]) -> tuple[dict[str, str], float]:
    """SVG path data of the run's buurten that have a shipped boundary, and the map's height at width 760."""
    shapes = boundaries()
    shown = [shapes[c] for c in sorted(buurten) if c in shapes]
    return svg_paths(shown) if shown else ({}, 0.0)


def postcodes(path: Path | None, known: set[str]) -> dict[str, list[str]]:
    """{PC4: [buurt codes]} from the lab's table (`postcode,area_code` lines); {} without one. A postcode of
    an unknown buurt is refused, naming the line."""
    if path is None:
        return {}
    out: dict[str, list[str]] = {}
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except FileNotFoundError:
        raise ConfigError(f"{path}: postcode table not found") from None
    for line, row in enumerate(rows, start=2):
        pc, code = str(row.get("postcode") or "").replace(" ", "")[:4], str(row.get("area_code") or "").strip()
        if not (len(pc) == 4 and pc.isdigit()):
            raise ConfigError(f"{path}: line {line}, column 'postcode': not a Dutch postcode ({row.get('postcode')!r})")
        if code not in known:
            raise ConfigError(f"{path}: line {line}, column 'area_code': {code!r} is not a buurt of this run")
        out.setdefault(pc, [])
        if code not in out[pc]:
            out[pc].append(code)
    return out
