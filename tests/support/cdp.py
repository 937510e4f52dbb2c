"""A small Chrome DevTools Protocol client for browser tests: headless Chromium (Debian package `chromium`)
driven over its debugging websocket, so a test can act as a person (click, type, press keys, resize) and
see what the page requested and logged.

Chromium is started with a private profile and a free port, and stopped by its process id when the test
ends, also on failure. Requests are those the page made (Network.requestWillBeSent); console errors and
uncaught exceptions are collected (Runtime.consoleAPICalled, Runtime.exceptionThrown, Log.entryAdded).
"""
from __future__ import annotations

import base64
import itertools
import json
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from websockets.sync.client import connect

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-extensions", "--hide-scrollbars",
         "--remote-debugging-port=0", "--remote-allow-origins=*"]


class Browser:
    """One headless Chromium with one page; use as a context manager."""

    def __init__(self, width: int = 1400, height: int = 1000, extra: tuple[str, ...] = ()) -> None:
        path = shutil.which("chromium")
        if path is None:
            raise RuntimeError("headless Chromium is missing: `make browser` installs the Debian package 'chromium'")
        self.profile = tempfile.mkdtemp(prefix="pulse-twin-cdp-")
        self.proc = subprocess.Popen([path, *FLAGS, f"--user-data-dir={self.profile}", *extra, "about:blank"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        url = self._devtools_url()
        self.ids = itertools.count(1)
        self.ws = connect(url, max_size=64 * 1024 * 1024, open_timeout=30).__enter__()
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        self.requests: list[str] = []
        self.errors: list[str] = []
        for domain in ("Page", "Runtime", "Network", "Log"):
            self.send(f"{domain}.enable")
        self.resize(width, height)

    def _devtools_url(self) -> str:
        deadline = time.monotonic() + 60
        assert self.proc.stderr is not None
        while time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            found = re.search(r"DevTools listening on (ws://\S+)", line)
            if found:
                return found.group(1)
            if not line and self.proc.poll() is not None:
                break
        self.close()
        raise RuntimeError("Chromium did not open its debugging port")

    def call(self, method: str, session: str | None = None, **params: Any) -> dict:
        """Send one command and wait for its answer, collecting events on the way."""
        mid = next(self.ids)
        message = {"id": mid, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        self.ws.send(json.dumps(message))
        while True:
            msg = json.loads(self.ws.recv(timeout=60))
            if msg.get("id") == mid:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            self._event(msg)

    def send(self, method: str, **params: Any) -> dict:
        return self.call(method, self.session, **params)

    def _event(self, msg: dict) -> None:
        method, params = msg.get("method"), msg.get("params", {})
        if method == "Network.requestWillBeSent":
            self.requests.append(params["request"]["url"])
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert", "warning"):
            self.errors.append(" ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", [])))
        elif method == "Runtime.exceptionThrown":
            self.errors.append(str(params["exceptionDetails"].get("exception", {}).get("description")
                                   or params["exceptionDetails"].get("text")))
        elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
            self.errors.append(params["entry"].get("text", ""))

    def external_requests(self) -> list[str]:
        return [u for u in self.requests if not u.startswith(("file:", "data:", "blob:", "about:"))]

    def resize(self, width: int, height: int) -> None:
        self.send("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1,
                  mobile=width < 600)

    def open(self, url: str, ready: str = "document.body && document.body.dataset.ready === '1'") -> None:
        self.send("Page.navigate", url=url)
        self.wait(ready)

    def eval(self, expression: str) -> Any:
        out = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True,
                        userGesture=True)
        if "exceptionDetails" in out:
            raise RuntimeError(f"{expression}: {out['exceptionDetails'].get('exception', {}).get('description')}")
        return out.get("result", {}).get("value")

    def wait(self, condition: str, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self.eval(f"!!({condition})"):
                    return
            except RuntimeError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"the page never reached: {condition}")

    def key(self, key: str, code: str | None = None, text: str | None = None, modifiers: int = 0) -> None:
        """Press and release one key, as a keyboard does (Tab, Enter, ArrowRight, a letter ...)."""
        codes = {"Tab": 9, "Enter": 13, "ArrowRight": 39, "ArrowLeft": 37, "ArrowDown": 40, "ArrowUp": 38,
                 " ": 32, "Escape": 27, "End": 35, "Home": 36}
        vk = codes.get(key, ord(key.upper()) if len(key) == 1 else 0)
        base = {"key": key, "code": code or key, "windowsVirtualKeyCode": vk, "nativeVirtualKeyCode": vk,
                "modifiers": modifiers}
        text = text if text is not None else {"Enter": "\r", " ": " "}.get(key)
        self.send("Input.dispatchKeyEvent", type="keyDown", **base, **({"text": text} if text else {}))
        self.send("Input.dispatchKeyEvent", type="keyUp", **base)

    def type(self, text: str) -> None:
        self.send("Input.insertText", text=text)

    def screenshot(self, path: Path, full: bool = False) -> Path:
        params: dict[str, Any] = {"format": "png"}
        if full:
            params["captureBeyondViewport"] = True
        data = self.send("Page.captureScreenshot", **params)["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        try:
            if getattr(self, "ws", None) is not None:
                self.ws.close()
        finally:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> "Browser":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
