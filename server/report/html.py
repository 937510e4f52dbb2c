"""One self-contained HTML page: inline SVG map, inline data and script, figures as data URIs.

The page makes no request when viewed: its Content-Security-Policy allows only inline scripts, inline
styles and data: images, so even a mistake could not fetch anything. The map's script switches the colour
between the prediction and the change from this month, and shows an area's name, prediction, interval and
drivers on hover or click. It also counts the areas it has drawn (`data-drawn` on <body>) for the tests.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

import base64
import json
import math
from html import escape

import numpy as np
import pandas as pd

from pathlib import Path

from server.report import figures
from server.report.areas import CREDIT, svg_paths
from server.report.lang import say

if TYPE_CHECKING:  # the report is built by build.py, which renders it here
    from server.report.build import Report

CSP = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:"

STYLE = """
body{font-family:system-ui,sans-serif;margin:0 auto;max-width:1100px;padding:1em;color:#222}
h1{font-size:1.5em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}
.refused{background:#fde0dd;border:2px solid #c51b8a;padding:.6em 1em}
.ok{background:#e5f5e0;border:2px solid #31a354;padding:.6em 1em}
.unfit{background:#fee8c8;border:2px solid #e34a33;padding:.6em 1em;font-weight:bold}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}td,th{border:1px solid #ddd;padding:3px 6px;text-align:left}
.map{display:flex;gap:1em;align-items:flex-start}#info{min-width:300px;max-width:360px;font-size:.9em}
svg .area{stroke:#fff;stroke-width:.8;cursor:pointer}svg .area:hover,svg .area.sel{stroke:#000;stroke-width:2}
.receipt{display:flex;gap:1em}.receipt>div{flex:1;border:1px solid #ccc;padding:.5em}
.fail{color:#b30000;font-weight:bold}.pass{color:#2c7c2c}img{max-width:100%}
"""

SCRIPT = """
(function(){
  var errors=[];window.addEventListener('error',function(e){errors.push(String(e.message));
    document.body.setAttribute('data-errors',errors.join(' | '));});
  var data=JSON.parse(document.getElementById('report-data').textContent);
  var paths=document.querySelectorAll('svg .area');
  function fmt(v){return (v===null||isNaN(v))?'-':Number(v).toFixed(3);}
  function show(code){
    var a=data.areas[code];if(!a)return;var info=document.getElementById('info');
    paths.forEach(function(p){p.classList.toggle('sel',p.getAttribute('data-area')===code);});
    var h='<h3></h3>';info.innerHTML=h;info.querySelector('h3').textContent=a.name+' ('+code+')';
    function line(t){var d=document.createElement('div');d.textContent=t;info.appendChild(d);}
    if(a.suppressed){line('Suppressed: no prediction is published for this area (too few residents, or not held by every partner).');return;}
    line(data.pred_label+': '+fmt(a.prediction));
    line(data.level+' interval: '+fmt(a.low)+' to '+fmt(a.high));
    if(a.naive!==null)line(data.naive_label+': '+fmt(a.naive));
    (a.change_text||[]).forEach(function(t){line(t);});
    if(!data.fit)line('NOT FIT FOR USE: see the verdict.');
    var ul=document.createElement('ul');(a.drivers||[]).forEach(function(t){var li=document.createElement('li');
      li.textContent=t;ul.appendChild(li);});if(a.drivers&&a.drivers.length){line('Drivers:');info.appendChild(ul);}
  }
  function colour(mode){
    paths.forEach(function(p){p.setAttribute('fill',p.getAttribute('data-fill-'+mode));});
    document.querySelectorAll('.legend').forEach(function(l){l.style.display=l.id==='legend-'+mode?'block':'none';});
    document.querySelectorAll('button[data-mode]').forEach(function(b){b.disabled=b.getAttribute('data-mode')===mode;});
  }
  document.querySelectorAll('button[data-mode]').forEach(function(b){
    b.addEventListener('click',function(){colour(b.getAttribute('data-mode'));});});
  paths.forEach(function(p){var c=p.getAttribute('data-area');
    p.addEventListener('mouseenter',function(){show(c);});p.addEventListener('click',function(){show(c);});});
  colour(data.first_map||'pred');
  var drawn=0;paths.forEach(function(p){var b=p.getBBox();if(b.width>0&&b.height>0)drawn++;});
  document.body.setAttribute('data-drawn',String(drawn));
  document.body.setAttribute('data-areas',String(paths.length));
})();
"""


def _change_texts(a) -> list[str]:
    """The change lines of an area's info panel, Dutch first."""
    from server.report.forecast import change_words

    if a["suppressed"] or a["change"] is None or np.isnan(a["change"]):
        return []
    return [t for _, t in change_words(a["change"], a["change_lo"], a["change_hi"])]


def _num(value: float) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else round(float(value), 4)


def _png(path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _map(report: Report) -> str:
    if not report.boundaries:
        return "<p>No boundaries ship for these areas: the ranked table below is the view.</p>"
    areas = report.areas.set_index("area_code")
    pred_fill, (plo, phi) = figures.colours(dict(zip(report.areas["area_code"], report.areas["prediction"])), figures.PRED_CMAP)
    # a change inside its interval is no change: coloured as 0, never as a rise or a fall
    shown_change = report.areas["change"].where(report.areas["beyond_noise"], 0.0).where(report.areas["change"].notna())
    change_fill, (clo, chi) = figures.colours(dict(zip(report.areas["area_code"], shown_change)),
                                              figures.CHANGE_CMAP, centre=0.0)
    naive_fill, _ = figures.colours(dict(zip(report.areas["area_code"], report.areas["naive"])), figures.PRED_CMAP,
                                    lo_hi=(plo, phi))
    d, height = svg_paths(report.boundaries)
    parts = []
    for code, path in d.items():
        row = areas.loc[code]
        status = "suppressed" if row["suppressed"] else "predicted"
        title = f"{row['name']}: " + ("suppressed" if row["suppressed"] else f"{row['prediction']:.3f}")
        parts.append(f'<path class="area {status}" data-area="{escape(code)}" data-status="{status}" '
                     f'data-fill-pred="{pred_fill.get(code, "url(#hatch)")}" '
                     f'data-fill-change="{change_fill.get(code, "url(#hatch)")}" '
                     f'data-fill-naive="{naive_fill.get(code, "url(#hatch)")}" d="{path}"><title>{escape(title)}</title></path>')
    hatch = ('<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">'
             '<rect width="6" height="6" fill="#e0e0e0"/><line x1="0" y1="0" x2="0" y2="6" stroke="#888" stroke-width="2"/>'
             '</pattern></defs>')
    svg = (f'<svg id="map" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 760 {height:.0f}" width="520" '
           f'height="{height * 520 / 760:.0f}" role="img" aria-label="map of the areas">{hatch}{"".join(parts)}</svg>')
    ahead = _ahead(report)
    legend = (f'<div class="legend" id="legend-pred">Colour: predicted liveability {ahead}, from red '
              f'({plo:.2f}, lowest) to green ({phi:.2f}, highest). Hatched grey: suppressed.</div>'
              f'<div class="legend" id="legend-naive">Colour: the naive forecast ({escape(_naive(report))}), on the '
              f'same scale as the model\'s. Hatched grey: suppressed or no naive forecast.</div>'
              f'<div class="legend" id="legend-change">Colour: predicted change against the area\'s recent level, '
              f'from {clo:+.2f} to {chi:+.2f} (purple: better, orange: worse); a change inside its interval (no '
              f'change beyond the noise) is coloured as none. Hatched grey: suppressed or no change known.</div>')
    buttons = (f'<p><button data-mode="pred">Model forecast, {ahead}</button> '
               '<button data-mode="naive">Naive forecast</button> '
               '<button data-mode="change">Change beyond the noise</button></p>')
    return (f"{buttons}{legend}<div class='map'>{svg}<div id='info'><p>Hover over or click an area.</p></div></div>"
            f"<p style='font-size:.75em'>{escape(CREDIT)}</p>")


def _naive_guides(report: Report) -> bool:
    """The gate refused the model on skill: the naive forecast is the guide the page leads with."""
    return report.forecast is not None and not report.forecast.releasable(
        float((report.settings.get("forecast") or {}).get("min_skill_lo", 0.0)))


def _ranked(report: Report) -> str:
    rows = []
    by = "naive" if _naive_guides(report) and report.areas["naive"].notna().any() else "prediction"
    for _, a in report.areas.sort_values(["suppressed", by]).iterrows():
        if a["suppressed"]:
            rows.append(["-", escape(a["name"]), escape(a["area_code"]), "suppressed", "", "", "", ""])
            continue
        naive = "-" if np.isnan(a["naive"]) else f"{a['naive']:.3f}"
        rows.append([str(a["rank"]), escape(a["name"]), escape(a["area_code"]), f"{a['prediction']:.3f}",
                     f"{a['low']:.3f} to {a['high']:.3f}", naive, _change_cell(a),
                     escape(a["drivers"][0]) if a["drivers"] else ""])
    note = ("<p>Gerangschikt naar de naïeve voorspelling, de betere leidraad / ranked by the naive forecast, "
            "the better guide.</p>" if by == "naive" else "")
    return note + _table(["rank (1 = lowest)", "area", "code", "prediction", "interval", "naive forecast",
                          "verandering / change", "main driver"], rows)


def _change_cell(a) -> str:
    """The change with its interval, or "no change beyond the noise" (Dutch first); "-" when unknown."""
    from server.report.forecast import change_words

    if np.isnan(a["change"]):
        return "-"
    words = change_words(a["change"], a["change_lo"], a["change_hi"])
    cls = "change" if a["beyond_noise"] else "nochange"
    return f"<span class='{cls}'>" + " / ".join(escape(t) for _, t in words) + "</span>"


def _ahead(report: Report) -> str:
    return f"{report.forecast.horizon} months ahead" if report.forecast is not None else "next period"


def _naive(report: Report) -> str:
    from server.report.forecast import _naive_name

    return _naive_name("en", report.forecast.naive_name) if report.forecast is not None else "none"


def _skill_verdict(report: Report) -> str:
    """The gate on skill in plain words, Dutch first."""
    if not report.skill_words:
        return ""
    ok = report.forecast is not None and report.forecast.releasable(
        float((report.settings.get("forecast") or {}).get("min_skill_lo", 0.0)))
    body = "".join(f"<p lang='{code}'>{escape(t)}</p>" for code, t in report.skill_words)
    return f"<div class='{'ok' if ok else 'refused'}' id='skill-verdict'>{body}</div>"


def _skill(report: Report) -> str:
    """Every model and naive forecast of the run's forecast, at every horizon, from its releases."""
    f = report.forecast
    if f is None:
        return "<p>This run wrote no forecast artefacts: the model was not scored against the naive forecast.</p>"
    ev = f.evaluation
    head = (f"<p>Scored by {escape(str(ev.get('kind', 'rolling origin in time and held-out areas')))}"
            + (f", origins {escape(', '.join(map(str, ev['origins'])))}" if ev.get("origins") else "")
            + f"; errors in {escape(f.units or 'label units')}. Skill = 1 - MSE(model) / MSE(best naive forecast), "
              "with a 90% interval from resampling whole areas. Configured horizon: "
            + f"{f.horizon}.</p>")
    rows = []
    for r in sorted(f.rows, key=lambda r: (r.horizon != f.horizon, r.horizon, r.model not in ("federated_dp",))):
        skill = "" if r.skill is None else (f"{r.skill:+.3f} ({r.skill_lo:+.3f} to {r.skill_hi:+.3f})"
                                            if r.skill_lo is not None and r.skill_hi is not None else f"{r.skill:+.3f}")
        best = " (best naive)" if f.best_naive.get(r.horizon) == r.model else ""
        rows.append([str(r.horizon), escape(r.model + best), f"{r.r2:.3f}", f"{r.mae:.3f}", str(r.n), skill])
    return head + _table(["horizon", "model", "R²", "MAE", "rows", "skill (90% interval)"], rows)


def _warnings(report: Report) -> str:
    """The areas expected to worsen most, only where the model has skill; else the naive ranking."""
    from server.report.lang import say

    f = report.forecast
    if f is None:
        return "<p>No early warning: this run wrote no forecast.</p>"
    names = dict(zip(report.areas["area_code"], report.areas["name"]))
    ok = f.releasable(float((report.settings.get("forecast") or {}).get("min_skill_lo", 0.0)))
    intro = "".join(f"<p lang='{c}'>{escape(t)}</p>" for c, t in say("warnings_shown" if ok else "warnings_withheld"))
    w = f.warnings
    if ok:
        listed = w[w["beyond_noise"] & pd.to_numeric(w["model_rank"], errors="coerce").notna()]
        listed = listed.assign(r=pd.to_numeric(listed["model_rank"])).sort_values("r")
        rows = [[str(int(x["r"])), escape(names.get(x["area_code"], x["area_code"])), escape(x["area_code"]),
                 f"{float(x['change']):+.3f} ({float(x['change_lo']):+.3f} to {float(x['change_hi']):+.3f})",
                 "-" if pd.isna(x["naive_rank"]) else str(int(float(x["naive_rank"])))] for _, x in listed.iterrows()]
        table = (_table(["rank", "area", "code", "predicted change (interval)", "naive rank"], rows) if rows else
                 "".join(f"<p lang='{c}'>{escape(t)}</p>" for c, t in say("warnings_none")))
        return f"<div id='warnings'>{intro}{table}</div>"
    naive = w[pd.to_numeric(w["naive_rank"], errors="coerce").notna()]
    naive = naive.assign(r=pd.to_numeric(naive["naive_rank"])).sort_values("r").head(10)
    rows = [[str(int(x["r"])), escape(names.get(x["area_code"], x["area_code"])), escape(x["area_code"]),
             "-" if pd.isna(x["naive_change"]) else f"{float(x['naive_change']):+.3f}"] for _, x in naive.iterrows()]
    return (f"<div id='warnings' data-withheld='true'>{intro}"
            + _table(["naive rank", "area", "code", "last period's change"], rows) + "</div>")


def _gate(report: Report) -> str:
    if report.refused:
        named = "; ".join(f"{escape(c.name)}: {escape(c.text)}" for c in report.refused)
        said = ("Threshold exceeded or not shown to hold" if any(c.status == "inconclusive" for c in report.refused)
                else "Threshold exceeded")
        return f"<div class='refused' id='gate'><b>Not releasable.</b> {said}: {named}</div>"
    return "<div class='ok' id='gate'><b>Releasable:</b> every check of the release gate passed.</div>"


def _checks(report: Report) -> str:
    rows = [[f"<span class='{'pass' if c.passed else 'fail'}'>"
             f"{'pass' if c.passed else 'NOT SHOWN' if c.status == 'inconclusive' else 'FAIL'}</span>",
             escape(c.name), escape(c.text)] for c in report.checks]
    return _table(["", "threshold (configs/report/default.yaml)", "measured"], rows)


def _fairness(report: Report) -> str:
    if not report.fairness or not report.fairness.groupings:
        return "<p>No audit: no held-out area has public audit statistics.</p>"
    out = [f"<p>Held-out areas with public statistics: {report.fairness.areas_with_statistics}. Groups with fewer "
           f"than {report.settings['fairness']['min_areas_per_group']} held-out areas are shown but not compared.</p>"]
    for g in report.fairness.groupings:
        rows = [[escape(str(i)), str(int(r["areas"])), str(int(r["rows"])), f"{r['mae']:.3f}", f"{r['bias']:+.3f}",
                 f"{r['calibration']:.3f}", f"{r['flag_excess']:+.2f}"] for i, r in g.table.iterrows()]
        out.append(f"<h3>{escape(g.label)}</h3>" + _table(
            ["group", "areas", "area-months", "MAE", "bias", "calibration error", "extra share flagged"], rows))
    return "".join(out)


def _receipts(report: Report) -> str:
    out = []
    for partner in report.missing_receipts:   # said plainly where the receipt would be, Dutch first
        path = str(Path(report.run.run_dir) / "privacy" / f"{partner}.json")
        said = "".join(f"<div lang='{c}'><p><b>{escape(t)}</b></p></div>"
                       for c, t in say("receipt.missing", partner=partner, path=path))
        out.append(f"<h3>{escape(partner)}</h3><div class='receipt missing' data-partner='{escape(partner)}'>"
                   f"{said}</div>")
    if not report.receipts and not out:
        return "<p>The run holds no node privacy report.</p>"
    for r in report.receipts:
        # every word from the language files (configs/lang/report), in the languages shown, the readers' own first
        said = "".join(f"<div lang='{escape(code)}'>{_receipt_text(t)}</div>" for code, t in (r.texts or {}).items())
        out.append(f"<h3>{escape(r.partner)}</h3><div class='receipt' data-partner='{escape(r.partner)}'>"
                   f"{said}</div><details><summary>The node's guarantee, as its ledger "
                   f"report states it</summary><pre>{escape(r.guarantee)}</pre></details>")
    return "".join(out)


def _receipt_text(t: Mapping[str, Any]) -> str:
    """One language's receipt: what left the node, the guarantee (epsilon in bold) and its meaning."""
    before, after = t["guarantee"]
    return (f"<h4>{escape(t['language'])}</h4><p>{escape(t['intro'])}</p>"
            f"<ul>{''.join(f'<li>{escape(x)}</li>' for x in t['left'])}</ul>"
            f"<p class='eps'>{escape(before)}<b>{escape(t['epsilon'])}</b>{escape(after)}</p>"
            f"<p>{escape(t['meaning'])}</p>")


def render(report: Report) -> str:
    run, v = report.run, report.verdict
    data = {"level": f"{report.intervals.level:.0%}" if report.intervals else "", "fit": v.fit_for_use,
            "areas": {a["area_code"]: {"name": a["name"], "suppressed": bool(a["suppressed"]),
                                       "prediction": _num(a["prediction"]), "low": _num(a["low"]),
                                       "high": _num(a["high"]), "naive": _num(a["naive"]),
                                       "change_text": _change_texts(a),
                                       "drivers": list(a["drivers"])} for _, a in report.areas.iterrows()},
            "pred_label": f"Model forecast, {_ahead(report)}", "naive_label": f"Naive forecast ({_naive(report)})",
            "first_map": "naive" if _naive_guides(report) else "pred"}
    blob = json.dumps(data).replace("</", "<\\/")
    unfit = "".join(f"<div class='unfit'>{escape(w)}</div>" for w in v.words if w.startswith("NOT FIT"))
    words = "".join(f"<p>{escape(w)}</p>" for w in v.words if not w.startswith("NOT FIT"))
    yard = _table(["model", "scored on", "R²", "MAE", "rows"],
                  [[escape(r.model), escape(r.scored_on), f"{r.r2:.3f}", f"{r.mae:.3f}", str(r.n)] for r in v.rows])
    iv = report.intervals
    coverage = f"<p id='coverage'>{escape(iv.text())}</p>" if iv else "<p>No held-out areas: no interval.</p>"
    mia = f"<h2>Membership audit</h2><p id='mia'>{escape(report.mia.text())}</p>" if report.mia else (
        "<h2>Membership audit</h2><p>Not possible: no held-out areas.</p>" if run.topology == "horizontal" else "")
    figs = "".join(f"<figure><img alt='{escape(k)}' src='{_png(p)}'><figcaption>{escape(p.name)}</figcaption></figure>"
                   for k, p in report.figures.items() if k != "map")
    card = "".join(f"<h3>{escape(k)}</h3><ul>{''.join(f'<li>{escape(t)}</li>' for t in items)}</ul>"
                   for k, items in report.card.items())
    notes = "".join(f"<p><i>{escape(n)}</i></p>" for n in report.notes)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<title>PULSE-TWIN report: {escape(run.name)}</title><style>{STYLE}</style></head>
<body>
<h1>Neighbourhood liveability: {escape(run.name)}</h1>
{unfit}{_skill_verdict(report)}{_gate(report)}
<p>{escape(run.topology.capitalize())} run of federation '{escape(str(run.config['federation']['name']))}'. Areas only:
nothing here is about a person. Made from what the run already released; it cost no privacy budget.</p>
<h2>Map</h2>{_map(report)}
<h2>Areas, ranked</h2>{_ranked(report)}
<h2>Vroege signalering / Early warning</h2>{_warnings(report)}
<h2>Beter dan de naïeve voorspelling? / Skill over the naive forecast</h2>{_skill(report)}
<h2>How sure: intervals</h2>{coverage}
<h2>How good: the yardstick</h2>{words}{yard}
<h2>Release gate</h2>{_checks(report)}
<h2>Fairness audit</h2>{_fairness(report)}
{mia}
<h2>Privacy receipts</h2>{_receipts(report)}
<h2>Model card</h2>{card}
<h2>Figures</h2>{figs}{notes}
<script type="application/json" id="report-data">{blob}</script>
<script>{SCRIPT}</script>
</body></html>
"""
