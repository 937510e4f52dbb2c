"""Execution of the other intents: which areas will worsen, the drivers of a forecast, what left which node
at what privacy cost, and what the city did (the municipality's action log)."""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from server.ask.compose import Composer, horizon_fact
from server.ask.execute import _horizon_ok, codes_of
from server.ask.facts import Fact, cell
from server.ask.gazetteer import CITY, Gazetteer, Place
from server.ask.plan import QueryPlan
from server.ask.store import F_SKILL, F_WARN

PLAN_WORDS = ("plan", "plannen", "advies", "advice", "wat kunnen we", "what can we", "what could we", "recommend",
              "aanbevel")


def worsen(c: Composer, plan: QueryPlan, gaz: Gazetteer) -> None:
    store = c.store
    horizon = int(plan.horizon or store.default_horizon)
    if not _horizon_ok(c, horizon):
        return
    scope = gaz.places[plan.areas[0]] if plan.areas else gaz.places[CITY]
    gate = store.gate
    if store.releasable(horizon) is False:
        src = c.source("skill", run=store.name)
        c.say("worsen.gate_refused", src, horizon=c.num(horizon_fact(store, horizon), 0))
        _naive(c, scope, horizon, gaz)
        return
    limit = int(c.settings.values["max_listed_areas"])
    found = [f for f in (store.forecast(a, horizon) for a in codes_of(scope, store)) if f is not None]
    sign = 1 if store.higher_is_better else -1
    falling = sorted((f for f in found if f.change_hi is not None and f.change_lo is not None
                      and (f.change_hi.value < 0 if sign > 0 else f.change_lo.value > 0)),
                     key=lambda f: sign * f.change.value)
    if not found:
        c.answer.status = "no_data"
        c.say("forecast.missing", place=c.place(scope))
        return
    src = c.forecast_source(found[0].source, found[0].origin, horizon)
    shown_h = c.num(horizon_fact(store, horizon), 0)
    if not falling:
        c.say("worsen.none", src, horizon=shown_h, scope=c.place(scope))
    else:
        c.say("worsen.header" if sign > 0 else "worsen.header_up", src, horizon=shown_h, target=found[0].target)
        for f in falling[:limit]:
            c.say("worsen.item", src, place=c.place(gaz.places[f.area]), level=c.num(f.level),
                  value=c.num(f.prediction), diff=c.num(f.change, absolute=True),
                  interval=c.interval(f.change_lo, f.change_hi))
        if len(falling) > limit:
            rest = falling[limit:]
            n = Fact(float(len(rest)), {"op": "count", "args": [f.change_hi.recipe for f in rest]})
            c.say("worsen.more", src, n=c.num(n, 0))
    if store.skill is None:
        c.say("worsen.no_skill")
    elif store.releasable(horizon) is None:
        c.say("worsen.no_verdict", c.source("skill", run=store.name), horizon=shown_h)
    elif gate is not None and gate.get("skill") is not None and int(gate.get("horizon", -1)) == horizon:
        js = lambda k: Fact(float(gate[k]), {"op": "json", "file": F_SKILL, "path": ["gate", k]})  # noqa: E731
        c.say("worsen.skill", c.source("skill", run=store.name), horizon=shown_h, skill=c.num(js("skill")),
              interval=c.interval(js("skill_lo"), js("skill_hi")))
    if falling:
        drivers(c, gaz.places.get(falling[0].area), horizon, top=2)


def _naive(c: Composer, scope: Place, horizon: int, gaz: Gazetteer) -> None:
    store = c.store
    warn = store.warnings
    if warn is None or "naive_rank" not in warn.columns:
        c.say("worsen.naive_none")
        return
    rows = warn[(warn["horizon"].astype(int) == horizon) & warn["area_code"].isin(codes_of(scope, store))
                & warn["naive_rank"].notna()].sort_values("naive_rank")
    if rows.empty:
        c.say("worsen.naive_none")
        return
    src = c.source("skill", run=store.name)
    for _, row in rows.head(int(c.settings.values["max_listed_areas"])).iterrows():
        key = {"area_code": row["area_code"], "horizon": str(horizon)}
        place = gaz.places.get(row["area_code"])
        c.say("worsen.naive_item", src, place=c.place(place) if place else row["area_code"],
              diff=c.num(cell(row["naive_change"], F_WARN, key, "naive_change")),
              rank=c.num(cell(row["naive_rank"], F_WARN, key, "naive_rank"), 0))


