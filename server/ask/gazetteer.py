"""Place names a question may use: CBS buurten and wijken with their codes (the boundaries and CBS file that
ship in server/report/data), the run's own area codes, the municipality's groupings and aliases
(configs/ask/places.yaml) and the city's names. Matching is exact first, then fuzzy (difflib), and a name
that fits several places equally well is returned as ambiguous so the colleague asks back."""
from __future__ import annotations

import csv
import difflib
import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Iterable, Mapping

from server.ask.text import fold
from server.report import CBS_FILE, DATA_DIR
from server.report.areas import boundaries

CITY = "city"
DROP = {"de", "het", "t", "'t", "wijk", "buurt", "en omgeving"}
# Words too common to name a place on their own when they are only part of a name.
COMMON = {"nieuw", "groot", "oost", "west", "noord", "zuid", "centrum", "dorp", "kom", "omgeving", "heerlen",
          "verspreide", "huizen", "schil", "stad", "burettestraat", "ziekenhuis"}


@dataclass(frozen=True)
class Place:
    key: str                 # buurt or wijk code, a group's name, or "city"
    kind: str                # buurt | wijk | group | city | area (a run code without a name)
    name: str
    codes: tuple[str, ...]   # the buurt (or run area) codes it covers


@dataclass(frozen=True)
class Match:
    place: Place
    start: int               # token span in the question
    end: int
    score: float
    said: str                # the words of the question it matched


@dataclass(frozen=True)
class Ambiguous:
    said: str
    candidates: tuple[Place, ...]


def key_of(name: str) -> str:
    """How a name is compared: folded, hyphens as spaces, articles and 'wijk'/'buurt' dropped."""
    text = re.sub(r"^wijk \d+\s+", "", fold(name))
    text = re.sub(r"[-/.,():]", " ", text).replace(" en omgeving", " ")
    return " ".join(w for w in text.split() if w not in DROP)


@dataclass
class Gazetteer:
    places: dict[str, Place]
    names: dict[str, list[Place]] = field(default_factory=dict)   # key_of(name) -> places
    _words: frozenset[str] | None = field(default=None, repr=False, compare=False)

    def add_name(self, name: str, place: Place) -> None:
        key = key_of(name)
        self._words = None
        if key and place not in self.names.setdefault(key, []):
            self.names[key].append(place)

    @property
    def vocabulary(self) -> frozenset[str]:
        """Every word of every name it knows (as compared), for telling names from other words."""
        if self._words is None:
            self._words = frozenset(w for key in self.names for w in key.split())
        return self._words

    def by_code(self, code: str) -> Place | None:
        return self.places.get(code.upper()) or self.places.get(code)

    def find(self, tokens: list[str], cutoff: float, margin: float) -> tuple[list[Match], list[Ambiguous]]:
        """Non-overlapping place names in the question's words (longest and best first)."""
        candidates: list[tuple[float, int, int, list[Place], str]] = []
        keys = list(self.names)
        for start in range(len(tokens)):
            for end in range(min(len(tokens), start + 5), start, -1):
                said = " ".join(tokens[start:end])
                span = key_of(said)
                if not span:
                    continue
                if span in self.names:
                    candidates.append((1.0, start, end, self.names[span], said))
                    continue
                if span in COMMON:
                    continue
                if len(span) >= 5:
                    close = difflib.get_close_matches(span, keys, n=4, cutoff=cutoff)
                    if close:
                        best = difflib.SequenceMatcher(None, span, close[0]).ratio()
                        near = [k for k in close if difflib.SequenceMatcher(None, span, k).ratio() >= best - margin]
                        candidates.append((best, start, end, [p for k in near for p in self.names[k]], said))
                        continue
                if end - start == 1 and len(span) >= 6:
                    partial = [p for k, ps in self.names.items() if span in k.split() and span != k for p in ps]
                    if partial:
                        candidates.append((0.9 - 0.01 * len(partial), start, end, partial, said))
        candidates.sort(key=lambda c: (-c[0], -(c[2] - c[1]), c[1]))
        taken: set[int] = set()
        found, unclear = [], []
        for score, start, end, places, said in candidates:
            if taken & set(range(start, end)):
                continue
            taken |= set(range(start, end))
            said_kind = tokens[start] if tokens[start] in ("wijk", "buurt") else (tokens[start - 1] if start else "")
            distinct = _distinct(places, said_kind)
            if len(distinct) == 1:
                found.append(Match(distinct[0], start, end, score, said))
            else:
                unclear.append(Ambiguous(said, tuple(distinct)))
        found.sort(key=lambda m: m.start)
        return found, unclear


