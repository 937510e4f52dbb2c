"""`pulse-twin feedback RUN_DIR`: public pages per buurt and an index, in every language shown (`configs/languages.yaml`:
the readers' own first, at the root; every other in a folder of its code).

Static HTML with its style inline: no script, no external request, readable on a phone. Every number on a
page sits in an element whose `data-source` names where it comes from: `release:<id>` (a DP release the run
kept, with `data-series` and `data-periods`), `public:<name>` (a public CBS figure) or `action:<id>` (an
entry of the municipality's action log); `trace.untraceable` checks this. Buurten below the minimum
population get no figures at all.
"""
from __future__ import annotations

import html
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd

from federation.errors import ConfigError
from server.feedback.actions import Action, load_actions
from server.feedback.figures import AreaFigures, Figure, area_figures, last_periods
from server.feedback.underreporting import underreporting
from server.kept_releases import RELEASES_DIR
from server.languages import folder, languages, shown

PAGE = "feedback"
BOUNDARIES = Path(__file__).resolve().parent.parent / "report" / "data" / "heerlen_buurten_2019.geojson"
CBS_SOURCE = "public:cbs-kerncijfers-wijken-en-buurten"
MAP_SOURCE = "public:cbs-wijk-en-buurtkaart-2019"
STYLE = ("body{font-family:system-ui,sans-serif;margin:0 auto;max-width:46rem;padding:1rem;line-height:1.5;"
         "color:#1a1a1a}h1{font-size:1.4rem}h2{font-size:1.15rem;margin-top:1.6rem}.fig{font-size:1.5rem;"
         "font-weight:600}.card{border:1px solid #ccc;border-radius:.4rem;padding:.6rem .8rem;margin:.6rem 0}"
         ".note{background:#fff4d6;border-left:.3rem solid #c88a00;padding:.5rem .8rem}nav{display:flex;"
         "justify-content:space-between;gap:1rem;flex-wrap:wrap}table{border-collapse:collapse;width:100%}"
         "td,th{text-align:left;padding:.3rem;border-bottom:1px solid #ddd}ol.timeline{padding-left:1.2rem}"
         "small{color:#555}")


@lru_cache(maxsize=None)
def texts(lang: str) -> dict[str, Any]:
    """The pages' texts in `lang` (its language file, checked against the Dutch one: `server.languages`)."""
    if lang not in shown():
        raise ConfigError(f"--lang: {lang!r} is not one of {', '.join(shown())} (configs/languages.yaml)")
    return languages(folder(PAGE), (lang,))[lang]


def language_links(lang: str, page: str) -> str:
    """Links to `page` in every other language shown, each named in its own language. The readers' first
    language is at the root of the pages, every other in a folder of its code (`en/`)."""
    codes = shown()
    up = "" if lang == codes[0] else "../"
    return "".join(f'<a href="{up}{"" if code == codes[0] else code + "/"}{page}" hreflang="{code}" lang="{code}">'
                   f'{html.escape(texts(code)["lang_name"])}</a>' for code in codes if code != lang)


@dataclass(frozen=True)
class Area:
    code: str
    name: str
    wijk: str
    population: int | None


def public_areas(cbs_path: Path | None = None) -> dict[str, Area]:
    """Buurten of the public CBS map (names, wijk) with their latest public population."""
    from server.report import CBS_FILE
    from server.report.cbs import CBS_YEARS, load_heerlen

    doc = json.loads(BOUNDARIES.read_text(encoding="utf-8"))
    cbs = load_heerlen(Path(cbs_path or CBS_FILE), list(CBS_YEARS), "")
    population = dict(zip(cbs.codes, (int(p) for p in cbs.population[:, -1])))
    out = {}
    for f in doc["features"]:
        p = f["properties"]
        out[p["buurtcode"]] = Area(p["buurtcode"], p["buurtnaam"], p["wijkcode"], population.get(p["buurtcode"]))
    return out


def _num(value: float, t: dict, decimals: int = 1) -> str:
    text = f"{value:,.{decimals}f}"
    return text.replace(",", "\0").replace(".", t["decimal"]).replace("\0", "." if t["decimal"] == "," else ",")


def _traced(text: str, source: str, **attrs: str) -> str:
    extra = "".join(f' data-{k}="{html.escape(v)}"' for k, v in attrs.items())
    return f'<span data-source="{html.escape(source)}"{extra}>{html.escape(text)}</span>'


def _fill(text: str, **spans: str) -> str:
    """Escape a language-file text and put the given (already traced) HTML in its {placeholders}."""
    out = html.escape(text)
    for key, value in spans.items():
        out = out.replace("{" + key + "}", value)
    return out


def _months(settings: dict, periods: str) -> str:
    return _traced(str(settings.get("_count", settings["months"])), f"release:{settings.get('_releases', '')}",
                   periods=periods)


