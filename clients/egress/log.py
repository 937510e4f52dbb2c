"""The node's append-only, hash-chained egress log: `state/egress.jsonl` plus its head `state/egress.head`.

Each line is one JSON record. Its `hash` is the SHA-256 of its canonical content (every field but
`hash`, including `seq` and `prev_hash`), and `prev_hash` is the previous record's hash (GENESIS for the
first). Editing, deleting, reordering or inserting a record therefore breaks the chain at a line the
audit can name. Deleting the last records leaves a valid chain, so the head file keeps the number of
records and the last hash, replaced atomically after every append.

The chain has no secret: alone it does not stop someone who rewrites the whole log and its head. The
head is therefore signed with the node's key (`clients.egress.signing`) whenever the node has one, and
a head that is unsigned, signed by another key or badly signed fails the check.

The guard verifies the whole chain before every release, incrementally: `state/egress.checkpoint` holds
the number of records verified last time, the SHA-256 of the log's bytes up to them, and the ledger's
state they vouched for; a later check hashes that prefix (any change to an old record fails it) and
verifies record by record only what was appended since. The checkpoint is signed with the node's key like the
head (`checkpoint_bytes`): one the node did not sign (rewritten by hand, e.g. to vouch for an emptied ledger, or
written before checkpoints were signed, or on a node without a key) is not trusted, and the guard then verifies
the whole log against the ledger from its first record. It also keeps the time of the last record verified,
the floor under the node's clock for the next release (`clients.egress.guard`).
"""
from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from clients.egress.signing import Signature, sign_content, sign_head, verify_content, verify_head
from federation.errors import PulseTwinError
from federation.pki import NODE_PUB

LOG_FILE = Path("state") / "egress.jsonl"
HEAD_FILE = Path("state") / "egress.head"
LOCK_FILE = Path("state") / "egress.lock"
CHECKPOINT_FILE = Path("state") / "egress.checkpoint"
GENESIS = "0" * 64


class LogTampered(PulseTwinError):
    """The egress log, its head or the ledger behind it do not agree: the record cannot be trusted."""

    exit_code = 4


@dataclass(frozen=True)
class Head:
    """Number of records in the log, the hash of the last one, and the node key's signature of both."""

    count: int
    hash: str
    signature: Signature | None = None


@dataclass(frozen=True)
class Checkpoint:
    """The log's verified prefix: records, bytes and their SHA-256, and the ledger state they vouch for."""

    count: int = 0
    hash: str = GENESIS
    bytes: int = 0
    prefix_sha256: str = hashlib.sha256(b"").hexdigest()
    ledger_count: int = 0
    ledger_digest: str = GENESIS
    last_time: str = ""        # the `time` of the last verified record (ISO 8601, UTC); "" when none


def checkpoint_bytes(cp: Checkpoint, key: str) -> bytes:
    """What a checkpoint's signature covers: every field of the checkpoint and the signing key."""
    return json.dumps({**cp.__dict__, "key": key}, sort_keys=True, separators=(",", ":")).encode()


def canonical(record: dict[str, Any]) -> bytes:
    """The bytes a record's hash covers: sorted JSON of every field except `hash`."""
    content = {k: v for k, v in record.items() if k != "hash"}
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode()


def record_hash(record: dict[str, Any]) -> str:
    return hashlib.sha256(canonical(record)).hexdigest()


