"""The report as a person sees it: headless Chromium (Debian package `chromium`, installed by `make test`)
opens the page, every area of the map is drawn, no request leaves the page, the console shows no error.

Requests are read from Chromium's network log (only those the page itself started: the browser's own
background traffic has no page as its site); console messages from its log on stderr. A control page
that fetches and logs an error shows that both checks see what they look for.
"""
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from federation.cli import main
from tests.support.report_fixtures import SUPPRESSED, write_run

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--enable-logging=stderr", "--v=0", "--hide-scrollbars",
         "--virtual-time-budget=3000"]


def chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        pytest.fail("headless Chromium is missing: `make test` installs the Debian package 'chromium' (as root)")
    return path


def open_page(page: Path, tmp: Path, *action: str) -> tuple[str, list[str], list[str]]:
    """What Chromium made of the page: its output, the URLs the page requested, its console lines."""
    net = tmp / f"net-{len(list(tmp.glob('net-*')))}.json"
    done = subprocess.run([chromium(), *FLAGS, f"--log-net-log={net}", *action, page.as_uri()],
                          capture_output=True, text=True, timeout=120)
    log = json.loads(net.read_text())
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    requested = [e["params"]["url"] for e in log["events"] if e["type"] == start
                 and "file://" in str(e["params"].get("site_for_cookies", ""))]
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    return done.stdout, [u for u in requested if not u.startswith(("file:", "data:"))], console


def test_control_page_shows_the_checks_can_fail(tmp_path):
    bad = tmp_path / "bad.html"
    bad.write_text('<!DOCTYPE html><html><body><script>console.error("broken");'
                   'fetch("http://example.invalid/x").catch(function(){});</script></body></html>')
    _, requested, console = open_page(bad, tmp_path, "--dump-dom")
    assert requested == ["http://example.invalid/x"]
    assert any("broken" in line for line in console)


def test_report_page_draws_every_buurt_offline_without_console_errors(tmp_path):
    run = write_run(tmp_path / "run")
    assert main(["report", str(run)]) == 0
    page = run / "report" / "report.html"
    dom, requested, console = open_page(page, tmp_path, "--dump-dom")
    assert requested == [] and console == []
    body = dom.split("<body", 1)[1].split(">", 1)[0]
    assert 'data-areas="57"' in body and 'data-drawn="57"' in body and "data-errors" not in body
    assert dom.count('data-status="suppressed"') == len(SUPPRESSED)
    shot = tmp_path / "shot.png"
    _, requested, console = open_page(page, tmp_path, f"--screenshot={shot}", "--window-size=1200,1100")
    assert requested == [] and console == []
    pixels = imread(shot)[:, :, :3]
    colours = {tuple(p) for p in np.round(pixels.reshape(-1, 3) * 255).astype(int)}
    assert pixels.shape[:2] == (1100, 1200) and len(colours) > 50   # the map's colours, not a blank page
