"""The twin's page as a person uses it, in headless Chromium driven over the DevTools protocol
(tests/support/cdp.py): move the month slider, open a buurt profile from the map, compare two wijken, search a
postcode and a name, switch layers and language, download what is shown, all by mouse and keyboard, at 390 px
and 1400 px; no request leaves the page and the console shows no error. axe-core (npm, `make axe`) finds no
serious or critical accessibility violation; a profile prints on one A4 page. Screenshots are kept in the
test's directory, and in $PULSE_TWIN_SCREENSHOTS when set (the README's images: docs/img)."""
import base64
import json
import os
import re
import shutil
from pathlib import Path

import pytest

from federation.cli import main
from server.twin.build import twin_data
from server.twin.uncertainty import changes
from tests.support.cdp import Browser
from tests.support.report_fixtures import SUPPRESSED
from tests.support.twin_fixtures import write_postcodes, write_twin_run

AXE = Path(os.environ.get("PULSE_TWIN_AXE", Path(__file__).resolve().parents[2] / ".cache" / "axe" / "node_modules"
                          / "axe-core" / "axe.min.js"))


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("twin-browser")
    run = write_twin_run(tmp / "run")
    assert main(["twin", "build", str(run), "--postcodes", str(write_postcodes(tmp / "pc.csv"))]) == 0
    return run / "twin" / "twin.html", twin_data(run), tmp