def _release(fig: Figure, text: str) -> str:
    return _traced(text, f"release:{fig.release}", series=fig.series, periods=fig.periods)


def _certainty(fig: Figure, t: dict) -> str:
    r = fig.relative()
    return t["certainty_high"] if r < 0.15 else t["certainty_mid"] if r < 0.4 else t["certainty_low"]


def _page(title: str, body: str, t: dict, switch: str) -> str:
    """One page; `switch`: its links to the other languages (`language_links`)."""
    return (f'<!doctype html><html lang="{t["lang"]}"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{html.escape(title)}'
            f'</title><style>{STYLE}</style></head><body><nav><span></span><span>{switch}</span></nav>{body}'
            f'<footer><p><small>{html.escape(t["sources"])}</small></p></footer></body></html>')


def _figure_card(label: str, fig: Figure | None, unit: str, t: dict, percent: bool = False) -> str:
    if fig is None:
        return f'<div class="card">{html.escape(label)}: <em>{html.escape(t["too_uncertain"])}</em></div>'
    value = _num(fig.value * 100, t, 0) + " %" if percent else _num(fig.value, t)
    words = "" if percent else f" <small>({html.escape(_certainty(fig, t))})</small>"
    return (f'<div class="card">{html.escape(label)}<br><span class="fig">{_release(fig, value)}</span> '
            f'{unit}{words}</div>')


def _timeline(actions: list[Action], t: dict) -> str:
    if not actions:
        return f"<p>{html.escape(t['actions_none'])}</p>"
    items = []
    for a in actions:
        src = f"action:{a.id}"
        when = f"{html.escape(t['from'])} {_traced(a.start.isoformat(), src)}"
        if a.end is not None:
            when += f" {html.escape(t['until'])} {_traced(a.end.isoformat(), src)}"
        cats = ", ".join(t["categories"][c] for c in a.categories)
        items.append(f'<li class="card"><strong>{_traced(a.action, src)}</strong><br>{when}<br>'
                     f'{html.escape(t["status"][a.status])}, {html.escape(t["progress"])} '
                     f'{_traced(f"{a.progress} %", src)}<br><small>{html.escape(t["answers"])} '
                     f'{html.escape(cats)}</small></li>')
    return f'<ol class="timeline">{"".join(items)}</ol>'


def area_page(area: Area, figs: AreaFigures | None, actions: list[Action], weight: tuple[float, str] | None,
              under: tuple[float, str] | None, t: dict, settings: dict, switch: str, index: str) -> str:
    min_pop = int(settings["min_population"])
    head = (f'<p><a href="{index}">{html.escape(t["back"])}</a></p><h1>{html.escape(area.name)}</h1><p>'
            f'{html.escape(t["area_code"])}: {_traced(area.code, MAP_SOURCE)} · {html.escape(t["wijk"])}: '
            f'{_traced(area.wijk, MAP_SOURCE)}')
    if area.population is not None:
        head += f' · {html.escape(t["residents"])}: {_traced(_num(area.population, t, 0), CBS_SOURCE)}'
    head += "</p>"
    if area.population is None or area.population < min_pop or figs is None or not figs.shown:
        body = f'<p class="note">{_fill(t["too_small"], min=_traced(str(min_pop), "public:minimum-population"))}</p>'
    else:
        span = _months(settings, settings["_periods"])
        body = f"<p>{_fill(t['intro'].split('.')[0], months=span)}.</p>"
        if under is not None:
            ratio = _num(under[0] * 100, t, 0) + " %"
            body += f'<p class="note">{_fill(t["under_reporting"], ratio=_traced(ratio, "release:" + under[1]))}</p>'
        unit = _fill(t["reports_unit"], months=span)
        body += _figure_card(t["reports"], figs.reports, unit, t)
        body += _figure_card(t["frontliners"], figs.frontliners, unit, t)
        days = _traced(str(settings["norm_days"]), "public:handling-norm")
        body += _figure_card(t["in_norm"], figs.in_norm_share, _fill(t["in_norm_unit"], days=days), t, percent=True)
        body += _figure_card(t["satisfied"], figs.satisfied_share, html.escape(t["satisfied_unit"]), t, percent=True)
        if weight is None:
            body += f'<div class="card">{html.escape(t["weight_none"])}</div>'
        else:
            body += (f'<div class="card">{html.escape(t["weight"])}<br><span class="fig">'
                     f'{_traced(_num(weight[0] * 100, t, 0) + " %", "release:" + weight[1], series="model attribution")}'
                     f'</span> {html.escape(t["weight_unit"])}</div>')
    body += f"<h2>{html.escape(t['actions'])}</h2>{_timeline(actions, t)}"
    return _page(t["title_area"].format(name=area.name), head + body, t, switch)