class EgressLog:
    """Appends records to a node's egress log and verifies its chain."""

    def __init__(self, node_dir: Path, public_key: Path | None = None) -> None:
        """`public_key`: the key the head's signature must verify with (default: the node's keys/node.pub;
        an auditor may pass the copy the lab registered)."""
        self.node_dir = Path(node_dir)
        self.public_key = Path(public_key) if public_key is not None else self.node_dir / NODE_PUB
        self.key_given = public_key is not None
        self.path = self.node_dir / LOG_FILE
        self.head_path = self.node_dir / HEAD_FILE
        self.lock_path = self.node_dir / LOCK_FILE

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the node's egress lock: one release at a time, across processes."""
        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.lock_path, "a") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def read_head(self) -> Head | None:
        """The head file's content, or None if there is none yet."""
        try:
            data = json.loads(self.head_path.read_text(encoding="utf-8"))
            signature = (Signature(key=str(data["signature"]["key"]), value=str(data["signature"]["value"]))
                         if data.get("signature") is not None else None)
            return Head(count=int(data["count"]), hash=str(data["hash"]), signature=signature)
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError, AttributeError):
            raise LogTampered(f"{self.head_path}: not a valid head record") from None

    def read_lines(self) -> list[str]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        return text.splitlines()

    def append(self, content: dict[str, Any]) -> dict[str, Any]:
        """Chain `content` after the last record and write it; call while holding `locked()`.

        Refuses to extend a log whose last record does not match its head: a release is only
        recorded on a log the node can still vouch for.
        """
        self._refuse_torn(self._bytes())
        lines = self.read_lines()
        head = self._current_head(lines)
        record = dict(content)
        record["seq"] = head.count
        record["time"] = record.get("time") or _utc_now()
        record["prev_hash"] = head.hash
        record["hash"] = record_hash(record)
        line = _line(record)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        self._write_head(Head(count=head.count + 1, hash=record["hash"]))
        return record

    def _current_head(self, lines: list[str]) -> Head:
        """The head to chain onto, checked against the last line of the log."""
        head = self.read_head()
        if not lines:
            if head is not None and head.count != 0:
                raise LogTampered(
                    f"{self.path}: the log is empty or missing but {self.head_path} records {head.count} records"
                )
            return Head(0, GENESIS)
        last = _parse(lines[-1], self.path, len(lines))
        if head is None:
            raise LogTampered(f"{self.head_path}: missing although {self.path} holds {len(lines)} records")
        if head.count == len(lines) and head.hash == last.get("hash") == record_hash(last):
            return head
        # A crash between writing a record and its head leaves the head one record behind.
        if head.count == len(lines) - 1 and last.get("prev_hash") == head.hash and last.get("hash") == record_hash(last):
            return Head(len(lines), last["hash"])
        raise LogTampered(
            f"{self.path}: the last record (line {len(lines)}) does not match {self.head_path} "
            f"({head.count} records, last hash {head.hash[:12]}...); run `pulse-twin node audit` "
            "before anything else leaves this node"
        )

    def _write_head(self, head: Head) -> None:
        """Write the head, signed with the node's key if it has one, atomically."""
        signature = sign_head(self.node_dir, head.count, head.hash)
        content: dict[str, Any] = {"count": head.count, "hash": head.hash}
        if signature is not None:
            content["signature"] = {"key": signature.key, "value": signature.value}
        tmp = self.head_path.with_suffix(".head.tmp")
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(content, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.head_path)

    def resign(self) -> Head:
        """Check the whole log and its head (signature included, with `public_key`), then sign the head with the
        node's current key: after a planned key rotation, or for a log written before the node had a key."""
        self.verify()
        head = self.read_head() or Head(0, GENESIS)
        self._write_head(head)
        written = self.read_head()
        assert written is not None
        return written

    def check_signature(self, head: Head) -> None:
        """Raise LogTampered unless the head is signed by the node's key (or the node has no key at all)."""
        if head.signature is None:
            if self.public_key.is_file():
                raise LogTampered(
                    f"{self.head_path}: the head is not signed, although the node has a key ({self.public_key}): "
                    "the log and its head were rewritten, or written without the guard (a log from before the "
                    "node had a key: `pulse-twin node audit --resign`)"
                )
            return
        if not self.public_key.is_file():
            raise LogTampered(
                f"{self.head_path}: the head is signed by key {head.signature.key}, but {self.public_key} is missing: "
                "its signature cannot be checked"
            )
        problem = verify_head(head.count, head.hash, head.signature, self.public_key)
        if problem:
            raise LogTampered(f"{self.head_path}: {problem}")

    def verify(self) -> list[dict[str, Any]]:
        """Check the whole chain and the head; return the records, or raise LogTampered naming the line."""
        self._refuse_torn(self._bytes())
        return self._verify(self.read_lines(), Checkpoint())

    def torn_tail(self, data: bytes | None = None) -> int | None:
        """Where an incomplete last record starts, or None: bytes after the last newline that are no record,
        while the head and the complete records before them agree. That is what an append cut off by a crash
        or a full disk leaves (the record is written in one write ending in its newline, and the head only
        after it): the record was never finished, so the guard never returned it and nothing was sent with it.
        Anything else that does not parse is an edit, and stays a refusal naming its line."""
        data = self._bytes() if data is None else data
        if not data or data.endswith(b"\n"):
            return None
        start = data.rfind(b"\n") + 1
        try:
            json.loads(data[start:].decode("utf-8"))
            return None   # a whole record without its newline: not a torn write
        except (UnicodeDecodeError, ValueError):
            pass
        complete = data[:start].decode("utf-8", errors="replace").splitlines()
        try:
            head = self.read_head()
            last_hash = json.loads(complete[-1]).get("hash") if complete else GENESIS
        except (LogTampered, ValueError, AttributeError):
            return None
        count, hash_ = (0, GENESIS) if head is None else (head.count, head.hash)
        return start if count == len(complete) and hash_ == last_hash else None

    def set_aside_torn_tail(self) -> Path | None:
        """Move an incomplete last record (`torn_tail`) to `egress.jsonl.torn-<time>` beside the log and cut the
        log back to its complete records; call while holding `locked()`. Returns the side file, or None."""
        data = self._bytes()
        start = self.torn_tail(data)
        if start is None:
            return None
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        side = self.path.with_name(f"{self.path.name}.torn-{stamp}")
        side.write_bytes(data[start:])
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "wb") as handle:
            handle.write(data[:start])
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)
        return side

    def _refuse_torn(self, data: bytes) -> None:
        start = self.torn_tail(data)
        if start is not None:
            line = data[:start].count(b"\n") + 1
            raise LogTampered(
                f"{self.path}, line {line}: the last record is incomplete, a write cut off (crash or full disk) before "
                f"it was finished; the {line - 1} records before it and the head agree, and nothing was sent with it. "
                "`pulse-twin node recover-ledger` sets the incomplete bytes aside and rebuilds the ledger from the "
                "complete records; nothing else may leave this node until then")

    def read_checkpoint(self) -> Checkpoint:
        """The last verified prefix, checked against the log's bytes now; a fresh start if there is none."""
        return self._checkpoint_of(self._bytes())[0]

    def verify_incremental(self) -> tuple[Checkpoint, list[dict[str, Any]], int, str]:
        """One read of the log: the checkpointed prefix must still be the same bytes, and the records after
        it (and the head) must verify. Returns the checkpoint, those records, and the log's size and SHA-256.
        A checkpoint the node's key did not sign vouches for nothing: then every record is verified and
        returned, after a fresh (genesis) checkpoint."""
        data = self._bytes()
        self._refuse_torn(data)
        cp, signed = self._checkpoint_of(data)
        if not signed:
            cp = Checkpoint()
        lines = data[cp.bytes:].decode("utf-8", errors="replace").splitlines()
        return cp, self._verify(lines, cp, interrupted_ok=True), len(data), hashlib.sha256(data).hexdigest()

    def write_checkpoint(self, count: int, last_hash: str, size: int, sha256: str, ledger_count: int,
                         ledger_digest: str, last_time: str = "") -> Checkpoint:
        """Record, signed with the node's key, that the first `count` records (`size` bytes with digest `sha256`,
        ending in `last_hash`, the last written at `last_time`) are verified and vouch for the ledger's first
        `ledger_count` releases (running digest `ledger_digest`)."""
        new = Checkpoint(count=count, hash=last_hash, bytes=size, prefix_sha256=sha256,
                         ledger_count=ledger_count, ledger_digest=ledger_digest, last_time=last_time)
        content: dict[str, Any] = dict(new.__dict__)
        signature = sign_content(self.node_dir, lambda key: checkpoint_bytes(new, key))
        if signature is not None:
            content["signature"] = {"key": signature.key, "value": signature.value}
        path = self.node_dir / CHECKPOINT_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(content), encoding="utf-8")
        os.replace(tmp, path)
        return new

    def _signed(self, cp: Checkpoint, signature: Any) -> bool:
        """Whether `signature` is the node key's signature of `cp`."""
        if not isinstance(signature, dict) or not self.public_key.is_file():
            return False
        sig = Signature(key=str(signature.get("key")), value=str(signature.get("value")))
        return verify_content(checkpoint_bytes(cp, sig.key), sig, self.public_key) is None

    def _bytes(self) -> bytes:
        try:
            return self.path.read_bytes()
        except FileNotFoundError:
            return b""

    def _checkpoint_of(self, data: bytes) -> tuple[Checkpoint, bool]:
        """The checkpoint, its prefix checked against the log's bytes, and whether the node's key signed it."""
        path = self.node_dir / CHECKPOINT_FILE
        try:
            content = json.loads(path.read_text(encoding="utf-8"))
            signature = content.pop("signature", None)
            cp = Checkpoint(**content)
        except FileNotFoundError:
            return Checkpoint(), True
        except (ValueError, TypeError, AttributeError):
            raise LogTampered(f"{path}: not a valid checkpoint record") from None
        numbers, texts = (cp.count, cp.bytes, cp.ledger_count), (cp.hash, cp.prefix_sha256, cp.ledger_digest, cp.last_time)
        if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in numbers) or \
                not all(isinstance(t, str) for t in texts):
            raise LogTampered(f"{path}: not a valid checkpoint record (a field has the wrong type)")
        prefix = data[:cp.bytes]
        if len(prefix) != cp.bytes or hashlib.sha256(prefix).hexdigest() != cp.prefix_sha256:
            raise LogTampered(
                f"{self.path}: the first {cp.count} records, verified earlier, are no longer the same bytes: "
                "a record before the last check was edited, deleted, inserted or reordered and the chain "
                "rewritten after it; nothing may leave this node until the log is restored from a copy"
            )
        return cp, self._signed(cp, signature)

    def _verify(self, lines: list[str], cp: Checkpoint, interrupted_ok: bool = False) -> list[dict[str, Any]]:
        offset = cp.count
        parsed = [_parse(line, self.path, number) for number, line in enumerate(lines, start=offset + 1)]
        records: list[dict[str, Any]] = []
        prev = cp.hash
        for number, record in enumerate(parsed, start=offset + 1):
            seq = record.get("seq")
            if record.get("hash") != record_hash(record):
                raise LogTampered(
                    f"{self.path}, line {number} (record #{seq}): its content does not match its hash: "
                    "the record was edited"
                )
            if seq != number - 1:
                raise LogTampered(
                    f"{self.path}, line {number}: holds record #{seq} where record #{number - 1} belongs: "
                    + _sequence_break(parsed, number - offset, seq, offset)
                )
            if record.get("prev_hash") != prev:
                raise LogTampered(
                    f"{self.path}, line {number} (record #{seq}): does not chain to the record before it: "
                    f"line {number - 1 if number > 1 else 'genesis'} was replaced or a record was forged"
                )
            prev = record["hash"]
            records.append(record)
        total = offset + len(records)
        head = self.read_head()
        if head is None:
            if total:
                raise LogTampered(f"{self.head_path}: missing although {self.path} holds {total} records")
            return records
        self.check_signature(head)
        # A crash between writing a record and its head leaves the head one record behind (the guard
        # then chains onto the record, see `_current_head`).
        interrupted = interrupted_ok and head.count == total - 1 and bool(records) and head.hash == records[-1]["prev_hash"]
        if (head.count != total or head.hash != prev) and not interrupted:
            if head.count > total:
                what = (
                    f"records #{total} to #{head.count - 1} were deleted from the end of the log"
                    if head.count - total > 1 else f"record #{total} was deleted from the end of the log"
                )
            elif head.count < total:
                what = (
                    f"line {head.count + 1} onwards was appended without the guard "
                    "(or a write was interrupted)"
                )
            else:
                what = "the last record was replaced"
            raise LogTampered(
                f"{self.path}: the log has {total} records ending in {prev[:12]}..., but "
                f"{self.head_path} records {head.count} ending in {head.hash[:12]}...: {what}"
            )
        return records