def keep(shot: Path, name: str) -> None:
    folder = os.environ.get("PULSE_TWIN_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(folder) / name)


def click(browser: Browser, selector: str) -> None:
    """A mouse click in the middle of the element, as a person's pointer makes it."""
    browser.eval(f"document.querySelector({selector!r}).scrollIntoView({{block: 'center'}})")
    box = browser.eval(f"(function(){{var r = document.querySelector({selector!r}).getBoundingClientRect();"
                       "return [r.left + r.width / 2, r.top + r.height / 2];})()")
    for kind in ("mousePressed", "mouseReleased"):
        browser.send("Input.dispatchMouseEvent", type=kind, x=box[0], y=box[1], button="left", clickCount=1)


def choose(browser: Browser, selector: str, value: str) -> None:
    """Pick an option of a select with the keyboard's effect (the native list cannot be opened headless)."""
    browser.eval(f"(function(){{var s = document.querySelector({selector!r}); s.focus(); s.value = {value!r};"
                 "s.dispatchEvent(new Event('change', {bubbles: true}));})()")


@pytest.mark.parametrize("width", [390, 1400])
def test_a_person_reads_the_twin(built, width, tmp_path):
    page, data, _ = built
    buurten = [p for p in data["places"] if p["level"] == "buurt"]
    with Browser(width, 1000 if width > 600 else 844) as b:
        b.open(page.as_uri())
        assert b.eval("document.body.dataset.drawn") == str(len(buurten)) == "57"
        assert json.loads(b.eval("document.body.dataset.counts"))["none"] == len(SUPPRESSED)   # hatched, named
        assert b.eval("document.documentElement.lang") == "nl"
        assert b.eval("document.documentElement.scrollWidth") <= width       # nothing overflows the phone
        assert b.eval("document.getElementById('map').getBoundingClientRect().width") >= min(width - 60, 500)
        # the month slider, by keyboard: one month back, then into the forecast
        latest = b.eval("document.body.dataset.month")
        b.eval("document.getElementById('month').focus()")
        b.key("ArrowLeft")
        released = [m["key"] for m in data["months"] if m["kind"] == "released"]
        b.wait(f"document.body.dataset.month === {released[-2]!r}")
        for _ in range(3):
            b.key("ArrowRight")
        b.wait(f"document.body.dataset.month === {data['months'][-1]['key']!r}")
        assert "voorspelling" in b.eval("document.getElementById('month-out').textContent")
        assert b.eval("document.querySelectorAll('#map-table th').length") == 6     # naive column beside
        b.eval("document.getElementById('map-h').scrollIntoView()")
        shot = b.screenshot(tmp_path / f"map-{width}.png")
        if width == 1400:
            keep(shot, "twin-map.png")
        # against its own past: at the forecast month, only the buurten whose forecast leaves the noise of the
        # latest release are coloured; they are exactly the changes the page lists between those two months
        click(b, "input[name=against][value=past]")
        b.wait("location.hash.indexOf('against=past') >= 0")
        moved = b.eval("Array.from(document.querySelectorAll('#map path')).filter(function(p){"
                       "return p.dataset.versus === 'lower' || p.dataset.versus === 'higher'}).map(function(p){"
                       "return p.dataset.code}).sort()")
        last = [m["key"] for m in data["months"] if m["kind"] == "released"][-1]
        vals = {k: {c: (v[0], float("inf") if v[1] is None else v[1]) for c, v in data["values"][k].items()
                    if v[0] is not None} for k in (last, data["months"][-1]["key"])}
        assert moved and moved == sorted(c for c in changes(vals[last], vals[data["months"][-1]["key"]]) if c.startswith("BU"))
        click(b, "input[name=against][value=city]")
        b.wait("location.hash.indexOf('against=city') >= 0")
        # the wijk layer
        click(b, "input[name=layer][value=wijk]")
        b.wait("location.hash.indexOf('layer=wijk') >= 0")
        click(b, "input[name=layer][value=stadsdeel]")
        b.wait("location.hash.indexOf('layer=stadsdeel') >= 0")
        click(b, "#warning-section > button.dl")
        b.wait("document.body.dataset.lastCsv === 'warning'")
        assert len(b.eval("window.twinLastCsv").splitlines()) == 1 + len(data["warnings"]["rows"])
        click(b, "input[name=layer][value=wijk]")
        b.wait("location.hash.indexOf('layer=wijk') >= 0")
        # a buurt profile from the map
        code = "BU09171200"
        click(b, f"#map path[data-code={code}]")
        b.wait(f"document.getElementById('profile-body').dataset.area === {code!r}")
        assert b.eval("document.querySelectorAll('#profile-body svg.chart polygon.band').length") == 1
        assert "Leefbaarometer" in b.eval("document.getElementById('profile-body').textContent")
        plain = b.eval("Array.from(document.querySelectorAll('#profile-body p.summary')).map(function(p){return p.textContent})")
        whatif = b.eval("Array.from(document.querySelectorAll('#whatif li')).map(function(p){return p.textContent})")
        assert whatif and all("mediaan van de stad" in w for w in whatif)
        assert "geen effect van beleid" in b.eval("document.getElementById('profile-body').textContent")
        assert len(plain) == 3 and "Hoensbroek-Centrum" in plain[0] and "verwacht het model" in plain[1]
        b.eval("document.getElementById('profile').scrollIntoView()")
        shot = b.screenshot(tmp_path / f"profile-{width}.png")
        if width == 1400:
            keep(shot, "twin-profile.png")
        # compare two wijken
        choose(b, "#cmp-a", "WK091712")
        choose(b, "#cmp-b", "WK091733")
        words = b.eval("document.getElementById('compare-result').textContent")
        assert "Hoensbroek-De Dem" in words and "Heerlen-Centrum" in words
        # search a postcode, then a name
        b.eval("document.getElementById('search').focus()")
        b.type("6431")
        b.wait("document.querySelectorAll('#search-results button').length === 2")
        click(b, "#search-results button[data-code=BU09171201]")
        b.wait("document.getElementById('profile-body').dataset.area === 'BU09171201'")
        b.eval("document.getElementById('search').value = ''")
        b.eval("document.getElementById('search').focus()")
        b.type("Hoensbroek")
        b.wait("document.querySelectorAll('#search-results button').length >= 1")
        # what changed: exactly the changes beyond the noise, as computed from the page's data
        frm, to = released[-1], data["months"][-1]["key"]
        choose(b, "#chg-a", frm)
        choose(b, "#chg-b", to)
        listed = b.eval("JSON.parse(document.getElementById('changes-body').dataset.listed)")
        values = {k: {c: (v[0], float("inf") if v[1] is None else v[1]) for c, v in data["values"][k].items()
                      if v[0] is not None} for k in (frm, to)}
        local = {p["code"] for p in data["places"] if p["level"] in ("buurt", "wijk")}
        expected = {c for c in changes(values[frm], values[to]) if c in local}
        assert set(listed) == expected and expected
        choose(b, "#chg-b", released[-2])
        choose(b, "#chg-a", released[-3])
        # the early warning list is shown (this run's model has skill), the naive ranking beside it
        assert b.eval("document.getElementById('warning-body').dataset.shown") == "true"
        assert b.eval("!!document.getElementById('warning-model') && !!document.getElementById('warning-naive')")
        # download what the map shows
        click(b, "#map-section > button.dl")
        b.wait("document.body.dataset.lastCsv === 'map'")
        csv = b.eval("window.twinLastCsv").splitlines()
        assert csv[0].startswith("area_code,name,level,month") and len(csv) == 1 + len(
            [p for p in data["places"] if p["level"] == "wijk"])
        # English and back
        click(b, "#lang-switch")
        b.wait("document.documentElement.lang === 'en'")
        assert b.eval("document.getElementById('title').textContent").startswith("Social Digital Twin")
        assert b.eval("Array.from(document.querySelectorAll('[data-t]')).every(function(e){return e.textContent.trim()})")
        assert "Compare" in b.eval("document.getElementById('compare-h').textContent")
        click(b, "#lang-switch")
        b.wait("document.documentElement.lang === 'nl'")
        assert b.eval("document.documentElement.scrollWidth") <= width      # with a profile and every list open
        b.eval("document.querySelectorAll('details').forEach(function(d){d.open = true})")
        assert b.eval("document.documentElement.scrollWidth") <= width
        assert b.external_requests() == [] and b.errors == []


def test_keyboard_only(built):
    page, _, _ = built
    with Browser(1400, 900) as b:
        b.open(page.as_uri())
        seen = []
        for _ in range(80):
            b.key("Tab")
            seen.append(b.eval("document.activeElement.id || document.activeElement.tagName"))
            if seen[-1] == "lang-switch":
                b.key("Enter")
                b.wait("document.documentElement.lang === 'en'")
            if seen[-1] == "month":
                b.key("ArrowLeft")
            if seen[-1] == "path":
                break
        assert "lang-switch" in seen and "search" in seen and "month" in seen and seen[-1] == "path"
        code = b.eval("document.activeElement.getAttribute('data-code')")
        label = b.eval("document.activeElement.getAttribute('aria-label')")
        assert label and ("the city" in label or "No released value" in label)
        b.key("Enter")
        b.wait(f"document.getElementById('profile-body').dataset.area === {code!r}")
        assert b.eval("document.activeElement.id") == "profile"
        assert b.errors == []


def test_the_early_warning_list_is_hidden_in_the_page_without_skill(tmp_path):
    run = write_twin_run(tmp_path / "run", skill=(-0.1, -0.3, 0.1))
    assert main(["twin", "build", str(run)]) == 0
    with Browser(1400, 900) as b:
        b.open((run / "twin" / "twin.html").as_uri())
        assert b.eval("document.getElementById('warning-body').dataset.shown") == "false"
        assert b.eval("document.getElementById('warning-model')") is None
        assert b.eval("!!document.getElementById('warning-withheld') && !!document.getElementById('warning-naive')")
        assert b.errors == []


def test_no_serious_or_critical_accessibility_violation(built):
    if not AXE.is_file():
        pytest.fail(f"axe-core is missing at {AXE}: `make axe` installs it from npm")
    page, _, _ = built
    for width in (390, 1400):
        with Browser(width, 900) as b:
            b.open(page.as_uri() + "#area=BU09171200")
            b.eval(AXE.read_text(encoding="utf-8"))
            found = b.eval("axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21aa']}})"
                           ".then(function(r){return r.violations.map(function(v){return [v.id, v.impact, "
                           "v.nodes.length, v.nodes[0].target.join(' ')];});})")
            bad = [v for v in found if v[1] in ("serious", "critical")]
            assert bad == [], bad


def test_control_axe_sees_a_violation(tmp_path):
    if not AXE.is_file():
        pytest.fail(f"axe-core is missing at {AXE}: `make axe` installs it from npm")
    bad = tmp_path / "bad.html"
    bad.write_text('<!DOCTYPE html><html><body><p style="color:#bbb;background:#fff">faint</p>'
                   '<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw="></body></html>')
    with Browser(800, 600) as b:
        b.open(bad.as_uri(), ready="document.readyState === 'complete'")
        b.eval(AXE.read_text(encoding="utf-8"))
        found = b.eval("axe.run(document).then(function(r){return r.violations.map(function(v){return v.impact;});})")
        assert "serious" in found or "critical" in found


def test_a_profile_prints_on_one_a4_page(built, tmp_path):
    page, _, _ = built
    with Browser(1400, 900) as b:
        b.open(page.as_uri() + "#area=BU09171200")
        pdf = base64.b64decode(b.send("Page.printToPDF", paperWidth=8.27, paperHeight=11.69, preferCSSPageSize=True)["data"])
        (tmp_path / "profile.pdf").write_bytes(pdf)
        pages = len(re.findall(rb"/Type\s*/Page(?!s)", pdf))
        assert pages == 1, pages
        b.open(page.as_uri())
        whole = base64.b64decode(b.send("Page.printToPDF", paperWidth=8.27, paperHeight=11.69)["data"])
        assert len(re.findall(rb"/Type\s*/Page(?!s)", whole)) >= 1
