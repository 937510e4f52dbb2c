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

from server.report import figures
from server.report.areas import CREDIT, svg_paths

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
    line('Predicted liveability next month: '+fmt(a.prediction));
    line(data.level+' interval: '+fmt(a.low)+' to '+fmt(a.high));
    line('Change from this month: '+fmt(a.change));
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
  colour('pred');
  var drawn=0;paths.forEach(function(p){var b=p.getBBox();if(b.width>0&&b.height>0)drawn++;});
  document.body.setAttribute('data-drawn',String(drawn));
  document.body.setAttribute('data-areas',String(paths.length));
})();
"""


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
    change_fill, (clo, chi) = figures.colours(dict(zip(report.areas["area_code"], report.areas["change"])),
                                              figures.CHANGE_CMAP, centre=0.0)
    d, height = svg_paths(report.boundaries)
    parts = []
    for code, path in d.items():
        row = areas.loc[code]
        status = "suppressed" if row["suppressed"] else "predicted"
        title = f"{row['name']}: " + ("suppressed" if row["suppressed"] else f"{row['prediction']:.3f}")
        parts.append(f'<path class="area {status}" data-area="{escape(code)}" data-status="{status}" '
                     f'data-fill-pred="{pred_fill.get(code, "url(#hatch)")}" '
                     f'data-fill-change="{change_fill.get(code, "url(#hatch)")}" d="{path}"><title>{escape(title)}</title></path>')
    hatch = ('<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">'
             '<rect width="6" height="6" fill="#e0e0e0"/><line x1="0" y1="0" x2="0" y2="6" stroke="#888" stroke-width="2"/>'
             '</pattern></defs>')
    svg = (f'<svg id="map" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 760 {height:.0f}" width="520" '
           f'height="{height * 520 / 760:.0f}" role="img" aria-label="map of the areas">{hatch}{"".join(parts)}</svg>')
    legend = (f'<div class="legend" id="legend-pred">Colour: predicted liveability next month, from red '
              f'({plo:.2f}, lowest) to green ({phi:.2f}, highest). Hatched grey: suppressed.</div>'
              f'<div class="legend" id="legend-change">Colour: change from this month, from {clo:+.2f} to '
              f'{chi:+.2f} (purple: better, orange: worse). Hatched grey: suppressed or no current value.</div>')
    buttons = ('<p><button data-mode="pred">Predicted liveability next month</button> '
               '<button data-mode="change">Change from this month</button></p>')
    return (f"{buttons}{legend}<div class='map'>{svg}<div id='info'><p>Hover over or click an area.</p></div></div>"
            f"<p style='font-size:.75em'>{escape(CREDIT)}</p>")


def _ranked(report: Report) -> str:
    rows = []
    for _, a in report.areas.sort_values(["suppressed", "prediction"]).iterrows():
        if a["suppressed"]:
            rows.append(["-", escape(a["name"]), escape(a["area_code"]), "suppressed", "", "", ""])
            continue
        rows.append([str(a["rank"]), escape(a["name"]), escape(a["area_code"]), f"{a['prediction']:.3f}",
                     f"{a['low']:.3f} to {a['high']:.3f}", "-" if np.isnan(a["change"]) else f"{a['change']:+.3f}",
                     escape(a["drivers"][0]) if a["drivers"] else ""])
    return _table(["rank (1 = lowest)", "area", "code", "prediction", "interval", "change", "main driver"], rows)


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
    if not report.receipts:
        return "<p>The run holds no node privacy report.</p>"
    out = []
    for r in report.receipts:
        # every word from the language files (server/report/lang), Dutch first
        nl, en = (_receipt_text(r.texts[code]) for code in ("nl", "en"))
        out.append(f"<h3>{escape(r.partner)}</h3><div class='receipt' data-partner='{escape(r.partner)}'>"
                   f"<div>{nl}</div><div>{en}</div></div><details><summary>The node's guarantee, as its ledger "
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
                                       "high": _num(a["high"]), "change": _num(a["change"]),
                                       "drivers": list(a["drivers"])} for _, a in report.areas.iterrows()}}
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
    drivers_note = ("<p>Drivers: Integrated Gradients on the model (captum), from a typical area (every feature at "
                    "its public centre) to the area; largest convergence error "
                    f"{report.drivers_error:.4f} points.</p>") if report.drivers_error is not None else ""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<title>PULSE-TWIN report: {escape(run.name)}</title><style>{STYLE}</style></head>
<body>
<h1>Neighbourhood liveability: {escape(run.name)}</h1>
{unfit}{_gate(report)}
<p>{escape(run.topology.capitalize())} run of federation '{escape(str(run.config['federation']['name']))}'. Areas only:
nothing here is about a person. Made from what the run already released; it cost no privacy budget.</p>
<h2>Map</h2>{_map(report)}
<h2>Areas, ranked</h2>{_ranked(report)}
<h2>How sure: intervals</h2>{coverage}
<h2>How good: the yardstick</h2>{words}{yard}{drivers_note}
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
