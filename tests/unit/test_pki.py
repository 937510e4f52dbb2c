"""Federation PKI: the SuperLink certificate verifies against the CA with the right SANs; node keys
are OpenSSH ECDSA P-384 in the form Flower's node authentication reads, private key mode 0600."""
from __future__ import annotations

import ipaddress
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from federation.errors import ConfigError
from federation.pki import create_ca, create_node_keypair, create_superlink_cert, load_ca


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _verify(cert_path: Path, ca_path: Path, host: str) -> None:
    """Full path validation as a TLS client does it (chain, validity, SAN match, server usage)."""
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    store = Store([x509.load_pem_x509_certificate(ca_path.read_bytes())])
    try:
        subject: x509.verification.Subject = x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        subject = x509.DNSName(host)
    PolicyBuilder().store(store).build_server_verifier(subject).verify(cert, [])


def test_superlink_certificate_verifies_for_each_host_and_only_those(tmp_path: Path):
    ca = create_ca(tmp_path / "pki")
    cert_path, key_path = create_superlink_cert(ca, tmp_path / "pki", hosts=("localhost", "127.0.0.1", "::1", "superlink.example"))
    for host in ("localhost", "127.0.0.1", "::1", "superlink.example"):
        _verify(cert_path, ca.cert_path, host)
    with pytest.raises(VerificationError):
        _verify(cert_path, ca.cert_path, "other.example")
    with pytest.raises(VerificationError):
        _verify(cert_path, ca.cert_path, "10.0.0.1")

    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["localhost", "superlink.example"]
    assert sans.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")]
    assert ExtendedKeyUsageOID.SERVER_AUTH in cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    key = serialization.load_pem_private_key(key_path.read_bytes(), None)
    assert key.public_key().public_numbers() == cert.public_key().public_numbers()
    assert _mode(key_path) == 0o600 and _mode(ca.key_path) == 0o600


def test_certificate_from_another_ca_does_not_verify(tmp_path: Path):
    ours = create_ca(tmp_path / "ours")
    theirs = create_ca(tmp_path / "theirs")
    cert_path, _ = create_superlink_cert(theirs, tmp_path / "theirs")
    with pytest.raises(VerificationError):
        _verify(cert_path, ours.cert_path, "localhost")


def test_ca_is_not_overwritten_without_force_and_can_be_reloaded(tmp_path: Path):
    ca = create_ca(tmp_path)
    before = ca.cert_path.read_bytes()
    with pytest.raises(ConfigError, match="already exists"):
        create_ca(tmp_path)
    assert ca.cert_path.read_bytes() == before
    loaded = load_ca(tmp_path)
    assert loaded.cert == ca.cert
    assert create_ca(tmp_path, force=True).cert_path.read_bytes() != before
    with pytest.raises(ConfigError, match="no CA here"):
        load_ca(tmp_path / "missing")


def test_node_keypair_is_openssh_ecdsa_p384_with_private_mode_0600(tmp_path: Path):
    keys = create_node_keypair(tmp_path, comment="pulse-twin-police")
    assert keys.private_key == tmp_path / "keys" / "node.key" and keys.public_key == tmp_path / "keys" / "node.pub"
    assert _mode(keys.private_key) == 0o600
    assert keys.private_key.read_bytes().startswith(b"-----BEGIN OPENSSH PRIVATE KEY-----")
    assert keys.public_key.read_text().startswith("ecdsa-sha2-nistp384 ")
    # The two loaders Flower uses: `flower-supernode --auth-supernode-private-key` and `flwr supernode register`.
    private = serialization.load_ssh_private_key(keys.private_key.read_bytes(), None)
    public = serialization.load_ssh_public_key(keys.public_key.read_bytes())
    assert isinstance(private, ec.EllipticCurvePrivateKey) and isinstance(private.curve, ec.SECP384R1)
    assert public.public_numbers() == private.public_key().public_numbers()
    from flwr.supercore.primitives.asymmetric import uses_nist_ec_curve

    assert uses_nist_ec_curve(public)


def test_node_keypair_is_never_replaced(tmp_path: Path):
    keys = create_node_keypair(tmp_path)
    before = keys.private_key.read_bytes()
    with pytest.raises(ConfigError, match="already has a key pair"):
        create_node_keypair(tmp_path)
    assert keys.private_key.read_bytes() == before


def test_two_nodes_get_different_keys(tmp_path: Path):
    a = create_node_keypair(tmp_path / "a").public_key.read_bytes()
    b = create_node_keypair(tmp_path / "b").public_key.read_bytes()
    assert a != b


def _pulse_twin(monkeypatch, *argv: str) -> int:
    import federation.cli

    monkeypatch.setattr(federation.cli, "COMMANDS", ("node", "pki"))
    return federation.cli.main(list(argv))


def test_pki_init_command_creates_ca_and_superlink_cert_and_refuses_to_overwrite(tmp_path, monkeypatch, capsys):
    pki = tmp_path / "pki"
    assert _pulse_twin(monkeypatch, "pki", "init", "--coordinator-dir", str(tmp_path), "--host", "link.example", "--host", "10.1.2.3") == 0
    out = capsys.readouterr().out
    assert "pulse-twin coordinator register" in out and "pulse-twin coordinator start" in out
    _verify(pki / "server.pem", pki / "ca.crt", "link.example")
    _verify(pki / "server.pem", pki / "ca.crt", "10.1.2.3")
    before = (pki / "ca.crt").read_bytes()
    assert _pulse_twin(monkeypatch, "pki", "init", "--coordinator-dir", str(tmp_path)) == 2
    assert "already exists" in capsys.readouterr().err
    assert (pki / "ca.crt").read_bytes() == before
    assert _pulse_twin(monkeypatch, "pki", "init", "--coordinator-dir", str(tmp_path), "--force") == 0
    assert (pki / "ca.crt").read_bytes() != before