def drivers(c: Composer, place: Place | None, horizon: int, top: int = 3) -> None:
    from server.ask.drivers import area_drivers

    store = c.store
    if place is None:
        return
    codes = codes_of(place, store)
    if place.kind not in ("buurt", "area"):
        c.say("drivers.group", place=c.place(place), names=", ".join(codes[:8]))
        return
    found = area_drivers(store, codes[0], top) if codes else None
    if found is None:
        c.say("drivers.none")
        return
    # the kept model forecasts the configured horizon (`label.horizon`) ahead: its drivers are those of that forecast
    f = store.forecast(codes[0], store.label_horizon) or store.forecast(codes[0], horizon)
    src = c.source("model", run=store.name)
    if f is not None:
        fsrc = c.forecast_source(f.source, f.origin, f.horizon)
        c.say("drivers.header", fsrc, place=c.place(place), value=c.num(f.prediction), target=f.target)
    for d in found:
        words = c.name(c.settings.texts.get(c.lang, {}).get("features", {}).get(d["feature"], d["words"]))
        c.say("drivers.item", src, feature=words, block=d["block"], owner=d["owner"] or "-",
              direction=c.t("drivers.higher" if d["level"] >= 0 else "drivers.lower"),
              effect=c.t("drivers.raises" if d["value"] >= 0 else "drivers.lowers"),
              points=c.num(Fact(d["value"], {"op": "attribution", "area": codes[0], "feature": d["feature"]}), 3,
                           absolute=True))
    c.say("drivers.caveat")


def privacy(c: Composer, plan: QueryPlan, gaz: Gazetteer) -> None:
    store = c.store
    reports = store.privacy
    if not reports:
        c.answer.status = "no_data"
        c.say("privacy.none")
        return
    for node in plan.nodes or tuple(reports):
        report = reports.get(node)
        if report is None:
            continue
        file = f"privacy/{node}.json"
        src = c.source("privacy", run=store.name, node=node)
        js = lambda path: Fact(float(_at(report, path)), {"op": "json", "file": file, "path": path})  # noqa: E731
        parts = []
        for i, table in enumerate(report.get("tables") or []):
            sigmas = ", ".join(c.num(js(["tables", i, "noise_multipliers", j]))
                               for j in range(len(table.get("noise_multipliers") or [])))
            parts.append(c.t("privacy.table", releases=c.num(js(["tables", i, "releases"]), 0),
                             table=table["table"], sigma=sigmas))
        if report.get("row_level"):
            parts.append(c.t("privacy.model", releases=c.num(js(["row_level", "releases"]), 0)))
        for i, fact in enumerate(report.get("facts") or []):
            if fact.get("kind") == "psi_revealed_set_size":
                parts.append(c.t("privacy.psi", n=c.num(js(["facts", i, "value"]), 0)))
        delta = c.num_sci(js(["delta"]))
        # the store holds only figures its release history gives (`server.report.privacy.checked_reports`)
        eps = c.num(js(["epsilon"])) if "epsilon" in report else c.t("privacy.not_recomputed")
        c.say("privacy.node", src, node=node, what="; ".join(parts) or "-", eps=eps, delta=delta,
              accountant=str(report.get("accountant", "")).upper(), unit="; ".join(report.get("units") or []) or "-")
        runs = [i for i, r in enumerate(report.get("runs") or [])
                if str(r.get("run_id", "")).split("#")[0] == store.name and "epsilon_alone" in r]
        if runs:
            c.say("privacy.run", src, eps=c.num(js(["runs", runs[-1], "epsilon_alone"])))
    c.say("privacy.meaning")


def _at(data, path):
    for key in path:
        data = data[key]
    return data