def index_page(areas: list[Area], figs: dict[str, AreaFigures], counts: dict[str, int], t: dict, settings: dict,
               switch: str, prefix: str = "") -> str:
    rows = []
    for a in areas:
        f = figs.get(a.code)
        shown = (a.population is not None and a.population >= int(settings["min_population"]) and f is not None
                 and f.reports is not None)
        value = (_release(f.reports, _num(f.reports.value, t)) if shown
                 else f"<small>{html.escape(t['too_uncertain'])}</small>")
        rows.append(f'<tr><td><a href="{prefix}{a.code}.html">{html.escape(a.name)}</a></td><td>{value}</td>'
                    f'<td>{_traced(str(counts.get(a.code, 0)), "action:count")}</td></tr>')
    span = _months(settings, settings.get("_periods", ""))
    body = (f"<h1>{html.escape(t['title_index'])}</h1><p>{_fill(t['intro'], months=span)}"
            f"</p><h2>{html.escape(t['index_head'])}</h2><table><thead><tr><th>{html.escape(t['col_buurt'])}</th>"
            f"<th>{html.escape(t['col_reports'])}</th><th>{html.escape(t['col_actions'])}</th></tr></thead><tbody>"
            f"{''.join(rows)}</tbody></table>")
    return _page(t["title_index"], body, t, switch)


def community_weights(run_dir: Path, partner_block: str = "community") -> dict[str, tuple[float, str]]:
    """Per area, the community block's share of the absolute shares of its drivers in the forecast (the run's
    drivers, `server.report.drivers.run_drivers`: post-processing of the released blocks); empty when the run
    kept none."""
    from server.report.drivers import drivers_per_area, run_drivers

    config = json.loads((run_dir / "config.json").read_text()) if (run_dir / "config.json").is_file() else {}
    per_area = drivers_per_area(run_drivers(run_dir, config), owners={})
    releases = sorted(set(pd.read_csv(run_dir / RELEASES_DIR / "community.csv", usecols=["release"])["release"])) \
        if (run_dir / RELEASES_DIR / "community.csv").is_file() else []
    out = {}
    for area, d in per_area.items():
        total = sum(abs(v) for v in d["blocks"].values())
        if total > 0 and partner_block in d["blocks"]:
            out[area] = (abs(d["blocks"][partner_block]) / total, ";".join(releases))
    return out


def build_feedback(run_dir: Path, out: Path, actions_path: Path, settings: dict) -> list[Path]:
    """Write the index and one page per buurt, in Dutch (OUT/) and English (OUT/en/)."""
    path = Path(run_dir) / RELEASES_DIR / f"{settings['partner']}.csv"
    if not path.is_file():
        raise ConfigError(f"{run_dir}: the run kept no release of the community node ({path} is missing); run a "
                          "vertical federation with the community node (federation=heerlen_community)")
    release = pd.read_csv(path, dtype={"area_code": str, "period": str, "series": str, "release": str})
    areas = public_areas()
    known = set(areas) | {a.wijk for a in areas.values()}
    actions = load_actions(actions_path, known)
    periods = last_periods(release, int(settings["months"]))
    settings = {**settings, "_releases": ";".join(sorted(set(release["release"]))),
                "_periods": f"{periods[0]}..{periods[-1]}" if periods else "", "_count": len(periods)}
    figs = {code: area_figures(release, code, periods) for code in areas}
    yearly = release[release["period"].isin(periods)].groupby(["area_code", "series"])["value"].sum().unstack()
    under: dict[str, tuple[float, str]] = {}
    if not yearly.empty:
        reports = yearly[[c for c in yearly if c.startswith("reports_")]].sum(axis=1).clip(lower=0)
        front = yearly[[c for c in yearly if c.startswith("frontliner_")]].sum(axis=1).clip(lower=0)
        ind = underreporting(reports, front.rename("frontliner_signals").to_frame())
        rel = ";".join(sorted(set(release["release"])))
        under = {a: (float(ind.frame.loc[a, "ratio"]), rel) for a in ind.flagged()}
    weights = community_weights(Path(run_dir))
    ordered = sorted(areas.values(), key=lambda a: (a.wijk, a.name))
    counts = {a.code: sum(x.applies_to(a.code, a.wijk) for x in actions) for a in ordered}
    written = []
    for lang in shown():
        t = texts(lang)
        where = Path(out) if lang == shown()[0] else Path(out) / lang
        where.mkdir(parents=True, exist_ok=True)
        (where / "index.html").write_text(index_page(ordered, figs, counts, t, settings,
                                                     language_links(lang, "index.html")), encoding="utf-8")
        written.append(where / "index.html")
        for a in ordered:
            mine = [x for x in actions if x.applies_to(a.code, a.wijk)]
            page = area_page(a, figs.get(a.code), mine, weights.get(a.code), under.get(a.code), t, settings,
                             language_links(lang, f"{a.code}.html"), "index.html")
            (where / f"{a.code}.html").write_text(page, encoding="utf-8")
            written.append(where / f"{a.code}.html")
    return written
