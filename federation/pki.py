"""The federation's keys: a coordinator CA, the SuperLink's TLS certificate, and one key pair per node.

The coordinator runs `pulse-twin pki init` once: a CA and a SuperLink certificate (with DNS and IP
SANs) that every node trusts. Each node makes its own key pair with `pulse-twin node init`; only the
public key (`keys/node.pub`) goes to the coordinator, who registers it with `flwr supernode register`.
Node keys are ECDSA P-384 in OpenSSH format, the form Flower's node authentication reads.
"""
from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from federation.errors import ConfigError

CA_CERT = "ca.crt"
CA_KEY = "ca.key"
SUPERLINK_CERT = "server.pem"
SUPERLINK_KEY = "server.key"
NODE_KEY = Path("keys") / "node.key"
NODE_PUB = Path("keys") / "node.pub"
DEFAULT_HOSTS: tuple[str, ...] = ("localhost", "127.0.0.1", "::1")
_CURVE = ec.SECP384R1


@dataclass(frozen=True)
class CertificateAuthority:
    """The coordinator's CA: its certificate, its private key and where they are stored."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    cert_path: Path
    key_path: Path


@dataclass(frozen=True)
class NodeKeys:
    """Paths of a node's key pair; the private key never leaves the node."""

    private_key: Path
    public_key: Path


def create_ca(directory: Path, name: str = "PULSE-TWIN federation CA", days: int = 3650, force: bool = False) -> CertificateAuthority:
    """Create `ca.crt` and `ca.key` (mode 0600) in `directory`; refuse to overwrite unless `force`."""
    directory = Path(directory)
    cert_path, key_path = directory / CA_CERT, directory / CA_KEY
    if not force and (cert_path.exists() or key_path.exists()):
        raise ConfigError(
            f"{directory}: a CA already exists ({CA_CERT}/{CA_KEY}); replacing it invalidates every certificate "
            "issued so far (use --force if that is what you want)"
        )
    key = ec.generate_private_key(_CURVE())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA384())
    )
    directory.mkdir(parents=True, exist_ok=True)
    _write_private(key_path, _pem_private(key))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return CertificateAuthority(cert, key, cert_path, key_path)


def load_ca(directory: Path) -> CertificateAuthority:
    """Read the CA made by `create_ca`, with one clear error if it is missing or unreadable."""
    directory = Path(directory)
    cert_path, key_path = directory / CA_CERT, directory / CA_KEY
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except FileNotFoundError as err:
        raise ConfigError(f"{err.filename}: no CA here (run `pulse-twin pki init --coordinator-dir {directory.parent}`)") from None
    except ValueError as err:
        raise ConfigError(f"{directory}: CA files are not readable PEM ({err})") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ConfigError(f"{key_path}: not an elliptic-curve private key")
    return CertificateAuthority(cert, key, cert_path, key_path)


def create_superlink_cert(
    ca: CertificateAuthority,
    directory: Path,
    hosts: Iterable[str] = DEFAULT_HOSTS,
    days: int = 825,
) -> tuple[Path, Path]:
    """Issue the SuperLink's TLS certificate (`server.pem`, key `server.key` mode 0600) for `hosts`.

    Each host becomes a SAN: an IP address SAN when it parses as one, otherwise a DNS name.
    """
    hosts = [h.strip() for h in hosts if h and h.strip()]
    if not hosts:
        raise ConfigError("the SuperLink certificate needs at least one host name or IP address")
    sans: list[x509.GeneralName] = []
    for host in hosts:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            sans.append(x509.DNSName(host))
    key = ec.generate_private_key(_CURVE())
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(min(now + dt.timedelta(days=days), ca.cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False
        )
        .sign(ca.key, hashes.SHA384())
    )
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    key_path, cert_path = directory / SUPERLINK_KEY, directory / SUPERLINK_CERT
    _write_private(key_path, _pem_private(key))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


def create_node_keypair(node_dir: Path, comment: str = "") -> NodeKeys:
    """Write `keys/node.key` (OpenSSH private key, mode 0600) and `keys/node.pub`; never overwrites."""
    node_dir = Path(node_dir)
    private_path, public_path = node_dir / NODE_KEY, node_dir / NODE_PUB
    if private_path.exists() or public_path.exists():
        raise ConfigError(f"{private_path.parent}: the node already has a key pair; it is not replaced")
    key = ec.generate_private_key(_CURVE())
    private_bytes = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    )
    public_bytes = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    if comment:
        public_bytes += b" " + comment.encode("ascii", "replace")
    private_path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(private_path.parent, 0o700)
    _write_private(private_path, private_bytes)
    public_path.write_bytes(public_bytes + b"\n")
    return NodeKeys(private_path, public_path)


def check_ca_certificate(path: Path, what: str) -> None:
    """Refuse a CA certificate file a TLS client could not use: missing, not PEM, no certificate, expired.

    Flower's SuperNode reads this file in its connection thread: a damaged one is logged there as an
    `ssl.SSLError` while the process keeps running without ever connecting. So a node checks it first and
    names the file and what is wrong with it."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: missing: {what}")
    data = path.read_bytes()
    if b"-----BEGIN CERTIFICATE-----" not in data:
        raise ConfigError(f"{path}: not a PEM certificate (no '-----BEGIN CERTIFICATE-----' line): {what}; "
                          "copy the coordinator's ca.crt here again")
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError as err:
        raise ConfigError(f"{path}: a damaged PEM certificate ({err}): {what}; copy the coordinator's ca.crt "
                          "here again") from None
    now = _now()
    for cert in certs:
        if cert.not_valid_after_utc < now:
            raise ConfigError(f"{path}: the certificate '{_common_name(cert)}' expired on "
                              f"{cert.not_valid_after_utc:%Y-%m-%d}: {what}; ask the coordinator for the current one")
        if cert.not_valid_before_utc > now + dt.timedelta(minutes=5):
            raise ConfigError(f"{path}: the certificate '{_common_name(cert)}' is valid only from "
                              f"{cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC (is this machine's clock right?): {what}")


def check_node_key(path: Path) -> None:
    """Refuse a node private key Flower's node authentication cannot read (it would exit with a bare
    "Unable to parse the private key file"): missing, not an OpenSSH private key, encrypted, not elliptic-curve."""
    path = Path(path)
    what = "the node's private key (`pulse-twin node init` makes it)"
    if not path.is_file():
        raise ConfigError(f"{path}: missing: {what}")
    try:
        key = serialization.load_ssh_private_key(path.read_bytes(), password=None)
    except TypeError:
        raise ConfigError(f"{path}: the private key is protected by a passphrase; the SuperNode needs it without "
                          f"one: {what}") from None
    except (ValueError, UnsupportedAlgorithm) as err:
        raise ConfigError(f"{path}: not an OpenSSH private key ({err}): {what}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        kind = type(key).__name__.replace("PrivateKey", "").lstrip("_")
        raise ConfigError(f"{path}: a key of type {kind}; node authentication needs an "
                          f"elliptic-curve (ECDSA) key: {what}")


def _common_name(cert: x509.Certificate) -> str:
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else cert.subject.rfc4514_string()


def _pem_private(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _write_private(path: Path, data: bytes) -> None:
    """Create a file readable by its owner only, without a window in which it is world-readable."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    os.chmod(path, 0o600)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)
