(function () {
  "use strict";
  var D = JSON.parse(document.getElementById("twin-data").textContent);
  var NS = "http://www.w3.org/2000/svg";
  var P = {};
  D.places.forEach(function (p) { P[p.code] = p; });
  var BUURTEN = D.places.filter(function (p) { return p.level === "buurt"; });
  var CITY = D.places.filter(function (p) { return p.level === "city"; })[0];
  var LATEST = 0;
  D.months.forEach(function (m, i) { if (m.kind === "released") { LATEST = i; } });
  var LANGS = Object.keys(D.lang);   // the languages shown, the readers' own first (configs/languages.yaml)
  var S = { lang: LANGS[0], month: LATEST, area: null, layer: "buurt", against: "city", sort: "name", a: null, b: null, from: null, to: null };
  var WHOLE = ["buurt", "wijk", "stadsdeel", "gebied", "city"];

  function t(key, vars) {
    var table = D.lang[S.lang] || D.lang[LANGS[0]];
    var s = table[key] !== undefined ? table[key] : D.lang[LANGS[0]][key];
    if (s === undefined) { s = key; }
    return String(s).replace(/\{(\w+)\}/g, function (_, k) { return vars && vars[k] !== undefined ? vars[k] : "{" + k + "}"; });
  }
  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (text !== undefined && text !== null) { e.textContent = text; }
    return e;
  }
  function svg(tag, attrs) {
    var e = document.createElementNS(NS, tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    return e;
  }
  function fmt(v, d) {
    if (v === null || v === undefined || !isFinite(v)) { return "–"; }
    return Number(v).toLocaleString(t("locale"), { minimumFractionDigits: d === undefined ? 2 : d, maximumFractionDigits: d === undefined ? 2 : d });
  }
  function pct(v) { return fmt(100 * v, 0); }
  function month(i) { return D.months[i]; }
  function monthLabel(m) {
    return m.kind === "released" ? t("month_released", { period: m.period })
      : t("month_forecast", { period: m.period, h: m.horizon, origin: m.origin });
  }
  function value(code, key) {
    var row = (D.values[key] || {})[code];
    if (!row || row[0] === null) { return null; }
    return { v: row[0], u: row[1] === null ? Infinity : row[1], naive: row.length > 2 ? row[2] : null };
  }
  // An area against a reference: "lower"/"higher" only when the difference exceeds both uncertainties combined.
  function versus(a, ref) {
    if (!a || !ref) { return "none"; }
    var d = a.v - ref.v, lim = Math.sqrt(a.u * a.u + ref.u * ref.u);
    if (!isFinite(lim)) { return "same"; }
    return d < -lim ? "lower" : (d > lim ? "higher" : "same");
  }
  function changes(fromKey, toKey) {
    var out = [];
    BUURTEN.concat(D.places.filter(function (p) { return p.level === "wijk"; })).forEach(function (p) {
      var a = value(p.code, fromKey), b = value(p.code, toKey);
      if (a && b && isFinite(a.u) && isFinite(b.u) && Math.abs(b.v - a.v) > Math.sqrt(a.u * a.u + b.u * b.u)) {
        out.push({ code: p.code, name: p.name, level: p.level, change: b.v - a.v, u: Math.sqrt(a.u * a.u + b.u * b.u) });
      }
    });
    return out.sort(byName);
  }
  function byName(x, y) { return x.name.localeCompare(y.name, t("locale")); }
  function named(p) {
    var word = t("level_" + p.level);
    return p.name.toLowerCase().indexOf(word.toLowerCase()) === 0 ? p.name : word + " " + p.name;
  }
  function parentOf(p) {
    if (p.level === "buurt") { return P[p.wijk] || CITY; }
    if (p.level === "wijk") { return P[p.stadsdeel] || CITY; }
    return CITY;
  }

  // ---- state in the URL hash (#lang=en&month=2020-10&area=BU...), so a view can be shared and tested ----
  function readHash() {
    var q = {};
    location.hash.replace(/^#/, "").split("&").forEach(function (kv) {
      var i = kv.indexOf("=");
      if (i > 0) { q[decodeURIComponent(kv.slice(0, i))] = decodeURIComponent(kv.slice(i + 1)); }
    });
    if (q.lang && D.lang[q.lang]) { S.lang = q.lang; }
    if (q.month) { D.months.forEach(function (m, i) { if (m.key === q.month) { S.month = i; } }); }
    if (q.area && P[q.area]) { S.area = q.area; }
    if (["buurt", "wijk", "stadsdeel"].indexOf(q.layer) >= 0) { S.layer = q.layer; }
    if (q.against === "past" || q.against === "city") { S.against = q.against; }
    if (q.a && P[q.a]) { S.a = q.a; }
    if (q.b && P[q.b]) { S.b = q.b; }
    if (q.from) { S.from = q.from; }
    if (q.to) { S.to = q.to; }
  }
  function writeHash() {
    var parts = ["lang=" + S.lang, "month=" + encodeURIComponent(month(S.month).key), "layer=" + S.layer, "against=" + S.against];
    if (S.area) { parts.push("area=" + S.area); }
    if (S.a) { parts.push("a=" + S.a); }
    if (S.b) { parts.push("b=" + S.b); }
    if (S.from) { parts.push("from=" + encodeURIComponent(S.from)); }
    if (S.to) { parts.push("to=" + encodeURIComponent(S.to)); }
    history.replaceState(null, "", "#" + parts.join("&"));
  }

  // ---- static texts ----
  function texts() {
    document.documentElement.lang = S.lang;
    document.querySelectorAll("[data-t]").forEach(function (e) { e.textContent = t(e.getAttribute("data-t")); });
    document.querySelectorAll("[data-t-aria]").forEach(function (e) { e.setAttribute("aria-label", t(e.getAttribute("data-t-aria"))); });
    document.getElementById("search").setAttribute("placeholder", t("search_placeholder"));
    document.getElementById("subtitle").textContent = t("subtitle", { run: D.run.name });
    // the switch offers the next language shown, named in that language
    var next = LANGS[(LANGS.indexOf(S.lang) + 1) % LANGS.length], button = document.getElementById("lang-switch");
    button.setAttribute("lang", next);
    button.textContent = D.lang[next].lang_name;
    button.setAttribute("aria-label", D.lang[next].switch_label);
    button.hidden = LANGS.length < 2;
    document.title = t("title") + " – " + D.run.name;
  }

  // ---- map ----
  var drawn = {};
  function drawMap() {
    var m = document.getElementById("map");
    var h = D.map_height || 400;
    m.setAttribute("viewBox", "0 0 760 " + Math.ceil(h));
    var defs = svg("defs");
    var pat = svg("pattern", { id: "hatch", width: 6, height: 6, patternUnits: "userSpaceOnUse", patternTransform: "rotate(45)" });
    pat.appendChild(svg("rect", { width: 6, height: 6, fill: "#fff" }));
    pat.appendChild(svg("line", { x1: 0, y1: 0, x2: 0, y2: 6, stroke: "#888", "stroke-width": 2 }));
    defs.appendChild(pat);
    m.appendChild(defs);
    Object.keys(D.shapes).sort().forEach(function (code) {
      var path = svg("path", { d: D.shapes[code], tabindex: "0", role: "button", "data-code": code });
      path.addEventListener("click", function () { openProfile(code, true); });
      path.addEventListener("keydown", function (ev) {
        if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); openProfile(code, true); }
      });
      var title = svg("title");
      path.appendChild(title);
      m.appendChild(path);
      drawn[code] = path;
    });
    document.body.setAttribute("data-drawn", String(Object.keys(drawn).length));
  }
  // What an area is set against on the map: the city in the same month, or the area itself in the month
  // before (the previous released month; for a forecast, the latest released month).
  function pastKey(i) {
    var m = month(i), j;
    for (j = (m.kind === "forecast" ? D.months.length : i) - 1; j >= 0; j--) {
      if (D.months[j].kind === "released" && D.months[j].key !== m.key) { return D.months[j].key; }
    }
    return null;
  }
  function reference(code, key) {
    if (S.against === "past") { var k = pastKey(S.month); return k ? value(code, k) : null; }
    return value(CITY.code, key);
  }
  function colourMap() {
    var key = month(S.month).key;
    var counts = { lower: 0, same: 0, higher: 0, none: 0 };
    Object.keys(drawn).forEach(function (code) {
      var p = P[code], shown = S.layer === "wijk" ? (P[p.wijk] || p) : (S.layer === "stadsdeel" ? (P[p.stadsdeel] || P[p.wijk] || p) : p);
      var v = value(shown.code, key), cls = versus(v, reference(shown.code, key));
      counts[cls] += 1;
      var path = drawn[code];
      path.setAttribute("class", "v-" + cls + (S.area === code || S.area === shown.code ? " sel" : ""));
      path.setAttribute("data-versus", cls);
      var words = shown.name + ": " + (v ? fmt(v.v) + " ± " + fmt(v.u) + ", " : "") + t((S.against === "past" ? "legend_past_" : "legend_") + cls);
      path.setAttribute("aria-label", words);
      path.firstChild.textContent = words;
    });
    document.body.setAttribute("data-counts", JSON.stringify(counts));
    var out = document.getElementById("month-out");
    out.textContent = monthLabel(month(S.month));
    document.getElementById("map-h").textContent = t("map_heading") + ": " + monthLabel(month(S.month));
    var slider = document.getElementById("month");
    slider.value = String(S.month);
    slider.setAttribute("aria-valuetext", monthLabel(month(S.month)));
    document.getElementById("map-caption").textContent = t("map_caption", { level: pct(D.run.level) });
    document.getElementById("units").textContent = D.run.label_units ? t("units", { units: D.run.label_units }) : "";
    var lg = document.getElementById("legend");
    lg.textContent = "";
    ["lower", "same", "higher", "none"].forEach(function (c) {
      var li = el("li");
      li.appendChild(el("span", { "class": "sw " + c, "aria-hidden": "true" }));
      li.appendChild(document.createTextNode(t((S.against === "past" ? "legend_past_" : "legend_") + c) + " (" + counts[c] + ")"));
      lg.appendChild(li);
    });
    mapTable();
  }
  function mapRows() {
    var key = month(S.month).key;
    var list = D.places.filter(function (p) { return p.level === S.layer; });
    list.sort(S.sort === "wijk" ? function (x, y) { return (x.wijk + x.name).localeCompare(y.wijk + y.name, t("locale")); } : byName);
    return list.map(function (p) {
      var v = value(p.code, key);
      return { p: p, v: v, versus: versus(v, reference(p.code, key)) };
    });
  }
  function mapTable() {
    var tb = document.getElementById("map-table");
    tb.textContent = "";
    var m = month(S.month);
    var head = [t("col_area"), t("col_wijk"), t("col_value"), t("col_interval"), t(S.against === "past" ? "col_versus_past" : "col_versus")];
    if (m.kind === "forecast") { head.push(t("col_naive")); }
    tb.appendChild(headRow(head));
    var body = el("tbody");
    mapRows().forEach(function (r) {
      var tr = el("tr");
      var td = el("td"), b = el("button", { type: "button", "class": "secondary", "aria-label": t("open_profile", { name: r.p.name }) }, r.p.name);
      b.addEventListener("click", function () { openProfile(r.p.code, true); });
      td.appendChild(b);
      tr.appendChild(td);
      tr.appendChild(el("td", {}, r.p.level === "buurt" && P[r.p.wijk] ? P[r.p.wijk].name : ""));
      tr.appendChild(el("td", { "class": "num" }, r.v ? fmt(r.v.v) : "–"));
      tr.appendChild(el("td", { "class": "num" }, r.v ? fmt(r.v.u) : "–"));
      tr.appendChild(el("td", {}, t("versus_" + r.versus)));
      if (m.kind === "forecast") { tr.appendChild(el("td", { "class": "num" }, r.v ? fmt(r.v.naive) : "–")); }
      body.appendChild(tr);
    });
    tb.appendChild(body);
  }
  // A table wider than a phone scrolls inside its own box, which a keyboard user can reach and scroll.
  function scrollBox() { return el("div", { "class": "scroll", tabindex: "0", role: "region", "aria-label": t("scroll_table") }); }
  function wrapped(table) { var box = scrollBox(); box.appendChild(table); return box; }
  function headRow(cells) {
    var th = el("thead"), tr = el("tr");
    cells.forEach(function (c) { tr.appendChild(el("th", { scope: "col" }, c)); });
    th.appendChild(tr);
    return th;
  }

  // ---- profile ----
  function openProfile(code, focus) {
    S.area = code;
    renderProfile();
    colourMap();
    writeHash();
    if (focus) { document.getElementById("profile").focus(); }
  }
  function seriesOf(code) {
    return D.months.map(function (m, i) { var v = value(code, m.key); return v ? { i: i, m: m, v: v } : null; })
      .filter(function (x) { return x; });
  }
  function ordinal(period) { var p = period.split("-"); return 12 * Number(p[0]) + Number(p[1] || 1) - 1; }
  function chart(series, title) {
    var W = 760, H = 260, L = 48, R = 48, T = 12, B = 36;
    var all = [];
    series.forEach(function (s) { s.pts.forEach(function (p) { all.push(p.v.v - (isFinite(p.v.u) ? p.v.u : 0)); all.push(p.v.v + (isFinite(p.v.u) ? p.v.u : 0)); if (p.v.naive !== null) { all.push(p.v.naive); } }); });
    var c = svg("svg", { viewBox: "0 0 " + W + " " + H, "class": "chart", role: "img", "aria-label": title });
    if (!all.length) { return c; }
    var lo = Math.min.apply(null, all), hi = Math.max.apply(null, all);
    if (hi - lo < 1e-9) { hi += 0.5; lo -= 0.5; }
    // time on the x axis: months since the first shown month (forecast horizons at their real distance)
    var first = ordinal(D.months[0].period), n = Math.max(1, ordinal(D.months[D.months.length - 1].period) - first);
    function x(i) { return L + (W - L - R) * (ordinal(D.months[i].period) - first) / n; }
    function y(v) { return T + (H - T - B) * (hi - v) / (hi - lo); }
    c.appendChild(svg("line", { x1: L, y1: H - B, x2: W - R, y2: H - B, "class": "axis" }));
    c.appendChild(svg("line", { x1: L, y1: T, x2: L, y2: H - B, "class": "axis" }));
    [lo, (lo + hi) / 2, hi].forEach(function (v) {
      var tx = svg("text", { x: 4, y: y(v) + 4 });
      tx.textContent = fmt(v);
      c.appendChild(tx);
    });
    var step = Math.max(1, Math.ceil(D.months.length / 8));
    D.months.forEach(function (m, i) {
      if (i % step === 0 || i === D.months.length - 1) {
        var tx = svg("text", { x: x(i) - 18, y: H - 14 });
        tx.textContent = m.period;
        c.appendChild(tx);
      }
    });
    var cur = svg("line", { x1: x(S.month), y1: T, x2: x(S.month), y2: H - B, stroke: "#999", "stroke-dasharray": "2 2" });
    c.appendChild(cur);
    series.forEach(function (s, k) {
      var rel = s.pts.filter(function (p) { return p.m.kind === "released"; });
      var fc = s.pts.filter(function (p) { return p.m.kind === "forecast"; });
      if (rel.length && k === 0) {
        var up = rel.map(function (p) { return x(p.i) + "," + y(p.v.v + p.v.u); });
        var dn = rel.slice().reverse().map(function (p) { return x(p.i) + "," + y(p.v.v - p.v.u); });
        c.appendChild(svg("polygon", { points: up.concat(dn).join(" "), "class": "band" }));
      }
      if (rel.length) {
        c.appendChild(svg("polyline", { points: rel.map(function (p) { return x(p.i) + "," + y(p.v.v); }).join(" "), "class": k === 0 ? "line" : "b-line" }));
      }
      fc.forEach(function (p) {
        if (isFinite(p.v.u)) { c.appendChild(svg("line", { x1: x(p.i), x2: x(p.i), y1: y(p.v.v - p.v.u), y2: y(p.v.v + p.v.u), "class": "fc" })); }
        c.appendChild(svg("circle", { cx: x(p.i), cy: y(p.v.v), r: 4, "class": "fcp" }));
        if (p.v.naive !== null) { c.appendChild(svg("rect", { x: x(p.i) - 4 + 8, y: y(p.v.naive) - 4, width: 8, height: 8, "class": "nv" })); }
      });
    });
    return c;
  }
  function renderProfile() {
    var body = document.getElementById("profile-body");
    body.textContent = "";
    if (!S.area) { body.appendChild(el("p", {}, t("profile_pick"))); return; }
    var p = P[S.area], parent = parentOf(p), m = month(S.month);
    document.getElementById("profile-h").textContent = t("profile_heading") + ": " + p.name;
    body.setAttribute("data-area", p.code);
    var band = p.band === null || p.band === undefined ? "–" : String(p.band + 1) + "/" + D.bands.length;
    body.appendChild(el("p", {}, t("profile_facts", { level: t("level_" + p.level), parent: parent ? parent.name : "", pop: fmt(p.population, 0), band: band })));
    summary(p).forEach(function (line) { body.appendChild(el("p", { "class": "summary" }, line)); });
    var title = t("profile_chart", { level: pct(D.run.level) });
    body.appendChild(chart([{ pts: seriesOf(p.code) }], p.name + ". " + title));
    var lg = el("ul", { "class": "legend" });
    [["band", "profile_series_legend_released"], ["fc", "profile_series_legend_forecast"], ["nv", "profile_series_legend_naive"]].forEach(function (x) {
      var li = el("li"); li.appendChild(el("span", { "class": "sw " + x[0], "aria-hidden": "true" })); li.appendChild(document.createTextNode(t(x[1]))); lg.appendChild(li);
    });
    body.appendChild(lg);
    body.appendChild(el("p", { "class": "note" }, title));
    // against wijk, stadsdeel, city at the chosen month
    body.appendChild(el("h3", {}, t("profile_against", { period: monthLabel(m) })));
    var tb = el("table");
    tb.appendChild(headRow([t("col_area"), t("col_value"), t("col_interval"), t("col_versus_row", { name: p.name })]));
    var tbody = el("tbody"), mine = value(p.code, m.key);
    [p, P[p.wijk], P[p.stadsdeel], CITY].filter(function (x, i, a) { return x && a.indexOf(x) === i; }).forEach(function (q) {
      var v = value(q.code, m.key), tr = el("tr");
      tr.appendChild(el("td", {}, named(q)));
      tr.appendChild(el("td", { "class": "num" }, v ? fmt(v.v) : "–"));
      tr.appendChild(el("td", { "class": "num" }, v ? fmt(v.u) : "–"));
      tr.appendChild(el("td", {}, q === p ? "" : t("versus_" + versus(mine, v))));
      tbody.appendChild(tr);
    });
    tb.appendChild(tbody);
    body.appendChild(wrapped(tb));
    // the series as a table (screen readers, print)
    var det = el("details"), sum = el("summary", {}, t("col_month") + " / " + t("col_value"));
    det.appendChild(sum);
    var st = el("table");
    st.appendChild(headRow([t("col_month"), t("col_kind"), t("col_value"), t("col_interval"), t("col_naive")]));
    var sb = el("tbody");
    seriesOf(p.code).forEach(function (s) {
      var tr = el("tr");
      [s.m.period, t("kind_" + s.m.kind), fmt(s.v.v), fmt(s.v.u), s.m.kind === "forecast" ? fmt(s.v.naive) : ""].forEach(function (c, i) { tr.appendChild(el("td", i > 1 ? { "class": "num" } : {}, c)); });
      sb.appendChild(tr);
    });
    st.appendChild(sb);
    det.appendChild(wrapped(st));
    body.appendChild(det);
    // outside reference: the real Leefbaarometer
    var lbmCode = p.level === "buurt" || p.level === "wijk" ? p.code : null;
    body.appendChild(el("h3", {}, t("profile_dimensions")));
    var rows = lbmCode ? D.lbm[lbmCode] : null;
    if (rows && rows.length) {
      var lt = el("table"), dims = ["lbm", "won", "fys", "vrz", "soc", "onv"];
      lt.appendChild(headRow(["", ].concat(dims.map(function (d) { return t("dim_" + d); }))));
      var lb = el("tbody");
      rows.forEach(function (r) {
        var tr = el("tr");
        tr.appendChild(el("th", { scope: "row" }, String(r[0])));
        r.slice(1).forEach(function (v, i) { tr.appendChild(el("td", { "class": "num" }, fmt(v, i === 0 ? 2 : 3))); });
        lb.appendChild(tr);
      });
      lt.appendChild(lb);
      var wrap = scrollBox(); wrap.appendChild(lt); body.appendChild(wrap);
      body.appendChild(el("p", { "class": "note" }, t("profile_dimensions_note")));
    } else {
      body.appendChild(el("p", {}, t("profile_no_lbm")));
    }
    body.appendChild(el("p", { "class": "note" }, t("profile_survey_dims")));
    // partners' released series
    body.appendChild(el("h3", {}, t("profile_partners")));
    var names = Object.keys(D.partners || {});
    if (!names.length || p.level !== "buurt") {
      body.appendChild(el("p", {}, t("profile_no_partners")));
    } else {
      names.forEach(function (partner) {
        Object.keys(D.partners[partner]).forEach(function (series) {
          var pts = D.partners[partner][series][p.code] || [];
          if (!pts.length) { return; }
          body.appendChild(el("p", {}, partner + " – " + series + ": " + pts.map(function (q) { return q[0] + " " + fmt(q[1], 1) + " ± " + fmt(D.run.z * q[2], 1); }).join("; ")));
        });
      });
    }
    body.appendChild(el("h3", {}, t("whatif_heading")));
    var what = (D.whatif || {})[p.code];
    var wm = D.months.filter(function (m) { return m.kind === "forecast" && m.horizon === D.whatif_horizon; })[0] || D.months[D.months.length - 1];
    var fv = value(p.code, wm.key);
    if (what && what.length) {
      var ul = el("ul", { id: "whatif" });
      what.forEach(function (w) {
        var word = t("feature_" + w[0]) !== "feature_" + w[0] ? t("feature_" + w[0]) : w[0].replace(/_/g, " ");
        var sign = function (x) { return (x > 0 ? "+" : "") + fmt(x, 3); };
        var iv = (w[2] !== null && w[2] !== undefined && w[3] !== null && w[3] !== undefined)
          ? t("whatif_interval", { level: Math.round(100 * D.run.level), lo: sign(w[2]), hi: sign(w[3]) }) : t("whatif_no_interval");
        ul.appendChild(el("li", {}, t("whatif_text", { feature: word, name: p.name, target: wm.period, shift: sign(w[1]), interval: iv, half: fv ? fmt(fv.u, 3) : "–" })));
      });
      body.appendChild(ul);
      body.appendChild(el("p", { "class": "note" }, t("whatif_caption")));
    } else {
      body.appendChild(el("p", {}, t("whatif_none")));
    }
    var pr = el("button", { type: "button", "class": "secondary" }, t("profile_print"));
    pr.addEventListener("click", function () { window.print(); });
    body.appendChild(pr);
    var dl = el("button", { type: "button", "class": "dl", "data-view": "profile", "aria-label": t("download_label") }, t("download"));
    dl.addEventListener("click", function () { download("profile"); });
    body.appendChild(dl);
  }

  // A few plain sentences (B1 level) for a resident: this area against the city now, and what is expected.
  function summary(p) {
    var released = D.months.filter(function (m) { return m.kind === "released"; });
    var gate = D.skill_gate && D.skill_gate.horizon;
    var fc = D.months.filter(function (m) { return m.kind === "forecast" && (!gate || m.horizon === gate); });
    var out = [];
    if (released.length) {
      var now = released[released.length - 1], v = value(p.code, now.key);
      if (p.level !== "city") {
        out.push(t("summary_" + (v ? versus(v, value(CITY.code, now.key)) : "none"), { period: now.period, name: p.name, city: CITY.name }));
      }
      if (v && fc.length) {
        var f = fc[fc.length - 1], w = value(p.code, f.key);
        if (w) {
          out.push(t("summary_forecast", { target: f.period, value: fmt(w.v), lo: fmt(w.v - w.u), hi: fmt(w.v + w.u), naive: fmt(w.naive) }));
          var lim = Math.sqrt(v.u * v.u + w.u * w.u), d = w.v - v.v;
          out.push(t(!isFinite(lim) || Math.abs(d) <= lim ? "summary_change_none" : (d > 0 ? "summary_change_up" : "summary_change_down"), { period: now.period }));
        }
      }
    }
    return out;
  }

  // ---- compare ----
  function fillSelect(sel, items, chosen) {
    sel.textContent = "";
    WHOLE.forEach(function (lvl) {
      var group = el("optgroup", { label: t("level_" + lvl) });
      items.filter(function (p) { return p.level === lvl; }).sort(byName).forEach(function (p) {
        var o = el("option", { value: p.code }, p.name);
        if (p.code === chosen) { o.selected = true; }
        group.appendChild(o);
      });
      if (group.childNodes.length) { sel.appendChild(group); }
    });
  }
  function renderCompare() {
    var a = P[S.a], b = P[S.b], body = document.getElementById("compare-body"), m = month(S.month);
    body.textContent = "";
    if (!a || !b) { return; }
    var va = value(a.code, m.key), vb = value(b.code, m.key);
    var words;
    if (va && vb && versus(va, vb) !== "same") {
      words = t("compare_result_diff", { period: monthLabel(m), a: a.name, b: b.name, d: fmt(Math.abs(va.v - vb.v)) });
    } else {
      words = t("compare_result_same", { period: monthLabel(m), a: a.name, b: b.name });
    }
    body.appendChild(el("p", { id: "compare-result" }, words));
    body.appendChild(chart([{ pts: seriesOf(a.code) }, { pts: seriesOf(b.code) }], a.name + " / " + b.name));
    var tb = el("table");
    tb.appendChild(headRow([t("col_month"), a.name, "±", b.name, "±"]));
    var tbody = el("tbody");
    D.months.forEach(function (mm) {
      var x = value(a.code, mm.key), y = value(b.code, mm.key), tr = el("tr");
      if (!x && !y) { return; }
      [mm.period + (mm.kind === "forecast" ? " (" + t("kind_forecast") + ")" : ""), x ? fmt(x.v) : "–", x ? fmt(x.u) : "–", y ? fmt(y.v) : "–", y ? fmt(y.u) : "–"].forEach(function (c, i) { tr.appendChild(el("td", i ? { "class": "num" } : {}, c)); });
      tbody.appendChild(tr);
    });
    tb.appendChild(tbody);
    var wrap = scrollBox(); wrap.appendChild(tb); body.appendChild(wrap);
  }

  // ---- changes ----
  function monthSelect(sel, chosen) {
    sel.textContent = "";
    D.months.forEach(function (m) {
      var o = el("option", { value: m.key }, monthLabel(m));
      if (m.key === chosen) { o.selected = true; }
      sel.appendChild(o);
    });
  }
  function renderChanges() {
    var body = document.getElementById("changes-body");
    body.textContent = "";
    var list = changes(S.from, S.to);
    body.setAttribute("data-listed", JSON.stringify(list.map(function (c) { return c.code; })));
    if (!list.length) { body.appendChild(el("p", { id: "no-change" }, t("changes_none"))); return; }
    var tb = el("table");
    tb.appendChild(headRow([t("col_area"), t("col_change"), t("col_interval")]));
    var tbody = el("tbody");
    list.forEach(function (c) {
      var tr = el("tr");
      tr.appendChild(el("td", {}, named(c)));
      tr.appendChild(el("td", { "class": "num" }, (c.change > 0 ? "+" : "") + fmt(c.change)));
      tr.appendChild(el("td", { "class": "num" }, fmt(c.u)));
      tbody.appendChild(tr);
    });
    tb.appendChild(tbody);
    body.appendChild(wrapped(tb));
  }

  // ---- early warning (only where the model has skill), naive ranking beside it ----
  function renderWarning() {
    var body = document.getElementById("warning-body"), w = D.warnings;
    body.textContent = "";
    if (!w || !w.available) { body.appendChild(el("p", {}, t("warning_none"))); body.setAttribute("data-shown", "false"); return; }
    body.setAttribute("data-shown", String(!!w.shown));
    var cols = el("div", { "class": "cols" });
    if (w.shown) {
      var box = el("div");
      box.appendChild(el("p", {}, t("warning_shown", { h: w.horizon, skill: fmt(w.skill), lo: fmt(w.skill_lo), hi: fmt(w.skill_hi) })));
      box.appendChild(el("h3", {}, t("warning_model")));
      var rows = w.rows.filter(function (r) { return r.model_rank !== null && r.beyond_noise; }).sort(function (x, y) { return x.model_rank - y.model_rank; });
      box.appendChild(wrapped(rankTable(rows, "model_rank", "change", true, "warning-model")));
      cols.appendChild(box);
    } else {
      body.appendChild(el("p", { id: "warning-withheld" }, t("warning_hidden", { verdict: w.verdicts[S.lang] || w.verdicts[Object.keys(w.verdicts)[0]] || "" })));
    }
    var nbox = el("div");
    nbox.appendChild(el("h3", {}, t("warning_naive")));
    var nrows = w.rows.filter(function (r) { return r.naive_rank !== null; }).sort(function (x, y) { return x.naive_rank - y.naive_rank; }).slice(0, 10);
    nbox.appendChild(wrapped(rankTable(nrows, "naive_rank", "naive_change", false, "warning-naive")));
    cols.appendChild(nbox);
    body.appendChild(cols);
  }
  function rankTable(rows, rank, change, interval, id) {
    var tb = el("table", { id: id });
    tb.appendChild(headRow([t("col_rank"), t("col_area"), t("col_change")]));
    var tbody = el("tbody");
    rows.forEach(function (r) {
      var tr = el("tr");
      tr.appendChild(el("td", { "class": "num" }, fmt(r[rank], 0)));
      tr.appendChild(el("td", {}, P[r.area_code] ? P[r.area_code].name : r.area_code));
      tr.appendChild(el("td", { "class": "num" }, fmt(r[change]) + (interval ? " (" + fmt(r.change_lo) + " … " + fmt(r.change_hi) + ")" : "")));
      tbody.appendChild(tr);
    });
    tb.appendChild(tbody);
    return tb;
  }

  // ---- uncertainty, provenance ----
  function renderUncertainty() {
    var body = document.getElementById("uncertainty-body");
    body.textContent = "";
    var hs = Object.keys(D.coverage);
    var tb = el("table", { id: "bands" });
    var head = [t("col_band"), t("col_population"), t("col_noise")];
    hs.forEach(function (h) { head.push(t("col_half", { h: h })); head.push(t("col_coverage", { level: pct(D.run.level) }) + " " + h); });
    tb.appendChild(headRow(head));
    var tbody = el("tbody");
    D.bands.forEach(function (b) {
      var tr = el("tr");
      tr.appendChild(el("td", {}, String(b.band + 1)));
      tr.appendChild(el("td", {}, fmt(b.min, 0) + " – " + fmt(b.max, 0)));
      tr.appendChild(el("td", { "class": "num" }, fmt(b.noise_sd, 3)));
      hs.forEach(function (h) {
        tr.appendChild(el("td", { "class": "num" }, fmt(b.half[h], 3)));
        var c = b.coverage[h];
        tr.appendChild(el("td", { "class": "num" }, c ? pct(c.share) + "% (n=" + c.n + ")" : "–"));
      });
      tbody.appendChild(tr);
    });
    tb.appendChild(tbody);
    var wrap = scrollBox(); wrap.appendChild(tb); body.appendChild(wrap);
    hs.forEach(function (h) {
      var c = D.coverage[h];
      if (c) { body.appendChild(el("p", {}, t("coverage_overall", { h: h, share: pct(c.overall), n: c.n, level: pct(c.level) }))); }
    });
  }
  function renderProvenance() {
    var body = document.getElementById("provenance-body"), pv = D.provenance;
    body.textContent = "";
    var dl = el("dl");
    dl.appendChild(el("dt", {}, t("prov_bundle")));
    dl.appendChild(el("dd", {}, pv.bundle_hash || t("prov_not_recorded")));
    body.appendChild(dl);
    var tb = el("table");
    tb.appendChild(headRow([t("prov_source"), t("prov_epsilon"), t("prov_releases")]));
    var tbody = el("tbody");
    pv.sources.forEach(function (s) {
      var tr = el("tr");
      tr.appendChild(el("td", {}, s.source));
      tr.appendChild(el("td", { "class": "num" }, fmt(s.epsilon) + " (δ " + s.delta + ")"));
      tr.appendChild(el("td", {}, s.releases.map(function (r) { return Object.keys(r).map(function (k) { return k + " " + r[k]; }).join(", "); }).join("; ")));
      tbody.appendChild(tr);
    });
    tb.appendChild(tbody);
    var wrap = scrollBox(); wrap.appendChild(tb); body.appendChild(wrap);
    var det = el("details"); det.appendChild(el("summary", {}, t("prov_config")));
    det.appendChild(el("pre", { "class": "scroll" }, JSON.stringify({ config: pv.config, forecast_evaluation: pv.forecast_evaluation }, null, 1)));
    body.appendChild(det);
    body.appendChild(el("p", { "class": "note" }, t("prov_sources", D.sources)));
  }

  // ---- CSV of what each view shows ----
  function csvLine(cells) {
    return cells.map(function (c) { var s = c === null || c === undefined ? "" : String(c); return /[",\n]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s; }).join(",");
  }
  function viewRows(view) {
    var m = month(S.month);
    if (view === "map") {
      return [["area_code", "name", "level", "month", "kind", "value", "half_width", S.against === "past" ? "versus_previous_release" : "versus_city", "naive"]].concat(mapRows().map(function (r) {
        return [r.p.code, r.p.name, r.p.level, m.period, m.kind, r.v ? r.v.v : "", r.v ? r.v.u : "", r.versus, r.v && m.kind === "forecast" ? r.v.naive : ""];
      }));
    }
    if (view === "profile") {
      return [["area_code", "name", "month", "kind", "horizon", "value", "half_width", "naive"]].concat(seriesOf(S.area).map(function (s) {
        return [S.area, P[S.area].name, s.m.period, s.m.kind, s.m.horizon || "", s.v.v, s.v.u, s.v.naive === null ? "" : s.v.naive];
      }));
    }
    if (view === "compare") {
      return [["month", "kind", "area_a", "value_a", "half_width_a", "area_b", "value_b", "half_width_b"]].concat(D.months.map(function (mm) {
        var x = value(S.a, mm.key), y = value(S.b, mm.key);
        return [mm.period, mm.kind, S.a, x ? x.v : "", x ? x.u : "", S.b, y ? y.v : "", y ? y.u : ""];
      }));
    }
    if (view === "warning") {
      var w = D.warnings || {};
      return [["area_code", "name", "horizon", "change", "change_lo", "change_hi", "beyond_noise", "model_rank", "naive_change", "naive_rank"]].concat((w.rows || []).map(function (r) {
        return [r.area_code, P[r.area_code] ? P[r.area_code].name : "", r.horizon, w.shown ? r.change : "", w.shown ? r.change_lo : "", w.shown ? r.change_hi : "", w.shown ? r.beyond_noise : "", w.shown && r.model_rank !== null ? r.model_rank : "", r.naive_change, r.naive_rank === null ? "" : r.naive_rank];
      }));
    }
    if (view === "bands") {
      var hs = Object.keys(D.coverage), head = ["band", "population_min", "population_max", "areas", "noise_sd"];
      hs.forEach(function (h) { head.push("half_width_h" + h, "coverage_h" + h, "n_h" + h); });
      return [head].concat(D.bands.map(function (b) {
        var row = [b.band + 1, b.min, b.max, b.areas, b.noise_sd];
        hs.forEach(function (h) { var c = b.coverage[h]; row.push(b.half[h], c ? c.share : "", c ? c.n : ""); });
        return row;
      }));
    }
    return [["area_code", "name", "from", "to", "change", "combined_half_width"]].concat(changes(S.from, S.to).map(function (c) {
      return [c.code, c.name, S.from, S.to, c.change, c.u];
    }));
  }
  function download(view) {
    var text = viewRows(view).map(csvLine).join("\n") + "\n";
    document.body.setAttribute("data-last-csv", view);
    window.twinLastCsv = text;
    var a = el("a", { href: URL.createObjectURL(new Blob([text], { type: "text/csv" })), download: D.run.name + "-" + view + ".csv" });
    document.body.appendChild(a);
    a.click();
    a.remove();
  }

  // ---- search by name and postcode ----
  function search(q) {
    var box = document.getElementById("search-results");
    box.textContent = "";
    q = q.trim();
    if (!q) { return []; }
    var found = [];
    var digits = q.replace(/\s/g, "").slice(0, 4);
    if (/^\d{4}/.test(q.replace(/\s/g, ""))) {
      (D.postcodes[digits] || []).forEach(function (c) { if (P[c]) { found.push(P[c]); } });
      if (!Object.keys(D.postcodes).length) { box.appendChild(el("li", {}, t("search_postcode_none"))); return []; }
    } else {
      var low = q.toLowerCase();
      found = D.places.filter(function (p) { return p.name.toLowerCase().indexOf(low) >= 0 || p.code.toLowerCase() === low; }).sort(byName).slice(0, 12);
    }
    if (!found.length) { box.appendChild(el("li", {}, t("search_none", { q: q }))); }
    found.forEach(function (p) {
      var li = el("li"), b = el("button", { type: "button", "data-code": p.code, "aria-label": t("open_profile", { name: p.name }) }, named(p));
      b.addEventListener("click", function () { openProfile(p.code, true); });
      li.appendChild(b);
      box.appendChild(li);
    });
    return found;
  }

  function renderAll() {
    texts();
    colourMap();
    renderProfile();
    fillSelect(document.getElementById("cmp-a"), D.places, S.a);
    fillSelect(document.getElementById("cmp-b"), D.places, S.b);
    monthSelect(document.getElementById("chg-a"), S.from);
    monthSelect(document.getElementById("chg-b"), S.to);
    document.querySelector("#sort").value = S.sort;
    renderCompare();
    renderChanges();
    renderWarning();
    renderUncertainty();
    renderProvenance();
    writeHash();
    document.body.setAttribute("data-month", month(S.month).key);
    document.body.setAttribute("data-lang", S.lang);
    document.body.setAttribute("data-ready", "1");
  }

  function init() {
    readHash();
    var released = D.months.filter(function (m) { return m.kind === "released"; });
    if (!S.from) { S.from = released.length > 1 ? released[released.length - 2].key : (D.months[0] || {}).key; }
    if (!S.to) { S.to = (D.months[LATEST] || {}).key; }
    var wijken = D.places.filter(function (p) { return p.level === "wijk"; }).sort(byName);
    if (!S.a) { S.a = wijken.length ? wijken[0].code : CITY.code; }
    if (!S.b) { S.b = CITY.code; }
    var slider = document.getElementById("month");
    slider.max = String(D.months.length - 1);
    slider.addEventListener("input", function () { S.month = Number(slider.value); document.body.setAttribute("data-month", month(S.month).key); colourMap(); renderProfile(); renderCompare(); writeHash(); });
    document.querySelectorAll("input[name=layer]").forEach(function (r) {
      r.checked = r.value === S.layer;
      r.addEventListener("change", function () { S.layer = r.value; colourMap(); writeHash(); });
    });
    document.querySelectorAll("input[name=against]").forEach(function (r) {
      r.checked = r.value === S.against;
      r.addEventListener("change", function () { S.against = r.value; colourMap(); writeHash(); });
    });
    document.getElementById("sort").addEventListener("change", function (ev) { S.sort = ev.target.value; mapTable(); });
    document.getElementById("lang-switch").addEventListener("click", function () { S.lang = LANGS[(LANGS.indexOf(S.lang) + 1) % LANGS.length]; renderAll(); });
    document.getElementById("cmp-a").addEventListener("change", function (ev) { S.a = ev.target.value; renderCompare(); writeHash(); });
    document.getElementById("cmp-b").addEventListener("change", function (ev) { S.b = ev.target.value; renderCompare(); writeHash(); });
    document.getElementById("chg-a").addEventListener("change", function (ev) { S.from = ev.target.value; renderChanges(); writeHash(); });
    document.getElementById("chg-b").addEventListener("change", function (ev) { S.to = ev.target.value; renderChanges(); writeHash(); });
    var input = document.getElementById("search");
    input.addEventListener("input", function () { search(input.value); });
    document.getElementById("search-form").addEventListener("submit", function (ev) {
      ev.preventDefault();
      var found = search(input.value);
      if (found.length === 1) { openProfile(found[0].code, true); }
    });
    document.querySelectorAll("section > .dl").forEach(function (b) { b.addEventListener("click", function () { download(b.getAttribute("data-view")); }); });
    drawMap();
    renderAll();
  }
  window.twin = { state: S, changes: changes, versus: versus, value: value, csv: function (v) { return viewRows(v).map(csvLine).join("\n"); } };
  init();
}());
