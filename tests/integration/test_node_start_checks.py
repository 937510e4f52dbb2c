"""`pulse-twin node start` checks the node's TLS and authentication files before anything starts, and
`--max-wait` bounds the wait whatever the SuperNode does: a SuperNode that hangs without connecting (as
Flower's does on a damaged CA file: it logs an SSLError in its connection thread and never exits) is
stopped, and the message quotes the telling line of its log (not its last, clean-shutdown line)."""
from __future__ import annotations

import datetime as dt
import sys
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

import clients.service as service
from clients.service import NodeStart, NodeStopped, informative_line, run_node
from federation.cli import main
from federation.pki import create_ca, create_node_keypair
from federation.processes import alive
from tests.support.federation_fixtures import write_policy

# What Flower 1.41's SuperNode wrote when the SuperLink was unreachable: its last line explains nothing.
REFUSED_LOG = """\
\x1b[92mINFO \x1b[0m:      Starting Flower SuperNode
INFO:     Uvicorn running on http://127.0.0.1:35927 (Press CTRL+C to quit)
\x1b[93mWARNING \x1b[0m:   Connection attempt failed, retrying in 0.31 seconds
\x1b[93mWARNING \x1b[0m:   Giving up reconnection after 10.00 seconds and 6 tries.
\x1b[91mERROR \x1b[0m:     Exit Code: 305
Failed to initialize the connection to the SuperLink.
[Errno 111] Connection refused
The SuperNode could not establish a connection to the SuperLink.

For more information, visit: <https://flower.ai/docs/framework/1.41/en/ref-exit-codes/305.html>
INFO:     Shutting down
INFO:     Application shutdown complete.
INFO:     Finished server process [22326]
"""
# What it wrote on a damaged CA file (and then hung until SIGINT).
BAD_CA_LOG = """\
INFO:     Application startup complete.
Traceback (most recent call last):
  File "/venv/lib/python3.11/site-packages/flwr/supercore/protobuf/client.py", line 149, in from_server_address
    verify.load_verify_locations(cadata=root_certificates.decode("ascii"))
ssl.SSLError: no start line: cadata does not contain a certificate (_ssl.c:4020)
\x1b[92mINFO \x1b[0m:      SuperNode terminated gracefully.
INFO:     Finished server process [25698]
Exception ignored in: <module 'threading' from '/usr/lib/python3.11/threading.py'>
Traceback (most recent call last):
SystemExit: 0
"""


@pytest.fixture
def node(tmp_path: Path) -> Path:
    node_dir = tmp_path / "police"
    node_dir.mkdir()
    write_policy(node_dir, "police")
    create_node_keypair(node_dir)
    ca = create_ca(tmp_path / "pki")
    (node_dir / "keys" / "federation-ca.crt").write_bytes(ca.cert_path.read_bytes())
    return node_dir


def _start(node_dir: Path, capsys) -> tuple[int, str, float]:
    began = time.monotonic()
    code = main(["node", "start", "--node-dir", str(node_dir), "--superlink", "127.0.0.1:1", "--max-wait", "10"])
    return code, capsys.readouterr().err, time.monotonic() - began


@pytest.mark.parametrize("content, says", [
    (b"garbage\n", "not a PEM certificate"),
    (b"-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n", "a damaged PEM certificate"),
])
def test_a_damaged_ca_file_is_named_before_anything_starts(node: Path, capsys, content: bytes, says: str):
    ca = node / "keys" / "federation-ca.crt"
    ca.write_bytes(content)
    code, err, took = _start(node, capsys)
    assert code == 2 and took < 5
    assert f"{ca}: {says}" in err and "CA certificate" in err
    assert "starting its SuperNode" not in err and "Traceback" not in err
    assert not (node / "state" / "logs" / "supernode.log").exists()


def test_a_missing_ca_file_is_named_before_the_node_says_it_starts(node: Path, capsys):
    ca = node / "keys" / "federation-ca.crt"
    ca.unlink()
    code, err, _ = _start(node, capsys)
    assert code == 2 and f"{ca}: missing: the federation's CA certificate" in err
    assert "starting its SuperNode" not in err


