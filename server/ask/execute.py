"""Execution of a plan over the run's released artefacts: levels, changes, comparisons and forecasts.

Every number is a fact (server/ask/facts.py) read from a file of the run; a change or a difference whose
interval includes zero is "no change beyond the noise". Drivers, privacy and actions: execute_more.py.
"""
from __future__ import annotations

from server.ask.compose import Composer
from server.ask.facts import Fact, const, hypot, interval, mean
from server.ask.gazetteer import Gazetteer, Place
from server.ask.plan import QueryPlan
from server.ask.store import Forecast, RunStore


def codes_of(place: Place, store: RunStore) -> tuple[str, ...]:
    return tuple(c for c in place.codes if c in set(store.areas))


def _no_data(c: Composer, place: Place, start: str, end: str) -> None:
    store = c.store
    c.answer.status = "no_data"
    c.say("no_data.area", place=c.place(place), months=c.name(c.months(start, end)), first=store.months[0],
          last=store.latest)


def figure(c: Composer, plan: QueryPlan, gaz: Gazetteer) -> None:
    if plan.metric == "other":
        c.answer.status = "no_data"
        c.say("no_data.metric", asked=plan.asked)
        return
    if plan.metric == "forecast":
        for key in plan.areas:
            forecast(c, gaz.places[key], int(plan.horizon or c.store.default_horizon))
        return
    store = c.store
    start, end = plan.period or store.window(store.latest, 3)
    for key in plan.areas:
        place = gaz.places[key]
        level = store.level(codes_of(place, store), start, end)
        if level is None:
            _no_data(c, place, start, end)
            continue
        months = c.months(level.months[0], level.months[-1])
        src = c.label_source(c.store.label_file, months)
        shown = _shown(c, place, level.areas)
        if level.lo is None:
            c.say("level.no_interval", src, place=shown, value=c.num(level.centre), months=months)
        else:
            c.say("level.sentence", src, place=shown, value=c.num(level.centre), months=months,
                  interval=c.interval(level.lo, level.hi))


def _shown(c: Composer, place: Place, areas: list[str]) -> str:
    if place.kind in ("buurt", "area"):
        return c.place(place)
    store = c.store
    cells = [next(store.cells[(a, m)] for m in store.months if (a, m) in store.cells) for a in areas]
    n = c.num(Fact(float(len(cells)), {"op": "count", "args": [f.recipe for f in cells]}), 0)
    return c.t("place.members", place=c.place(place), n=n)


def change(c: Composer, plan: QueryPlan, gaz: Gazetteer) -> None:
    store = c.store
    start, end = plan.period or (store.months[0], store.latest)
    window = int(c.settings.values["window_months"])
    if start < store.months[0]:
        start = store.months[0]
        c.say("change.clamp", first=start)
    if start >= store.latest:
        for key in plan.areas:
            _no_data(c, gaz.places[key], plan.period[0] if plan.period else start, plan.period[1] if plan.period else end)
        return
    end = min(end, store.latest)
    for key in plan.areas:
        place = gaz.places[key]
        got = store.change(codes_of(place, store), start, end, window)
        if got is None:
            _no_data(c, place, start, end)
            continue
        before, after = got["before"], got["after"]
        src = c.label_source(c.store.label_file, c.months(before.months[0], after.months[-1]))
        fields = dict(place=_shown(c, place, after.areas), before=c.num(before.centre), after=c.num(after.centre),
                      months_before=c.months(before.months[0], before.months[-1]),
                      months_after=c.months(after.months[0], after.months[-1]))
        diff, lo, hi = got["change"], got["lo"], got["hi"]
        if lo is None:
            c.say("level.no_interval", src, place=fields["place"], value=c.num(after.centre),
                  months=fields["months_after"])
            continue
        beyond = lo.value > 0 or hi.value < 0
        key_ = ("change.up" if diff.value > 0 else "change.down") if beyond else "change.none"
        c.say(key_, src, diff=c.num(diff, absolute=beyond), interval=c.interval(lo, hi), **fields)


