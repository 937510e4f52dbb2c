"""`pulse-twin twin serve`: TLS on, refused without login, served with it, nothing outside the whitelisted
artefacts of RUNS_DIR reachable (raw data, node directories, traversal, links), every request logged."""
import base64
import http.client
import json
import os
import ssl
import threading
import time

import pytest

from federation.cli import main
from federation.errors import ConfigError
from federation.pki import create_ca, create_superlink_cert
from server.twin.serve import add_user, check_password, make_server, read_users

PASSWORD = "correct horse battery"


@pytest.fixture
def served(tmp_path):
    runs = tmp_path / "runs"
    (runs / "r1" / "twin").mkdir(parents=True)
    (runs / "r1" / "twin" / "twin.html").write_text("<!DOCTYPE html><title>twin</title>")
    (runs / "r1" / "config.json").write_text("{}")
    (tmp_path / "data" / "police").mkdir(parents=True)
    (tmp_path / "data" / "police" / "records.csv").write_text("raw")
    os.symlink(tmp_path / "data" / "police", runs / "r1" / "forecast")      # a link out of RUNS_DIR
    ca = create_ca(tmp_path / "pki")
    cert, key = create_superlink_cert(ca, tmp_path / "pki")
    users = tmp_path / "users.json"
    add_user(users, "ambtenaar", PASSWORD)
    log = tmp_path / "access.log"
    server = make_server(runs, users, cert, key, log, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    context = ssl.create_default_context(cafile=str(ca.cert_path))
    yield server.server_address[1], context, log
    server.shutdown()
    server.server_close()
    thread.join(10)


def get(port, context, path, user=None, password=PASSWORD):
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=20)
    headers = {}
    if user:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    conn.request("GET", path, headers=headers)
    response = conn.getresponse()
    body = response.read()
    conn.close()
    return response.status, body, response


def log_lines_once(log, needle: str, wait: float = 10.0) -> list[str]:
    """The access log once `needle` is in it: the server writes a refused handshake's line in the connection's
    own thread, which may run after the client has already seen the connection dropped."""
    deadline = time.monotonic() + wait
    while True:
        lines = log.read_text().splitlines() if log.exists() else []
        if any(needle in line for line in lines) or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


def test_refused_without_login_and_with_a_wrong_password(served):
    port, context, _ = served
    status, _, response = get(port, context, "/r1/twin/twin.html")
    assert status == 401 and "Basic" in response.getheader("WWW-Authenticate")
    assert get(port, context, "/r1/twin/twin.html", "ambtenaar", "wrong password!!")[0] == 401
    assert get(port, context, "/r1/twin/twin.html", "nobody")[0] == 401


def test_served_with_login_over_tls_only(served):
    port, context, log = served
    status, body, response = get(port, context, "/r1/twin/twin.html", "ambtenaar")
    assert status == 200 and b"<title>twin</title>" in body
    assert "default-src 'none'" in response.getheader("Content-Security-Policy")
    index = get(port, context, "/", "ambtenaar")[1].decode()
    assert "/r1/twin/twin.html" in index and "config.json" not in index
    plain = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    with pytest.raises((http.client.HTTPException, ConnectionError, OSError)):
        plain.request("GET", "/r1/twin/twin.html")
        plain.getresponse()
    lines = log_lines_once(log, "TLS '(handshake refused)'")
    assert any(" ambtenaar GET '/r1/twin/twin.html' 200" in line for line in lines)
    assert any("TLS '(handshake refused)'" in line for line in lines)


def test_a_silent_client_does_not_hold_up_others(served):
    import socket

    port, context, _ = served
    with socket.create_connection(("127.0.0.1", port)):         # connects, never speaks TLS
        assert get(port, context, "/r1/twin/twin.html", "ambtenaar")[0] == 200


@pytest.mark.parametrize("path", ["/r1/config.json", "/r1/../../data/police/records.csv", "/r1/%2e%2e/%2e%2e/etc/passwd",
                                  "/../users.json", "/r1/forecast/predictions.csv", "/r1/twin/", "/r1", "//etc/passwd"])
def test_nothing_outside_the_whitelisted_artefacts_is_served(served, path):
    port, context, log = served
    status, body, _ = get(port, context, path, "ambtenaar")
    assert status == 404 and b"raw" not in body
    assert log.read_text().splitlines()[-1].endswith(" 404")


def test_users_are_stored_as_salted_scrypt_hashes(tmp_path):
    users = tmp_path / "users.json"
    add_user(users, "a", PASSWORD)
    add_user(users, "b", PASSWORD)
    stored = read_users(users)
    assert PASSWORD not in users.read_text() and stored["a"]["salt"] != stored["b"]["salt"]
    assert stored["a"]["hash"] != stored["b"]["hash"] and oct(users.stat().st_mode & 0o777) == "0o600"
    assert check_password(stored, "a", PASSWORD) and not check_password(stored, "a", PASSWORD + "x")
    with pytest.raises(ConfigError, match="at least 12"):
        add_user(users, "c", "short")


def test_cli_user_add_and_serve_refuses_without_tls_files(tmp_path, monkeypatch, capsys):
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert main(["twin", "user", "add", str(tmp_path / "u.json"), "wijkteam", "--password-stdin"]) == 0
    assert "wijkteam" in json.loads((tmp_path / "u.json").read_text())["users"]
    (tmp_path / "runs").mkdir()
    assert main(["twin", "serve", str(tmp_path / "runs"), "--users", str(tmp_path / "u.json"),
                 "--cert", str(tmp_path / "none.pem"), "--key", str(tmp_path / "none.key")]) == 2
    assert "TLS file not found" in capsys.readouterr().err