def _distinct(places: list[Place], before: str) -> list[Place]:
    """Places that are really different areas; a 'wijk' or 'buurt' said before the name decides between them."""
    unique: dict[tuple[str, ...], Place] = {}
    for place in places:
        kept = unique.get(place.codes)
        if kept is None or (kept.kind != "buurt" and place.kind == "buurt"):
            unique[place.codes] = place
    out = list(unique.values())
    wanted = {"wijk": "wijk", "district": "wijk", "buurt": "buurt", "neighbourhood": "buurt",
              "neighborhood": "buurt", "stadsdeel": "group"}.get(before)
    if wanted and len(out) > 1 and any(p.kind == wanted for p in out):
        out = [p for p in out if p.kind == wanted]
    return out


@lru_cache(maxsize=16)
def _cbs_names() -> tuple[tuple[str, str, str], ...]:
    """(level, code, name) of the latest year of the shipped CBS file."""
    latest: dict[str, tuple[int, str, str]] = {}
    with open(CBS_FILE, encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            code, year = row["code_derived"], int(row["jaar"])
            if code not in latest or latest[code][0] < year:
                latest[code] = (year, row["niveau"], row["Wijk_Buurt"])
    return tuple((level, code, name) for code, (_, level, name) in sorted(latest.items()))


def build(run_codes: Iterable[str], places_cfg: Mapping, city_name: str = "") -> Gazetteer:
    """The gazetteer for one run: every place whose buurten the run has, and the run's other codes."""
    run_codes = tuple(sorted({str(c) for c in run_codes}))
    shapes = boundaries()
    wijk_of = {code: None for code in run_codes}
    names: dict[str, str] = {}
    for code, area in shapes.items():
        names[code] = area.name
    for level, code, name in _cbs_names():
        names.setdefault(code, name)
        if level == "wijk":
            names[code] = re.sub(r"^Wijk \d+\s+", "", name)
    data = json.loads((DATA_DIR / "heerlen_buurten_2019.geojson").read_text(encoding="utf-8"))
    for feature in data["features"]:
        props = feature["properties"]
        wijk_of[str(props["buurtcode"])] = str(props["wijkcode"])
    places: dict[str, Place] = {}
    gaz = Gazetteer(places)
    for code in sorted(set(run_codes) | set(shapes)):
        place = Place(code, "buurt" if code.startswith("BU") else "area", names.get(code, code), (code,))
        places[code] = place
        gaz.add_name(code, place)
        if code in names:
            gaz.add_name(names[code], place)
    wijken: dict[str, list[str]] = {}
    for buurt, wijk in wijk_of.items():
        if wijk:
            wijken.setdefault(wijk, []).append(buurt)
    for wijk, members in sorted(wijken.items()):
        members = sorted(members)
        place = places[members[0]] if len(members) == 1 else Place(wijk, "wijk", names.get(wijk, wijk), tuple(members))
        places[wijk] = place
        gaz.add_name(wijk, place)
        gaz.add_name(names.get(wijk, wijk), place)
    for name, parts in (places_cfg.get("groups") or {}).items():
        codes = sorted({c for part in parts for c in (places[str(part)].codes if str(part) in places else ())})
        if codes:
            place = Place(str(name), "group", str(name), tuple(codes))
            places[str(name)] = place
            gaz.add_name(str(name), place)
    for name, code in (places_cfg.get("aliases") or {}).items():
        if str(code) in places:
            gaz.add_name(str(name), places[str(code)])
    city = Place(CITY, CITY, city_name or "the city", run_codes or tuple(sorted(shapes)))
    places[CITY] = city
    for name in [*(places_cfg.get("city") or []), city_name]:
        if name:
            gaz.add_name(str(name), city)
    return gaz
