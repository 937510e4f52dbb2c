"""Who is where: Heerlen's buurten (CBS boundaries and populations), their wijk, the local stadsdelen and
areas of `configs/twin/<city>.yaml`, and the lab's postcode table when it supplies one."""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import pandas as pd
import yaml

from federation.config import configs_dir
from federation.errors import ConfigError
from server.report import CBS_FILE
from server.report.areas import boundaries, svg_paths
from server.ranges import PROBABILITY_OPEN, Range


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
    checked(data, path)
    data["_path"] = str(path)
    return data


SETTINGS_KEYS = ("city", "stadsdelen", "gebieden", "postcodes", "population_bands", "level")


def checked(data: Mapping[str, Any], path: Path) -> None:
    """Refuse twin settings the page would misread, naming the setting: unknown keys, a city code that is
    not a CBS municipality code, a wijk that is not the city's (a typo would silently move a wijk out of
    its stadsdeel), a wijk in two stadsdelen, a gebied naming an unknown stadsdeel, bands or level out of range."""
    def fail(where: str, what: str) -> ConfigError:
        return ConfigError(f"{path}: {where}: {what}")

    unknown = sorted(set(data) - set(SETTINGS_KEYS) - {"_path"})
    if unknown:
        raise fail(unknown[0], f"not a twin setting (settings: {', '.join(SETTINGS_KEYS)})")
    city = data["city"]
    if not (isinstance(city, dict) and re.fullmatch(r"GM\d{4}", str(city.get("code", ""))) and city.get("name")):
        raise fail("city", "give {code: GM<4 digits> (the CBS municipality code), name: ...}")
    prefix = "WK" + str(city["code"])[2:]
    known_wijken = {c for c in cbs_names_and_population()[0] if c.startswith(prefix)}
    owner: dict[str, str] = {}
    stadsdelen = data.get("stadsdelen") or {}
    if not isinstance(stadsdelen, dict):
        raise fail("stadsdelen", "a mapping {id: {name: ..., wijken: [WK...]}} expected")
    for sd, spec in stadsdelen.items():
        if not (isinstance(spec, dict) and spec.get("name") and isinstance(spec.get("wijken"), list)):
            raise fail(f"stadsdelen.{sd}", "give {name: ..., wijken: [WK..., ...]}")
        for w in spec["wijken"]:
            if not re.fullmatch(rf"{prefix}\d{{2}}", str(w)):
                raise fail(f"stadsdelen.{sd}.wijken", f"{w!r} is not a wijk code of {city['code']} ({prefix}NN)")
            if known_wijken and w not in known_wijken:
                raise fail(f"stadsdelen.{sd}.wijken", f"{w} is not a wijk of {city['name']} in the CBS file")
            if w in owner:
                raise fail(f"stadsdelen.{sd}.wijken", f"{w} is already in stadsdeel {owner[w]}")
            owner[w] = str(sd)
    gebieden = data.get("gebieden") or {}
    if not isinstance(gebieden, dict):
        raise fail("gebieden", "a mapping {id: {name: ..., stadsdelen: [...]}} expected")
    for g, spec in gebieden.items():
        if not (isinstance(spec, dict) and spec.get("name") and isinstance(spec.get("stadsdelen"), list)):
            raise fail(f"gebieden.{g}", "give {name: ..., stadsdelen: [...]}")
        for sd in spec["stadsdelen"]:
            if sd not in stadsdelen:
                raise fail(f"gebieden.{g}.stadsdelen", f"{sd!r} is not one of the stadsdelen above")
    for key, default, allowed in (("population_bands", 3, Range(1, 10, whole=True)), ("level", 0.9, PROBABILITY_OPEN)):
        if not allowed.admits(data.get(key, default)):
            raise fail(key, f"{allowed.words()} expected, got {data[key]!r}")
    if data.get("postcodes") is not None and not isinstance(data["postcodes"], str):
        raise fail("postcodes", "a file name or null expected")


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
