"""The egress log's head, signed with the node's key (`keys/node.key`, ECDSA P-384, the key the SuperNode
authenticates with).

The hash chain makes any change to a record evident, but someone who rewrites the whole log and its head
consistently leaves a valid chain. The head's signature closes that gap for anyone without the node's
private key: `node audit` checks it with the node's public key, or with the copy the lab registered
(`--public-key`), and prints the key's fingerprint so it can be compared with that registration.

Whoever holds the private key can re-sign a rewritten log; keep `keys/` readable by the node's service
account only (it is created with mode 0700/0600).
"""
from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from federation.errors import ConfigError
from federation.pki import NODE_KEY, NODE_PUB


@dataclass(frozen=True)
class Signature:
    """Who signed a head (the public key's SHA-256 fingerprint, as `ssh-keygen -l` prints it) and the signature."""

    key: str
    value: str


def head_bytes(count: int, last_hash: str, key: str) -> bytes:
    """What the signature covers: the number of records, the last record's hash and the signing key."""
    return json.dumps({"count": count, "hash": last_hash, "key": key}, sort_keys=True, separators=(",", ":")).encode()


def fingerprint(public_key_path: Path) -> str:
    """`SHA256:...` of an OpenSSH public key line, as `ssh-keygen -l` prints it."""
    fields = _public_line(public_key_path).split()
    try:
        blob = base64.b64decode(fields[1], validate=True)
    except (IndexError, ValueError):
        raise ConfigError(f"{public_key_path}: not an OpenSSH public key line") from None
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def sign_head(node_dir: Path, count: int, last_hash: str) -> Signature | None:
    """Sign a head with the node's private key; None when the node has no key pair (yet)."""
    return sign_content(node_dir, lambda fp: head_bytes(count, last_hash, fp))


def sign_content(node_dir: Path, content: Callable[[str], bytes]) -> Signature | None:
    """Sign `content(fingerprint)` (bytes that name the signing key) with the node's private key; None when the
    node has no key pair (yet)."""
    private_path, public_path = Path(node_dir) / NODE_KEY, Path(node_dir) / NODE_PUB
    if not private_path.is_file() or not public_path.is_file():
        return None
    try:
        key = serialization.load_ssh_private_key(private_path.read_bytes(), password=None)
    except (ValueError, TypeError, OSError) as exc:
        raise ConfigError(f"{private_path}: cannot read the node's private key ({exc})") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ConfigError(f"{private_path}: not an ECDSA key (made by `pulse-twin node init`)")
    fp = fingerprint(public_path)
    value = key.sign(content(fp), ec.ECDSA(hashes.SHA384()))
    return Signature(key=fp, value=base64.b64encode(value).decode())


def verify_head(count: int, last_hash: str, signature: Signature, public_key_path: Path) -> str | None:
    """None if `signature` is a valid signature of this head by the key in `public_key_path`, else what is wrong."""
    expected = fingerprint(public_key_path)
    if signature.key != expected:
        return (f"it is signed by key {signature.key}, but the node's key ({public_key_path}) is {expected}: "
                "the log and its head were rewritten and signed with another key, or the node's key was replaced "
                "(after a planned rotation, run `pulse-twin node audit --public-key OLD.pub --resign`)")
    return verify_content(head_bytes(count, last_hash, signature.key), signature, public_key_path)


def verify_content(data: bytes, signature: Signature, public_key_path: Path) -> str | None:
    """None if `signature` is a valid signature of `data` by the key in `public_key_path`, else what is wrong."""
    try:
        public = serialization.load_ssh_public_key(_public_line(public_key_path).encode())
        if not isinstance(public, ec.EllipticCurvePublicKey):
            return f"{public_key_path} is not an ECDSA public key"
        public.verify(base64.b64decode(signature.value), data, ec.ECDSA(hashes.SHA384()))
    except (InvalidSignature, ValueError):
        return f"its signature does not verify with {public_key_path}: it was forged or edited"
    return None


def _public_line(path: Path) -> str:
    try:
        return Path(path).read_text(encoding="ascii", errors="replace").strip()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the public key ({exc.strerror})") from None
