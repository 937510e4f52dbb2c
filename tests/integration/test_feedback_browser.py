"""The feedback pages in headless Chromium at phone (390 px) and desktop (1400 px) width: the page makes no
request of its own (the NetLog holds none initiated by the page), logs nothing to the console, is Dutch by
default, and its language link opens the English page. A control page with an external image and a console
error shows that both checks can fail."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import numpy as np
import pandas as pd
import yaml

from federation.cli import main
from server.feedback.pages import public_areas

WIDTHS = (390, 1400)


@pytest.fixture(scope="module")
def pages(tmp_path_factory) -> Path:
    """Pages of a run that kept a community release for every buurt and 12 months (values as released: a rate
    with its noise sd), without a model (the pages then say the block's weight is not known)."""
    run_dir = tmp_path_factory.mktemp("run")
    block = yaml.safe_load((Path(__file__).parents[2] / "configs" / "block" / "community.yaml").read_text())
    rng = np.random.default_rng(0)   # test data only, not a privacy mechanism
    rows = [{"area_code": a, "period": f"2021-{m:02d}", "series": s, "value": float(rng.gamma(2.0, 1.0)),
             "noise_sd": 0.3, "release": "run/community/community"}
            for a in public_areas() for m in range(1, 13) for s in block["features"]]
    (run_dir / "releases").mkdir()
    pd.DataFrame(rows).to_csv(run_dir / "releases" / "community.csv", index=False)
    assert main(["feedback", str(run_dir)]) == 0
    return run_dir / "feedback"
BROWSER_OWN = "not an origin"   # NetLog initiator of Chromium's own background requests


def open_page(url: str, width: int, work: Path) -> tuple[str, list[str], list[str]]:
    """(DOM after load, URLs the page requested, console lines) of `url` in headless Chromium."""
    chromium = shutil.which("chromium")
    assert chromium, "headless Chromium is missing (Debian package 'chromium')"
    net = work / f"net-{width}.json"
    done = subprocess.run(
        [chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync",
         "--disable-background-networking", "--disable-component-update", f"--user-data-dir={work / 'profile'}",
         f"--window-size={width},900", "--enable-logging=stderr", "--v=0", f"--log-net-log={net}",
         "--host-resolver-rules=MAP * ~NOTFOUND", "--dump-dom", url],
        capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    events = json.loads(net.read_text())["events"]
    requested = sorted({e["params"]["url"] for e in events
                        if "initiator" in e.get("params", {}) and e["params"]["initiator"] != BROWSER_OWN})
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    return done.stdout, requested, console


def test_control_an_external_image_and_a_console_error_are_seen(tmp_path):
    page = tmp_path / "control.html"
    page.write_text('<!doctype html><html lang="nl"><body><img src="https://example.org/x.png">'
                    '<script>console.error("planted")</script></body></html>')
    _, requested, console = open_page(page.as_uri(), 390, tmp_path)
    assert requested == ["https://example.org/x.png"] and any("planted" in c for c in console)


@pytest.mark.parametrize("width", WIDTHS)
def test_pages_make_no_request_log_nothing_and_switch_language(pages, tmp_path, width):
    index = pages / "index.html"
    dom, requested, console = open_page(index.as_uri(), width, tmp_path)
    assert requested == [] and console == []
    assert '<html lang="nl">' in dom and "Wat bewoners meldden" in dom
    buurt = re.search(r'<a href="(BU\d+\.html)">', dom).group(1)
    dom, requested, console = open_page((pages / buurt).as_uri(), width, tmp_path)
    assert requested == [] and console == [] and '<html lang="nl">' in dom and "data-source=\"release:" in dom
    switch = re.search(r'<a href="([^"]+)" hreflang="en"', dom).group(1)
    dom, requested, console = open_page((pages / switch).resolve().as_uri(), width, tmp_path)
    assert requested == [] and console == []
    assert '<html lang="en">' in dom and "what residents reported" in dom
