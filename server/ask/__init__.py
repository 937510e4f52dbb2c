"""The twin colleague: a question in Dutch or English, answered from a run's released artefacts.

Plan (`plan.py`: a typed query plan from rules, the gazetteer `gazetteer.py` and the dates `dates.py`),
check (`check.py`: refuses persons, addresses, households, protected groups and differencing), execute
(`execute.py`, `execute_more.py` over `store.py`, the run's artefacts as facts with recipes) and answer
(`compose.py` with the language files of configs/ask/lang). `trace.py` re-derives every number of an
answer from the files. Everything is post-processing of releases: no privacy cost, no raw record.
"""
from __future__ import annotations

import time
from pathlib import Path

from server.ask.compose import Answer, Composer
from server.ask.gazetteer import Gazetteer, build
from server.ask.plan import make_plan, validate
from server.ask.settings import Settings, load_settings
from server.ask.store import AskInputError, RunStore


class Colleague:
    """One run's colleague: the run's artefacts and gazetteer, read once, for any number of questions."""

    def __init__(self, run_dir: Path, settings: Settings | None = None):
        self.settings = settings or load_settings()
        self.store = RunStore(Path(run_dir), self.settings.level)
        city = str(self.store.federation.get("name", "")).capitalize()
        self.gazetteer: Gazetteer = build(self.store.areas, self.settings.places, city)

    def plan(self, question: str):
        store = self.store
        return make_plan(question, self.gazetteer, self.settings, store.latest, store.default_horizon, store.nodes)

    def ask(self, question: str) -> Answer:
        from server.ask import execute, execute_more

        started = time.perf_counter()
        planned = self.plan(question)
        answer = Answer(question, planned.lang, "answer", self.store.name)
        c = Composer(self.settings, planned.lang, self.store, answer)
        if planned.refusal is not None:
            answer.status = "refused"
            answer.refusal = {"kind": planned.refusal.kind, "said": planned.refusal.said}
            c.say("refusal.intro")
            c.say(f"refusal.{planned.refusal.kind}.reason", said=planned.refusal.said)
            c.say(f"refusal.{planned.refusal.kind}.instead")
        elif planned.ambiguous:
            answer.status = "clarify"
            for unclear in planned.ambiguous:
                options = c.t("clarify.or").join(c.place(p) for p in unclear.candidates)
                c.say("clarify.ambiguous", said=c.name(unclear.said), options=options + "?")
        elif planned.bad_date:
            answer.status = "invalid"
            c.say("clarify.bad_date", said=c.name(planned.bad_date))
        elif planned.unread:
            answer.status = "clarify"
            c.say("clarify.period", said=c.name(planned.unread))
        elif planned.missing:
            answer.status = "clarify" if planned.missing == "place" else "unknown"
            if planned.unknown:
                c.say("clarify.unknown", said=c.name(planned.unknown))
            c.say("clarify.place" if planned.missing == "place" else "unknown")
        elif validate(planned.plan, self.gazetteer):
            answer.status = "invalid"
            answer.plan = planned.plan.to_dict()
            c.say("invalid", problems="; ".join(validate(planned.plan, self.gazetteer)))
        else:
            plan = planned.plan
            answer.plan = plan.to_dict()
            gaz = self.gazetteer
            if plan.intent == "worsen":
                execute_more.worsen(c, plan, gaz)
            elif plan.intent == "drivers":
                for key in plan.areas:
                    execute_more.drivers(c, gaz.places[key], int(plan.horizon or self.store.default_horizon))
            elif plan.intent == "privacy":
                execute_more.privacy(c, plan, gaz)
            elif plan.intent == "actions":
                execute_more.actions(c, plan, gaz, question)
            elif plan.intent == "change":
                execute.change(c, plan, gaz)
            elif plan.intent == "compare":
                execute.compare(c, plan, gaz)
            else:
                execute.figure(c, plan, gaz)
        answer.seconds = time.perf_counter() - started
        return answer


def latest_run(runs_dir: Path) -> Path:
    """The most recently finished completed run under `runs_dir`."""
    import json

    found = []
    for status in Path(runs_dir).glob("*/status.json"):
        try:
            state = json.loads(status.read_text(encoding="utf-8")).get("state")
        except (ValueError, OSError):
            continue
        if state in ("completed", "completed-with-refusals"):
            found.append((status.stat().st_mtime, status.parent))
    if not found:
        raise AskInputError(f"{runs_dir}: no completed run (give one with --run RUN_DIR)")
    return max(found)[1]


__all__ = ["Answer", "Colleague", "latest_run", "AskInputError"]