def actions(c: Composer, plan: QueryPlan, gaz: Gazetteer, question: str) -> None:
    store = c.store
    path = c.settings.action_log(store.run_dir)
    if path is None:
        c.answer.status = "no_data"
        c.say("actions.no_log")
        return
    entries, problem = read_action_log(Path(path), gaz)
    if problem is not None:
        c.answer.status = "no_data"
        _say_problem(c, Path(path), problem)
        return
    asked = [gaz.places[k] for k in plan.areas]
    wanted = {code for p in asked for code in p.codes}
    plan_mode = bool(wanted) and any(w in question.lower() for w in PLAN_WORDS)
    src = c.source("actions", path=path)
    chosen = []
    for entry, place, start, end in entries:
        if wanted and bool(set(place.codes) & wanted) == plan_mode:   # a possible plan: what was done elsewhere
            continue
        if plan.period and ((end or store.latest) < plan.period[0] or start > plan.period[1]):
            continue
        chosen.append((entry, place, start, end))
    if plan_mode:
        chosen = _similar(c, asked[0], chosen)
    for i, (entry, place, start, end) in enumerate(chosen[:int(c.settings.values["max_listed_areas"])]):
        if i == 0 and plan_mode:
            c.say("actions.plan")
        title = c.name(str(_first(entry, TITLE_FIELDS)[1]))
        status = c.name(str(entry.get("status") or "-"))
        key = "actions.item" if end else "actions.item_open"
        c.say(key, src, action=title, place=c.place(place), start=start, end=end or "", status=status)
        if plan_mode:
            _situation(c, asked[0], place, start)
        _followed(c, place, start, end)
    if not chosen:
        where = ", ".join(c.place(p) for p in asked) or c.place(gaz.places[CITY])
        when = c.t("actions.since", start=plan.period[0]) if plan.period else ""
        c.say("actions.none", src, place=where, when=when)


# --- the action log -----------------------------------------------------------------------------------------
AREA_FIELDS = ("area", "buurt", "wijk", "area_code", "code")
TITLE_FIELDS = ("action", "title", "name")


@dataclass(frozen=True)
class LogProblem:
    """Why an action log cannot be used: a text key of `actions.problem`, and where (row and line 1-based)."""

    key: str                  # missing_file | unreadable | yaml | shape | not_mapping | missing | area | month | order
    row: int | None = None
    line: int | None = None
    field: str = ""
    value: str = ""


class _Loader(yaml.SafeLoader):
    """YAML without implicit dates: '2020-02-30' stays text, so an impossible date is named, not a crash."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}


def read_action_log(path: Path, gaz: Gazetteer) -> tuple[list[tuple[dict, Place, str, str | None]], LogProblem | None]:
    """The actions of a log as (entry, place, start month, end month or None), every row checked: a log that
    cannot be read, or its first bad row (the row, its line in the file and the field), is a problem."""
    if not path.is_file():
        return [], LogProblem("missing_file")
    try:
        text = path.read_text(encoding="utf-8")
        data = yaml.load(text, Loader=_Loader)           # noqa: S506 (a safe loader)
        root = yaml.compose(text, Loader=_Loader)
    except (OSError, UnicodeDecodeError) as err:
        return [], LogProblem("unreadable", value=str(getattr(err, "strerror", None) or err))
    except yaml.YAMLError as err:
        return [], LogProblem("yaml", value=" ".join(str(err).split()))
    entries = data.get("actions") if isinstance(data, dict) else data
    if not isinstance(entries, list):
        return [], LogProblem("shape")
    lines = _item_lines(root)
    out = []
    for i, entry in enumerate(entries):
        where = {"row": i + 1, "line": lines[i] if i < len(lines) else None}
        if not isinstance(entry, dict):
            return [], LogProblem("not_mapping", **where, value=str(entry))
        field, title = _first(entry, TITLE_FIELDS)
        if not str(title or "").strip():
            return [], LogProblem("missing", **where, field="action")
        field, value = _first(entry, AREA_FIELDS)
        if value in (None, ""):
            return [], LogProblem("missing", **where, field="area")
        place = _entry_place(str(value), gaz)
        if place is None:
            return [], LogProblem("area", **where, field=field, value=str(value))
        if entry.get("start") in (None, ""):
            return [], LogProblem("missing", **where, field="start")
        start = _month(entry.get("start"))
        if start is None:
            return [], LogProblem("month", **where, field="start", value=str(entry.get("start")))
        end = None
        if entry.get("end") not in (None, ""):
            end = _month(entry.get("end"))
            if end is None:
                return [], LogProblem("month", **where, field="end", value=str(entry.get("end")))
            if end < start:
                return [], LogProblem("order", **where, field="end", value=str(entry.get("end")))
        out.append((entry, place, start, end))
    return out, None


def _say_problem(c: Composer, path: Path, problem: LogProblem) -> None:
    """One sentence naming the file (and the row, its line and the field) of an action log that cannot be used."""
    detail = c.t(f"actions.problem.{problem.key}", value=c.name(problem.value), field=problem.field)
    shown = c.name(str(path))
    if problem.row is None:
        c.say("actions.bad_log", path=shown, problem=detail)
        return
    line = c.t("actions.line", line=c.name(str(problem.line))) if problem.line else ""
    c.say("actions.bad_row", path=shown, row=c.name(str(problem.row)), line=line, problem=detail)


def _item_lines(root) -> list[int]:
    """The line (1-based) where each action of the log's list begins."""
    node = root
    if isinstance(node, yaml.MappingNode):
        node = next((v for k, v in node.value if getattr(k, "value", None) == "actions"), None)
    if not isinstance(node, yaml.SequenceNode):
        return []
    return [item.start_mark.line + 1 for item in node.value]