def _sequence_break(parsed: list[dict[str, Any]], number: int, seq: Any, offset: int = 0) -> str:
    """Say in words why line `number` holds record #seq instead of #(number - 1)."""
    number += offset
    expected = number - 1
    lines_of = {}
    for n, record in enumerate(parsed, start=offset + 1):
        lines_of.setdefault(record.get("seq"), []).append(n)
    if len(lines_of.get(seq, [])) > 1:
        return f"record #{seq} also appears at line {[n for n in lines_of[seq] if n != number][0]}: a record was inserted"
    if expected in lines_of:
        return f"record #{expected} is at line {lines_of[expected][0]}: records were reordered"
    if isinstance(seq, int) and seq > expected:
        return (f"record #{expected} is missing (deleted)" if seq == number else
                f"records #{expected} to #{seq - 1} are missing (deleted)")
    return "a record was inserted or renumbered"


def _line(record: dict[str, Any]) -> str:
    """A record as its one line in the log (ASCII, so characters and bytes count alike)."""
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def _parse(line: str, path: Path, number: int) -> dict[str, Any]:
    try:
        record = json.loads(line, parse_constant=_no_constant)
    except (json.JSONDecodeError, ValueError):
        raise LogTampered(f"{path}, line {number}: not a JSON record") from None
    if not isinstance(record, dict):
        raise LogTampered(f"{path}, line {number}: not a JSON record")
    return record


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a valid value in the egress log")


def _utc_now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")
