"""From a question to a typed query plan: intent, areas, metric, period, horizon (and the nodes a privacy
question names), by rules over the lexicon (configs/ask/lexicon.yaml), the gazetteer and the dates.

A plan is validated before anything runs (`validate`); a question whose place is ambiguous gets a
question back instead of a plan; one the check refuses never reaches the artefacts.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from server.ask.check import Refusal, check
from server.ask.dates import DateReader, Period, impossible_date, shift
from server.ask.gazetteer import CITY, Ambiguous, Gazetteer, Match
from server.ask.settings import Settings
from server.ask.text import count_cues, fold, has_cue, words
from server.languages import shown

INTENTS = ("worsen", "change", "compare", "figure", "drivers", "privacy", "actions")
METRICS = ("liveability", "forecast", "other", "epsilon", "actions")
FORECAST_INTENTS = ("worsen", "drivers")


@dataclass(frozen=True)
class QueryPlan:
    intent: str
    areas: tuple[str, ...]          # place keys: buurt or wijk codes, a group's name, "city"
    metric: str
    period: tuple[str, str] | None  # (start, end) months
    horizon: int | None
    nodes: tuple[str, ...] = ()
    lang: str = "nl"
    asked: str = ""                 # the word of an unavailable metric ("inbraken")

    def gold(self) -> dict[str, Any]:
        """The fields a plan is judged by (the evaluation set's gold plans)."""
        return {"intent": self.intent, "areas": list(self.areas), "metric": self.metric,
                "period": list(self.period) if self.period else None, "horizon": self.horizon,
                "nodes": list(self.nodes)}

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["areas"], data["nodes"] = list(self.areas), list(self.nodes)
        data["period"] = list(self.period) if self.period else None
        return data


@dataclass
class Planned:
    """What planning gave: a plan, a refusal, a question back (ambiguous or unknown place), or nothing."""

    lang: str
    plan: QueryPlan | None = None
    refusal: Refusal | None = None
    ambiguous: list[Ambiguous] = field(default_factory=list)
    missing: str = ""               # "place" (a question needing one named none), "intent" (nothing understood)
    unknown: str = ""               # a place name the gazetteer does not know
    unread: str = ""                # the words of a period the dates could not read ("since the action")
    bad_date: str = ""              # a date no calendar has ("31-02-2021")


def language(tokens: list[str], lexicon: dict) -> str:
    """The language of the more frequent marker words (lexicon `language`); on a tie the one shown first
    (`configs/languages.yaml`: the readers' own)."""
    order = shown()
    rank = {lang: -order.index(lang) if lang in order else -len(order) for lang in lexicon["language"]}
    score = {lang: sum(1 for t in tokens if t in set(ws)) for lang, ws in lexicon["language"].items()}
    return max(sorted(score), key=lambda lang: (score[lang], rank[lang]))


def _places(question: str, tokens: list[str], gaz: Gazetteer, settings: Settings) -> tuple[list[Match], list[Ambiguous]]:
    found, unclear = gaz.find(tokens, float(settings.values["fuzzy_cutoff"]), float(settings.values["ambiguity_margin"]))
    for i, token in enumerate(tokens[:-1]):
        if token == "wijk" and re.fullmatch(r"\d{2}", tokens[i + 1]):
            city = next((c for c in gaz.places if c.startswith("WK")), "WK0917000")[:6]
            place = gaz.by_code(f"{city}{tokens[i + 1]}")
            if place is not None and all(f.place.key != place.key for f in found):
                found.append(Match(place, i, i + 2, 1.0, f"wijk {tokens[i + 1]}"))
    return sorted(found, key=lambda m: m.start), unclear


def validate(plan: QueryPlan, gaz: Gazetteer) -> list[str]:
    """What is wrong with a plan (from the rules or from any other planner) before it runs: [] when it is sound."""
    problems = []
    if plan.intent not in INTENTS:
        problems.append(f"intent {plan.intent!r} is not one of {', '.join(INTENTS)}")
    if plan.metric not in METRICS:
        problems.append(f"metric {plan.metric!r} is not one of {', '.join(METRICS)}")
    problems += [f"area {a!r} is not in the gazetteer" for a in plan.areas if a not in gaz.places]
    if plan.period is not None:
        ok = all(re.fullmatch(r"(19|20)\d{2}-(0[1-9]|1[0-2])", m or "") for m in plan.period)
        if not ok or plan.period[0] > plan.period[1]:
            problems.append(f"period {list(plan.period)} is not two months YYYY-MM in order")
    if plan.horizon is not None and not (isinstance(plan.horizon, int) and 1 <= plan.horizon <= 60):
        problems.append(f"horizon {plan.horizon!r} is not a whole number of months from 1 to 60")
    if plan.intent in ("change", "compare", "figure", "drivers") and not plan.areas:
        problems.append(f"a {plan.intent} question needs an area")
    if plan.intent == "compare" and len(plan.areas) < 2:
        problems.append("a comparison needs two areas")
    return problems


def unknown_place(question: str, matches: list[Match], known: frozenset[str] | set[str],
                  cutoff: float = 0.84) -> str | None:
    """A place the question names that the gazetteer does not know, or None: a wijk number it does not have
    ('wijk 99'), an area code not of the run ('BU09999999'), or capitalised words inside a sentence
    ('Hoe staat Amsterdam ervoor?', 'How is Den Haag doing?') that are neither a matched place nor a word the
    colleague knows (`known`: its lexicon, language files, place names, first names; also misspelt, by difflib
    ratio >= `cutoff`). A sentence's first word, a short acronym (PSI, DP) and a single letter are not read
    as names."""
    said = {w for m in matches for w in words(m.said)}
    folded = fold(question)
    m = re.search(r"\bwijk\s+(\d{1,3})\b", folded)
    if m and m.group(1) not in said:
        return m.group(0)
    for m in re.finditer(r"\b(?:bu|wk|gm)\d{4,8}\b", folded):
        if m.group(0) not in said:
            return m.group(0).upper()
    pool = sorted(w for w in known if len(w) >= 5)
    for sentence in re.split(r"[.?!:;]+(?:\s+|$)|\n+", question):
        raw = list(re.finditer(r"[^\W\d_][\w'’-]*", sentence))
        run: list[str] = []
        for i, word in enumerate([*raw, None]):
            text = word.group(0) if word is not None else ""
            if word is not None and i > 0 and text[:1].isupper():
                run.append(text)
                continue
            if run:
                strange = [w for w in run if _strange(w, said, known, pool, cutoff)]
                if strange:
                    return " ".join(run)
            run = []
    return None


def _strange(word: str, said: set[str], known: frozenset[str] | set[str], pool: list[str], cutoff: float) -> bool:
    """Whether a capitalised word is no place matched, no word the colleague knows and no acronym."""
    import difflib

    folded = words(word)
    if not folded or len(word) < 2 or (word.isupper() and len(word) <= 4):
        return False
    for part in folded:
        for piece in [part, *part.split("-")]:
            if piece in said or piece in known:
                break
        else:
            if len(part) >= 5 and difflib.get_close_matches(part, pool, n=1, cutoff=cutoff):
                continue
            return True
    return False


def _intent(folded: str, tokens: set[str], lexicon: dict, n_places: int) -> str | None:
    scores = {name: count_cues(folded, tokens, cues) for name, cues in lexicon["intents"].items()}
    order = [str(x) for x in lexicon["precedence"]]
    if n_places < 2 and not re.search(r"\b(stad|city|gemeente|gemiddelde|average|wijk|stadsdeel)\b", folded):
        scores["compare"] = 0
    if scores["worsen"] and scores["drivers"] and re.search(r"\b(welke|which|waar|where)\b", folded):
        scores["drivers"] = 0          # "which areas will worsen and why": a list, with its drivers
    best = max(scores.values())
    if best == 0:
        return _fuzzy_intent(tokens, lexicon, order)
    return next(name for name in order if scores[name] == best)


def _fuzzy_intent(tokens: set[str], lexicon: dict, order: list[str]) -> str | None:
    """A misspelt cue word ('verslechtren', 'vergelijkt'): the intent whose single-word cue is closest (ratio
    >= 0.85, words of seven letters or more), when no cue matched as written."""
    import difflib

    best, found = 0.85, None
    for name in order:
        for cue in lexicon["intents"].get(name, []):
            stem = fold(cue).rstrip("*")
            if " " in stem or len(stem) < 7:
                continue
            for token in tokens:
                if len(token) >= 7:
                    ratio = difflib.SequenceMatcher(None, token[:len(stem) + 2], stem).ratio()
                    if ratio > best:
                        best, found = ratio, name
    return found


def _metric(intent: str, folded: str, tokens: set[str], lexicon: dict, horizon: int | None) -> tuple[str, str]:
    if intent in FORECAST_INTENTS:
        return "forecast", ""
    if intent == "privacy":
        return "epsilon", ""
    if intent == "actions":
        return "actions", ""
    metrics = lexicon["metrics"]
    if intent in ("figure", "compare") and (horizon is not None or count_cues(folded, tokens, metrics["forecast"])):
        return "forecast", ""
    if not count_cues(folded, tokens, metrics["liveability"]):
        for cue in metrics["unavailable"]:
            if has_cue(folded, tokens, cue):
                return "other", fold(cue).rstrip("*")
    return "liveability", ""


def _nodes(folded: str, tokens: set[str], lexicon: dict, run_nodes: tuple[str, ...]) -> tuple[str, ...]:
    out = []
    for node, cues in (lexicon.get("nodes") or {}).items():
        if node in run_nodes and any(has_cue(folded, tokens, c) for c in cues) and node not in out:
            out.append(node)
    for node in run_nodes:
        if node not in out and node in tokens:
            out.append(node)
    return tuple(out)


def make_plan(question: str, gaz: Gazetteer, settings: Settings, anchor: str, default_horizon: int,
              run_nodes: tuple[str, ...] = ()) -> Planned:
    """Plan, check and validate one question against a run whose latest released month is `anchor`."""
    lexicon = settings.lexicon
    tokens = words(question)
    folded = " ".join(tokens)
    token_set = set(tokens)
    lang = language(tokens, lexicon)
    matches, unclear = _places(question, tokens, gaz, settings)
    cutoff = float(settings.values["fuzzy_cutoff"])
    known = settings.vocabulary | gaz.vocabulary
    refusal = check(question, tokens, settings.refusals, [m.said for m in matches], cutoff, known)
    if refusal is not None:
        return Planned(lang, refusal=refusal)
    if unclear:
        return Planned(lang, ambiguous=unclear)
    reader = DateReader(lexicon, anchor)
    typos = reader.typos(fold(question), known, cutoff)     # "sinds de zomr": read as place names are read
    stranger = unknown_place(question, matches, known | set(typos), cutoff)
    if stranger is not None:
        return Planned(lang, missing="place", unknown=stranger)
    bad = impossible_date(fold(question), reader.month_words)
    if bad is not None:
        return Planned(lang, bad_date=bad)
    dated = reader.corrected(fold(question), typos)
    intent = _intent(folded, token_set, lexicon, len(matches))
    areas = tuple(dict.fromkeys(m.place.key for m in matches))
    if intent is None:
        if not areas:
            return Planned(lang, missing="intent")
        intent = "figure"
    if CITY in areas and len(areas) > 1 and intent != "compare":
        areas = tuple(a for a in areas if a != CITY)     # "what did the city do in Passart": the place is Passart
    horizon = reader.horizon(dated, lexicon["horizon_words"])
    metric, asked = _metric(intent, folded, token_set, lexicon, horizon)
    if _dated(intent, metric):
        unread = reader.unread(dated)
        if unread is not None:                 # never silently the default period instead of the one asked
            return Planned(lang, unread=unread)
    period = _period(intent, metric, reader, dated, anchor, int(settings.values["window_months"]))
    if period is not None and period.start > period.end:     # a start after the run's last month: no data then
        period = Period(period.start, period.start)
    if metric == "forecast":
        horizon = horizon or default_horizon
    else:
        horizon = None
    nodes = _nodes(folded, token_set, lexicon, run_nodes) if intent == "privacy" else ()
    if intent in ("privacy", "actions"):
        areas = areas if intent == "actions" else ()
    elif not areas:
        if intent == "drivers":
            return Planned(lang, missing="place")
        areas = (CITY,)
    if intent == "compare" and len(areas) == 1:
        areas = (*areas, CITY)
    plan = QueryPlan(intent, areas, metric, (period.start, period.end) if period else None, horizon, nodes, lang, asked)
    return Planned(lang, plan=plan)


def _dated(intent: str, metric: str) -> bool:
    """Whether a plan of this intent and metric has a period (a forecast, a list or a privacy report has none)."""
    return metric != "forecast" and intent not in ("worsen", "drivers", "privacy")


def _period(intent: str, metric: str, reader: DateReader, folded: str, anchor: str, window: int) -> Period | None:
    if not _dated(intent, metric):
        return None
    found = reader.period(folded, "change" if intent in ("change", "actions") else intent)
    if found is not None or intent == "actions":
        return found
    if intent == "change":
        return Period(shift(anchor, -12), anchor)
    return Period(shift(anchor, -window + 1), anchor)