def _first(entry: dict, fields: tuple[str, ...]) -> tuple[str, object]:
    for key in fields:
        if entry.get(key) not in (None, ""):
            return key, entry[key]
    return fields[0], None


def _level_at(c: Composer, place: Place, month: str):
    store = c.store
    first, last = store.window(month, int(c.settings.values["window_months"]))
    return store.level(codes_of(place, store), first, last)


def _similar(c: Composer, asked: Place, chosen: list) -> list:
    """Actions elsewhere, the most similar situation first: their area's level when they began closest to the
    asked area's level now."""
    now = _level_at(c, asked, c.store.latest)
    if now is None:
        return chosen

    def distance(item) -> float:
        then = _level_at(c, item[1], item[2])
        return abs(then.centre.value - now.centre.value) if then is not None else float("inf")

    return sorted(chosen, key=distance)


def _situation(c: Composer, asked: Place, place: Place, start: str) -> None:
    now, then = _level_at(c, asked, c.store.latest), _level_at(c, place, start)
    if now is None or then is None:
        return
    src = c.label_source(c.store.label_file, c.months(min(then.months[0], now.months[0]), now.months[-1]))
    c.say("actions.situation", src, place=c.place(place), then=c.num(then.centre), start=start,
          asked=c.place(asked), now=c.num(now.centre), latest=now.months[-1])


def _followed(c: Composer, place: Place, start: str, end: str | None) -> None:
    store = c.store
    codes = codes_of(place, store)
    if not codes or start > store.latest:
        return
    got = store.change(codes, start, min(end or store.latest, store.latest), int(c.settings.values["window_months"]))
    if got is None or got["lo"] is None:
        return
    lo, hi = got["lo"], got["hi"]
    src = c.label_source(c.store.label_file, c.months(got["before"].months[0], got["after"].months[-1]))
    beyond = lo.value > 0 or hi.value < 0
    c.say("actions.followed_beyond" if beyond else "actions.followed_none", src, place=c.place(place),
          before=c.num(got["before"].centre), after=c.num(got["after"].centre), diff=c.num(got["change"]),
          interval=c.interval(lo, hi))


def _entry_place(value: str, gaz: Gazetteer) -> Place | None:
    """The place an action log names: a code, or a name the gazetteer knows as written (no guessing)."""
    from server.ask.gazetteer import key_of

    place = gaz.by_code(value.strip())
    if place is not None:
        return place
    found = gaz.names.get(key_of(value), [])
    return found[0] if found else None


def _month(value) -> str | None:
    """'YYYY-MM' of a month or a date that exists ('2020-03', '2020-03-15'), else None ('2020-13', '2020-02-30')."""
    if isinstance(value, (dt.date, dt.datetime)):
        return f"{value.year:04d}-{value.month:02d}"
    m = re.fullmatch(r"((?:19|20)\d{2})-(\d{2})(?:-(\d{2}))?", str(value).strip())
    if m is None:
        return None
    try:
        dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3) or 1))
    except ValueError:
        return None
    return f"{m.group(1)}-{m.group(2)}"
