"""`pulse-twin twin serve RUNS_DIR`: the twin pages of a lab's runs for city staff, read-only, over HTTPS,
behind a login.

- Login: HTTP Basic over TLS against a users file of salted scrypt hashes (`pulse-twin twin user add`);
  no anonymous access, every refusal the same 401.
- TLS: the lab's certificate and key (e.g. from `pulse-twin pki`); the server does not start without them.
- Read-only, whitelisted: only `/<run>/<file>` for the files of FILES (the twin page, the report, the forecast
  artefacts) of a run directly under RUNS_DIR, resolved without leaving it; everything else is 404.
  No listing of node directories, raw data or ledgers is possible through it.
- Access log: one line per request (UTC time, client, user, method, path, status) appended to a file.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import secrets
import ssl
import threading
from datetime import datetime, timezone
from html import escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

from federation.errors import ConfigError

FILES = {"twin/twin.html": "text/html; charset=utf-8", "report/report.html": "text/html; charset=utf-8",
         "forecast/skill.json": "application/json", "forecast/predictions.csv": "text/csv; charset=utf-8",
         "forecast/warnings.csv": "text/csv; charset=utf-8", "predictions.csv": "text/csv; charset=utf-8"}
RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,199}$")
USER_NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
SCRYPT = {"n": 2 ** 14, "r": 8, "p": 1}
HEADERS = {"Content-Security-Policy": "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                                      "img-src data: blob:", "X-Content-Type-Options": "nosniff",
           "Cache-Control": "no-store", "Referrer-Policy": "no-referrer",
           "Strict-Transport-Security": "max-age=31536000"}


def _hash(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=64 * 1024 * 1024, dklen=32)


def read_users(path: Path) -> dict[str, dict]:
    """The users file: {"users": {name: {"salt", "hash", "n", "r", "p"}}}; {} when it does not exist yet."""
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        users = data["users"]
        assert isinstance(users, dict)
    except (ValueError, KeyError, TypeError, AssertionError):
        raise ConfigError(f"{path}: not a users file of `pulse-twin twin user add`") from None
    return users


def add_user(path: Path, name: str, password: str) -> bool:
    """Store `name` with a salted scrypt hash of `password` (file mode 0600); True when the user is new."""
    if not USER_NAME.match(name):
        raise ConfigError(f"user name {name!r}: letters, digits and _.@- only, at most 64")
    if len(password) < 12:
        raise ConfigError("password: at least 12 characters")
    users = read_users(path)
    salt = secrets.token_bytes(16)
    users[name] = {"salt": salt.hex(), "hash": _hash(password, salt, **SCRYPT).hex(), **SCRYPT}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump({"users": users}, handle, indent=1)
    os.replace(tmp, path)
    return True


def check_password(users: dict[str, dict], name: str, password: str) -> bool:
    """True only for a known user with the right password (a dummy hash for unknown users: same timing)."""
    entry = users.get(name)
    salt = bytes.fromhex(entry["salt"]) if entry else b"\0" * 16
    params = {k: int(entry[k]) for k in ("n", "r", "p")} if entry else SCRYPT
    got = _hash(password, salt, **params)
    return bool(entry) and hmac.compare_digest(got, bytes.fromhex(entry["hash"]))


def resolve(runs_dir: Path, url_path: str) -> tuple[Path, str] | None:
    """The file a request may read, with its content type, or None: `/<run>/<whitelisted file>` only, inside
    RUNS_DIR after resolving links."""
    parts = unquote(url_path).split("/")
    if len(parts) < 3 or parts[0] != "" or not RUN_NAME.match(parts[1]) or parts[1] in (".", ".."):
        return None
    rel = "/".join(parts[2:])
    if rel not in FILES:
        return None
    root = runs_dir.resolve()
    target = (root / parts[1] / rel).resolve()
    if root not in target.parents or not target.is_file():
        return None
    return target, FILES[rel]


class _Handler(BaseHTTPRequestHandler):
    server_version = "pulse-twin"
    sys_version = ""

    def do_GET(self) -> None:   # noqa: N802 (http.server's name)
        user = self._user()
        if user is None:
            self._send(401, b"login required\n", "text/plain; charset=utf-8",
                       {"WWW-Authenticate": 'Basic realm="PULSE-TWIN", charset="UTF-8"'}, user="-")
            return
        path = urlsplit(self.path).path
        if path == "/":
            self._send(200, self._index().encode("utf-8"), "text/html; charset=utf-8", user=user)
            return
        found = resolve(self.server.runs_dir, path)
        if found is None:
            self._send(404, b"not found\n", "text/plain; charset=utf-8", user=user)
            return
        self._send(200, found[0].read_bytes(), found[1], user=user)

    def do_HEAD(self) -> None:   # noqa: N802
        self._send(405, b"", "text/plain", user="-")

    do_POST = do_PUT = do_DELETE = do_HEAD

    def _user(self) -> str | None:
        header = self.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return None
        try:
            name, _, password = base64.b64decode(header[6:], validate=True).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            return None
        return name if check_password(self.server.users, name, password) else None

    def _index(self) -> str:
        root = self.server.runs_dir
        rows = []
        for run in sorted(p for p in root.iterdir() if p.is_dir() and RUN_NAME.match(p.name)):
            links = [f'<a href="/{escape(run.name)}/{f}">{escape(f)}</a>' for f in FILES if (run / f).is_file()]
            if links:
                rows.append(f"<li>{escape(run.name)}: {' · '.join(links)}</li>")
        return ('<!DOCTYPE html><html lang="nl"><head><meta charset="utf-8"><meta name="viewport" '
                'content="width=device-width, initial-scale=1"><title>PULSE-TWIN</title></head><body>'
                "<h1>PULSE-TWIN</h1><ul>" + "".join(rows) + "</ul></body></html>")

    def _send(self, status: int, body: bytes, kind: str, extra: dict | None = None, user: str = "-") -> None:
        self.server.log_access(self.client_address[0], user, self.command, self.path, status)
        self.send_response(status)
        for k, v in {**HEADERS, **(extra or {}), "Content-Type": kind, "Content-Length": str(len(body))}.items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:   # the access log replaces stderr chatter
        return


class TwinServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], runs_dir: Path, users: dict, access_log: Path,
                 context: ssl.SSLContext) -> None:
        super().__init__(address, _Handler)
        self.runs_dir, self.users, self.access_log = Path(runs_dir), users, Path(access_log)
        self._lock = threading.Lock()
        self.context = context

    def finish_request(self, request, client_address) -> None:
        """The TLS handshake in the connection's own thread (with a timeout), so that a client that connects
        and stays silent holds up no one else; a client without TLS is dropped."""
        request.settimeout(30)
        try:
            tls = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            self.log_access(client_address[0], "-", "TLS", "(handshake refused)", 0)
            return
        try:
            super().finish_request(tls, client_address)
        finally:
            tls.close()

    def log_access(self, client: str, user: str, method: str, path: str, status: int) -> None:
        line = f"{datetime.now(timezone.utc).isoformat(timespec='seconds')} {client} {user} {method} {path!r} {status}\n"
        with self._lock, open(self.access_log, "a", encoding="utf-8") as handle:
            handle.write(line)


def make_server(runs_dir: Path, users_file: Path, cert: Path, key: Path, access_log: Path,
                host: str = "127.0.0.1", port: int = 8443) -> TwinServer:
    """The server, ready to `serve_forever()`; every bad input is one ConfigError naming the file."""
    if not Path(runs_dir).is_dir():
        raise ConfigError(f"{runs_dir}: no such runs directory")
    users = read_users(Path(users_file))
    if not users:
        raise ConfigError(f"{users_file}: no users (add one with `pulse-twin twin user add {users_file} NAME`)")
    for path in (cert, key):
        if not Path(path).is_file():
            raise ConfigError(f"{path}: TLS file not found (the lab's certificate and key; `pulse-twin pki` makes them)")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(str(cert), str(key))
    except (ssl.SSLError, OSError) as err:
        raise ConfigError(f"{cert}, {key}: not a usable certificate and key ({err})") from None
    return TwinServer((host, port), runs_dir, users, access_log, context)
