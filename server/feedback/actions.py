"""The municipality's public action log: what the city did, per buurt or wijk, as a timeline.

YAML kept by the municipality (example: configs/feedback/heerlen_actions.yaml). Public and free of personal
data by construction: only the fields below, areas as CBS buurt or wijk codes, and texts that hold no e-mail
address, phone number or web link. Every problem is one message naming the file, the entry and the field.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from federation.errors import ConfigError

FIELDS = ("id", "action", "area", "start", "end", "status", "progress", "categories")
REQUIRED = ("id", "action", "area", "start", "status", "progress", "categories")
STATUSES = ("gepland", "bezig", "afgerond", "gestopt")
CATEGORIES = ("afval", "openbare_ruimte", "groen_water", "overlast")
_AREA = re.compile(r"^(BU\d{8}|WK\d{6})$")
_PERSONAL = (("an e-mail address", re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")),
             ("a phone number", re.compile(r"(\+?\d[\d \-]{7,}\d)")),
             ("a web link", re.compile(r"https?://|www\.", re.IGNORECASE)))


@dataclass(frozen=True)
class Action:
    id: str
    action: str
    area: str
    start: dt.date
    end: dt.date | None
    status: str
    progress: int
    categories: tuple[str, ...]

    def applies_to(self, buurt: str, wijk: str) -> bool:
        return self.area in (buurt, wijk)


def _date(value: object, where: str) -> dt.date:
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise ConfigError(f"{where}: {value!r} is not a date YYYY-MM-DD") from None


def load_actions(path: Path, known_areas: set[str]) -> list[Action]:
    """The checked action log, sorted by start date."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as err:
        raise ConfigError(f"{path}: cannot read the action log ({err.strerror})") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {str(err).splitlines()[0]}") from None
    entries = data.get("actions") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise ConfigError(f"{path}: must hold `actions:`, a list of entries")
    out, seen = [], set()
    for i, entry in enumerate(entries, 1):
        where = f"{path}, action {i}"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: must be a mapping of {', '.join(FIELDS)}")
        unknown = sorted(set(map(str, entry)) - set(FIELDS))
        if unknown:
            raise ConfigError(f"{where}: field '{unknown[0]}' is not allowed (the log is public: only "
                              f"{', '.join(FIELDS)}; no personal data)")
        missing = [f for f in REQUIRED if entry.get(f) is None]
        if missing:
            raise ConfigError(f"{where}: field '{missing[0]}' is missing")
        for field in ("id", "action"):
            for what, pattern in _PERSONAL:
                if pattern.search(str(entry[field])):
                    raise ConfigError(f"{where}, field '{field}': holds {what}; the log is public and holds no "
                                      "personal data or links")
        area = str(entry["area"])
        if not _AREA.match(area) or area not in known_areas:
            raise ConfigError(f"{where}, field 'area': {area!r} is not a buurt (BU...) or wijk (WK...) code of "
                              "the city")
        if str(entry["status"]) not in STATUSES:
            raise ConfigError(f"{where}, field 'status': {entry['status']!r} is not one of {', '.join(STATUSES)}")
        progress = entry["progress"]
        if isinstance(progress, bool) or not isinstance(progress, int) or not 0 <= progress <= 100:
            raise ConfigError(f"{where}, field 'progress': {progress!r} is not a whole percentage 0-100")
        cats = entry["categories"]
        if not isinstance(cats, list) or not cats or any(str(c) not in CATEGORIES for c in cats):
            raise ConfigError(f"{where}, field 'categories': must list one or more of {', '.join(CATEGORIES)}")
        start = _date(entry["start"], f"{where}, field 'start'")
        end = None if entry.get("end") is None else _date(entry["end"], f"{where}, field 'end'")
        if end is not None and end < start:
            raise ConfigError(f"{where}, field 'end': {end} is before the start {start}")
        if str(entry["id"]) in seen:
            raise ConfigError(f"{where}, field 'id': {entry['id']!r} is used by an earlier action")
        seen.add(str(entry["id"]))
        out.append(Action(str(entry["id"]), str(entry["action"]), area, start, end, str(entry["status"]),
                          int(progress), tuple(map(str, cats))))
    return sorted(out, key=lambda a: (a.start, a.id))