def compare(c: Composer, plan: QueryPlan, gaz: Gazetteer) -> None:
    store = c.store
    places = [gaz.places[k] for k in plan.areas[:2]]
    if plan.metric == "forecast":
        _compare_forecasts(c, places, int(plan.horizon or store.default_horizon))
        return
    start, end = plan.period or store.window(store.latest, 3)
    levels = [store.level(codes_of(p, store), start, end) for p in places]
    for place, level in zip(places, levels):
        if level is None:
            _no_data(c, place, start, end)
            return
    (a, la), (b, lb) = sorted(zip(places, levels), key=lambda x: -x[1].centre.value)
    months = c.months(min(la.months[0], lb.months[0]), max(la.months[-1], lb.months[-1]))
    src = c.label_source(c.store.label_file, months)
    diff = la.centre - lb.centre
    if la.se is None or lb.se is None:
        c.say("level.no_interval", src, place=c.place(a), value=c.num(la.centre), months=months)
        c.say("level.no_interval", src, place=c.place(b), value=c.num(lb.centre), months=months)
        return
    lo, hi = interval(diff, hypot(la.se, lb.se), store.level_setting)
    key = "compare.higher" if lo.value > 0 else "compare.none"
    c.say(key, src, a=_shown(c, a, la.areas), b=_shown(c, b, lb.areas), va=c.num(la.centre), vb=c.num(lb.centre),
          months=months, diff=c.num(diff), interval=c.interval(lo, hi))


def place_forecast(store: RunStore, place: Place, horizon: int) -> Forecast | None:
    """One buurt's forecast, or for a wijk, group or the city the mean of its buurten's forecasts (the interval
    the mean of their bounds: as wide as if their errors moved together)."""
    found = [f for f in (store.forecast(code, horizon) for code in codes_of(place, store)) if f is not None]
    if not found:
        return None
    if len(found) == 1:
        return found[0]
    first = found[0]
    avg = lambda attr: mean([getattr(f, attr) for f in found])   # noqa: E731
    have = all(f.level is not None and f.change is not None for f in found)
    return Forecast(place.key, first.origin, first.target, horizon, avg("prediction"), avg("lo"), avg("hi"),
                    avg("level") if have else None, avg("change") if have else None,
                    avg("change_lo") if have else None, avg("change_hi") if have else None, first.source)


def _horizon_ok(c: Composer, horizon: int) -> bool:
    store = c.store
    if horizon in store.horizons:
        return True
    c.answer.status = "no_data"
    from server.ask.compose import horizon_fact

    shown = [c.num(horizon_fact(store, h), 0) for h in store.horizons]
    c.say("forecast.no_horizon", horizons=", ".join(shown))
    return False


def forecast(c: Composer, place: Place, horizon: int) -> None:
    store = c.store
    if not _horizon_ok(c, horizon):
        return
    f = place_forecast(store, place, horizon)
    if f is None:
        c.answer.status = "no_data"
        c.say("forecast.missing", place=c.place(place))
        return
    src = c.forecast_source(f.source, f.origin, horizon)
    shown = _shown(c, place, list(codes_of(place, store))) if place.kind not in ("buurt", "area") else c.place(place)
    c.say("forecast.sentence", src, place=shown, value=c.num(f.prediction), target=f.target,
          interval=c.interval(f.lo, f.hi))
    if store.releasable(horizon) is False:
        from server.ask.compose import horizon_fact

        c.say("forecast.gate", c.source("skill", run=store.name), horizon=c.num(horizon_fact(store, horizon), 0))
    if f.change is not None and f.change_lo is not None:
        beyond = f.change_lo.value > 0 or f.change_hi.value < 0
        key = ("forecast.up" if f.change.value > 0 else "forecast.down") if beyond else "forecast.none"
        c.say(key, src, level=c.num(f.level), diff=c.num(f.change, absolute=True),
              interval=c.interval(f.change_lo, f.change_hi))


def _compare_forecasts(c: Composer, places: list[Place], horizon: int) -> None:
    store = c.store
    if not _horizon_ok(c, horizon):
        return
    got = [place_forecast(store, p, horizon) for p in places]
    for place, f in zip(places, got):
        if f is None:
            c.answer.status = "no_data"
            c.say("forecast.missing", place=c.place(place))
            return
    (a, fa), (b, fb) = sorted(zip(places, got), key=lambda x: -x[1].prediction.value)
    src = c.forecast_source(fa.source, fa.origin, horizon)
    half = hypot((fa.hi - fa.lo).times(const(0.5)), (fb.hi - fb.lo).times(const(0.5)))
    diff = fa.prediction - fb.prediction
    lo, hi = diff - half, diff + half
    key = "compare.forecast_higher" if lo.value > 0 else "compare.forecast_none"
    c.say(key, src, a=c.place(a), b=c.place(b), va=c.num(fa.prediction), vb=c.num(fb.prediction), target=fa.target,
          diff=c.num(diff), interval=c.interval(lo, hi))