def test_an_expired_ca_certificate_is_named(node: Path, capsys):
    key = ec.generate_private_key(ec.SECP384R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "old federation CA")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now - dt.timedelta(days=30)).not_valid_after(now - dt.timedelta(days=1))
            .sign(key, hashes.SHA384()))
    (node / "keys" / "federation-ca.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    code, err, _ = _start(node, capsys)
    assert code == 2 and "the certificate 'old federation CA' expired on" in err and "starting its SuperNode" not in err


@pytest.mark.parametrize("damage, says", [
    ("garbage", "not an OpenSSH private key"),
    ("rsa", "a key of type RSA; node authentication needs an elliptic-curve (ECDSA) key"),
    ("missing", "missing: the node's private key"),
])
def test_a_node_key_flower_cannot_read_is_named(node: Path, capsys, damage: str, says: str):
    key = node / "keys" / "node.key"
    if damage == "garbage":
        key.write_text("garbage\n")
    elif damage == "rsa":
        key.write_bytes(rsa.generate_private_key(65537, 2048).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()))
    else:
        key.unlink()
    code, err, _ = _start(node, capsys)
    assert code == 2 and f"{key}: {says}" in err and "starting its SuperNode" not in err


def _fake_supernode(monkeypatch, script: str) -> list[int]:
    """Replace `flower-supernode` by a small Python program; returns the pids it was started as."""
    pids: list[int] = []
    real_start = service.Supervisor.start

    def start(self, name, argv, env, cwd=None, output=None):
        proc = real_start(self, name, argv, env, cwd, output)
        pids.append(proc.pid)
        return proc

    monkeypatch.setattr(service, "supernode_argv", lambda *a, **k: [sys.executable, "-c", script])
    monkeypatch.setattr(service.Supervisor, "start", start)
    return pids


def test_max_wait_bounds_a_supernode_that_hangs_without_connecting(node: Path, monkeypatch):
    hang = f"import sys, time; sys.stdout.write({BAD_CA_LOG!r}); sys.stdout.flush(); time.sleep(120)"
    pids = _fake_supernode(monkeypatch, hang)
    monkeypatch.setattr(service, "EXIT_GRACE_S", 0.5)
    began = time.monotonic()
    with pytest.raises(NodeStopped) as raised:
        run_node(NodeStart(node_dir=node, superlink="127.0.0.1:1", max_wait_s=2, stop_grace_s=1), say=lambda _: None)
    assert time.monotonic() - began < 15
    message = str(raised.value)
    assert "did not connect to the SuperLink at 127.0.0.1:1 within --max-wait 2 s" in message
    assert "ssl.SSLError: no start line: cadata does not contain a certificate" in message
    assert str(node / "state" / "logs" / "supernode.log") in message
    assert pids and not any(alive(p) for p in pids)


def test_max_wait_bounds_a_supernode_that_keeps_exiting_and_the_message_quotes_the_telling_line(node: Path, monkeypatch):
    crash = f"import sys; sys.stdout.write({REFUSED_LOG!r}); sys.exit(1)"
    pids = _fake_supernode(monkeypatch, crash)
    monkeypatch.setattr(service, "RETRY_S", 0.3)
    said: list[str] = []
    began = time.monotonic()
    with pytest.raises(NodeStopped) as raised:
        run_node(NodeStart(node_dir=node, superlink="127.0.0.1:1", max_wait_s=2, stop_grace_s=1), say=said.append)
    assert time.monotonic() - began < 15 and len(pids) >= 2
    message = str(raised.value)
    assert "exited with code 1" in message and "([Errno 111] Connection refused)" in message
    assert "Finished server process" not in message and str(node / "state" / "logs" / "supernode.log") in message
    assert any("[Errno 111] Connection refused" in line for line in said if "starting it again" in line)


def test_the_telling_line_of_a_supernode_log():
    assert informative_line(REFUSED_LOG) == "[Errno 111] Connection refused"
    assert informative_line(BAD_CA_LOG) == ("ssl.SSLError: no start line: cadata does not contain a certificate "
                                            "(_ssl.c:4020)")
    assert informative_line("\x1b[91mERROR \x1b[0m:     Node not registered (HTTP 412)\nINFO:     Shutting down\n") \
        == "ERROR :     Node not registered (HTTP 412)"
    assert informative_line("INFO: a\nINFO: b\n") == "INFO: b" and informative_line("") == "no output"
