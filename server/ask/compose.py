"""Answers from the language files: every number a registered fact, every sentence with its source."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from server.ask.facts import Fact, const, setting
from server.ask.gazetteer import Place
from server.ask.settings import Settings
from server.ask.store import RunStore

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


@dataclass
class Answer:
    question: str
    lang: str
    status: str                      # answer | refused | clarify | unknown | no_data
    run: str
    plan: dict[str, Any] | None = None
    sentences: list[tuple[str, str]] = field(default_factory=list)   # (text, source letter or "")
    sources: dict[str, str] = field(default_factory=dict)            # letter -> source text
    facts: list[Fact] = field(default_factory=list)
    refusal: dict[str, str] | None = None
    seconds: float = 0.0
    names: list[str] = field(default_factory=list)                   # names in the text (not figures)

    @property
    def text(self) -> str:
        body = [f"{t} [{s}]" if s else t for t, s in self.sentences]
        if self.sources:
            body.append("")
            body.append(self._title)
            body.extend(f"[{k}] {v}" for k, v in self.sources.items())
        return "\n".join(body)

    _title: str = "Bronnen:"

    def to_dict(self) -> dict[str, Any]:
        return {"question": self.question, "lang": self.lang, "status": self.status, "run": self.run,
                "plan": self.plan, "refusal": self.refusal, "text": self.text,
                "sentences": [{"text": t, "source": s} for t, s in self.sentences], "sources": self.sources,
                "facts": [{"value": f.value, "recipe": f.recipe} for f in self.facts], "names": self.names}


class Composer:
    """Builds one answer: `num` registers a fact and formats it, `say` adds a sentence with its source."""

    def __init__(self, settings: Settings, lang: str, store: RunStore | None, answer: Answer):
        self.settings, self.lang, self.store, self.answer = settings, lang, store, answer
        answer._title = self.t("source.title")

    def t(self, key: str, **fields: Any) -> str:
        return self.settings.format(self.lang, key, **fields)

    def num(self, fact: Fact, digits: int = 2, absolute: bool = False) -> str:
        self.answer.facts.append(fact)
        value = abs(fact.value) if absolute else fact.value
        text = f"{value:.{digits}f}"
        if text.startswith("-") and float(text) == 0:
            text = text[1:]
        return text.replace(".", self.t("decimal"))   # the language file's decimal sign

    def name(self, text: str) -> str:
        """A name shown in the text (a feature, an action's title): words, not a figure of the answer."""
        self.answer.names.append(text)
        return text

    def level_pct(self) -> str:
        pct = setting(self.settings.level, "interval_level").times(const(100))
        return self.num(pct, 0)

    def interval(self, lo: Fact, hi: Fact, digits: int = 2) -> str:
        return self.t("interval", level=self.level_pct(), lo=self.num(lo, digits), hi=self.num(hi, digits))

    def months(self, start: str, end: str) -> str:
        return start if start == end else self.t("months", start=start, end=end)

    def place(self, place: Place) -> str:
        return self.t(f"place.{place.kind}", name=self.name(place.name), code=place.key)

    def source(self, key: str, **fields: Any) -> str:
        text = self.t(f"source.{key}", **fields)
        for letter, known in self.answer.sources.items():
            if known == text:
                return letter
        letter = LETTERS[len(self.answer.sources) % len(LETTERS)]
        self.answer.sources[letter] = text
        return letter

    def say(self, key: str, source: str = "", **fields: Any) -> None:
        self.answer.sentences.append((self.t(key, **fields), source))

    # --- the sources every answer cites --------------------------------------------------------------
    def node_eps(self, node: str) -> tuple[str, str, str] | None:
        """A node's epsilon and delta (from its own privacy report) as text, and its accountant."""
        report = self.store.privacy.get(node) if self.store else None
        if not report or not isinstance(report.get("epsilon"), (int, float)):
            return None
        file = f"privacy/{node}.json"
        eps = self.num(Fact(float(report["epsilon"]), {"op": "json", "file": file, "path": ["epsilon"]}))
        delta = self.num_sci(Fact(float(report["delta"]), {"op": "json", "file": file, "path": ["delta"]}))
        return eps, delta, str(report.get("accountant", "")).upper()

    def num_sci(self, fact: Fact) -> str:
        self.answer.facts.append(fact)
        return f"{fact.value:.0e}"

    def label_source(self, file: str, months: str) -> str:
        store = self.store
        partner = store.label_partner
        kind = self.t(f"label_kind.{store.label_source}") if store.label_source in ("dp_release", "published") else store.label_source
        got = self.node_eps(partner) if store.label_source == "dp_release" else None
        if got is None:
            return self.source("label_noeps", run=store.name, file=file, label=kind, months=months)
        eps, delta, accountant = got
        return self.source("label", run=store.name, file=file, partner=partner, label=kind, months=months, eps=eps,
                           delta=delta, accountant=accountant)

    def forecast_source(self, file: str, origin: str, horizon: int) -> str:
        store = self.store
        items = []
        for node in store.nodes:
            got = self.node_eps(node)
            if got is not None:
                items.append(self.t("source.eps_item", node=node, eps=got[0]))
        shown = self.num(Fact(float(horizon), _horizon_recipe(store, file, origin, horizon)), 0)
        return self.source("forecast", run=store.name, file=file, origin=origin, horizon=shown,
                           eps=", ".join(items) or "-")


def horizon_fact(store: RunStore, horizon: int) -> Fact:
    """A horizon the run forecasts, as the artefact that says so."""
    if store.forecast_rows is None:
        return Fact(float(horizon), _horizon_recipe(store, "predictions.csv", "", horizon))
    origin = str(store.forecast_rows["origin"].max())
    return Fact(float(horizon), _horizon_recipe(store, "forecast/predictions.csv", origin, horizon))


def _horizon_recipe(store: RunStore, file: str, origin: str, horizon: int) -> dict:
    if file == "predictions.csv":
        label = store.federation.get("label") or {}
        key = "shift" if "horizons" not in label and "shift" in label else "horizon"
        return {"op": "json", "file": "config.json", "path": ["federation", "label", key]}
    rows = store.forecast_rows
    mine = rows[(rows["origin"] == origin) & (rows["horizon"].astype(int) == horizon)]
    first = mine.iloc[0]
    return {"op": "cell", "file": file, "column": "horizon",
            "where": {"area_code": first["area_code"], "origin": origin, "horizon": str(horizon),
                      "model": first["model"], "target": first["target"]}}
