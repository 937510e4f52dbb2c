"""The privacy ledger and the egress log vouch for each other: checked before anything leaves a node.

Every DP release a node charges is written twice: as a row of the privacy ledger (`state/ledger.sqlite`,
what the accountant reads to say how much budget is left) and inside the hash-chained egress record of
the message that carried it (`state/egress.jsonl`), whose record also states the ledger's running digest
and release count after the charge. Before every release the guard checks that the ledger's releases
are, in order and field by field, the releases the log records, and that the ledger's digest is the one
the log states. A ledger that is missing, emptied, edited (a noise multiplier, a date), shortened,
extended outside the guard, or copied from another node therefore stops every release, naming rule
`ledger-vouch`, instead of quietly restarting the budget from a wrong epsilon. The way back is an
explicit operator command, `pulse-twin node recover-ledger`, which rebuilds the ledger from a verified log.
"""
from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any, Sequence

from clients.egress.log import GENESIS, Checkpoint, LogTampered

RULE = "ledger-vouch"


RECOVER = ("the way back: `pulse-twin node recover-ledger --node-dir {node}` rebuilds the ledger from the egress "
           "log if the whole log verifies (the old ledger file is kept beside it)")


class LedgerMismatch(LogTampered):
    """The privacy ledger is not the one the egress log vouches for: every release is refused.

    The text names the way back (`node recover-ledger`), so that every command that meets a lost or
    damaged ledger (the guard, `node audit`, `privacy`, `analytics`) points the operator to the same one;
    `reason` is the diagnosis alone (what `recover-ledger` itself reports)."""

    def __init__(self, message: str, node_dir: Path | str = "DIR") -> None:
        super().__init__(f"refused by rule {RULE}: {message}; {RECOVER.format(node=node_dir)}")
        self.rule = RULE
        self.reason = message


def node_of(ledger_path: Path) -> Path:
    """The node directory of a ledger at `node_dir/state/ledger.sqlite` (for the way back in messages)."""
    return Path(ledger_path).parent.parent


def read_history(ledger_path: Path) -> list[Any]:
    """The ledger's releases, read only; [] when there is no ledger file (the vouch check then says whether the
    log expected one). A file that is there but is no usable ledger (text, another database) is a ledger
    the log cannot vouch for: LedgerMismatch (exit 4), not a configuration error."""
    from dp_accounting import PrivacyLedger
    from dp_accounting.errors import ConfigError

    if not Path(ledger_path).exists():
        return []
    try:
        with PrivacyLedger(ledger_path, create=False) as ledger:
            return ledger.history()
    except ConfigError as err:
        raise LedgerMismatch(f"{err}: the file at the ledger's place is not the privacy ledger the egress log "
                             "vouches for (replaced or damaged)", node_of(ledger_path)) from None


def plain_release(release: Any) -> dict[str, Any]:
    """A release as the plain, JSON-safe dict the log records and the digest covers."""
    data = release.to_dict() if hasattr(release, "to_dict") else dict(release)
    return {str(k): plain(v) for k, v in sorted(data.items())}


def digest_step(previous: str, release: dict[str, Any]) -> str:
    """The ledger's running digest after one more release."""
    body = json.dumps(release, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return hashlib.sha256((previous + body).encode()).hexdigest()


def running_digests(releases: Sequence[dict[str, Any]], start: str = GENESIS) -> list[str]:
    """Digest after 0, 1, ..., n releases (index i: after the first i)."""
    out = [start]
    for release in releases:
        out.append(digest_step(out[-1], release))
    return out


def check(cp: Checkpoint, new_records: Sequence[dict[str, Any]], history: Sequence[Any], partner: str | None,
          ledger_path: Path, log_path: Path) -> tuple[int, str]:
    """Raise LedgerMismatch unless the ledger holds exactly what the log vouches for; return its count and digest.

    `cp` vouches for the ledger's first `cp.ledger_count` releases by their digest; `new_records` (the log
    records after `cp`) must carry the rest, in order, field by field.
    """
    ledger = [plain_release(r) for r in history]
    foreign = sorted({r.get("node") for r in ledger if partner and r.get("node") not in (None, partner)})
    if foreign:
        raise LedgerMismatch(f"{ledger_path} holds releases charged on node {foreign[0]!r}, not on this node "
                             f"({partner!r}): a ledger of another node was copied in", node_of(ledger_path))
    logged = [(record.get("seq"), release) for record in new_records for release in record.get("releases", [])]
    expected_count = cp.ledger_count + len(logged)
    if not ledger and expected_count:
        raise LedgerMismatch(f"{ledger_path} is missing or empty, but {log_path} records {expected_count} charged "
                             "DP releases: the budget already spent is unknown, so nothing may leave this node",
                             node_of(ledger_path))
    if len(ledger) < cp.ledger_count:
        raise LedgerMismatch(f"{ledger_path} holds {len(ledger)} releases, but the egress log had vouched for "
                             f"{cp.ledger_count}: releases were deleted from the ledger (or it is an older copy)",
                             node_of(ledger_path))
    _compare(ledger[cp.ledger_count:], logged, ledger_path, log_path)
    digests = running_digests(ledger)
    if digests[cp.ledger_count] != cp.ledger_digest:
        raise LedgerMismatch(f"{ledger_path}: its first {cp.ledger_count} releases are not those the egress log "
                             "vouched for at its last check: a release in the ledger was edited or replaced",
                             node_of(ledger_path))
    for record in new_records:
        stated = record.get("ledger_digest")
        count = record.get("ledger_count")
        if stated is None or count is None:
            continue   # records written before the ledger digest was stated
        if not isinstance(count, int) or not 0 <= count <= len(ledger) or digests[count] != stated:
            raise LedgerMismatch(f"{log_path}, record #{record.get('seq')}: states the ledger's digest after "
                                 f"{count} releases as {str(stated)[:12]}..., which the ledger does not give",
                                 node_of(ledger_path))
    return len(ledger), digests[-1]


def _compare(ledger: list[dict[str, Any]], logged: list[tuple[Any, dict[str, Any]]], ledger_path: Path,
             log_path: Path) -> None:
    """The ledger's releases after the checkpoint against the log's, in order; name the first difference."""
    def same(a: dict[str, Any], b: dict[str, Any]) -> bool:
        return all(a.get(k) == b.get(k) for k in set(a) | set(b))

    def name(r: dict[str, Any]) -> str:
        return f"run {r.get('run_id')}, round {r.get('round')}, {r.get('kind')}, recorded {r.get('created_at')}"

    theirs = [r for _, r in logged]
    for i in range(max(len(ledger), len(theirs))):
        if i < len(ledger) and i < len(theirs) and same(ledger[i], theirs[i]):
            continue
        extra_in_ledger = i < len(ledger) and all(map(same, ledger[i + 1:], theirs[i:])) and \
            len(ledger) - len(theirs) == 1
        if extra_in_ledger or i >= len(theirs):
            raise LedgerMismatch(f"{ledger_path}: the privacy ledger holds a release ({name(ledger[i])}) that no "
                                 f"record of the egress log ({log_path}) charges: it was recorded without passing "
                                 "the egress guard, or a crash came between the charge and its record",
                                 node_of(ledger_path))
        seq = logged[i][0]
        if i >= len(ledger) or (len(theirs) - len(ledger) == 1 and all(map(same, ledger[i:], theirs[i + 1:]))):
            raise LedgerMismatch(f"{log_path}, line {seq + 1} (record #{seq}): charges a release ({name(theirs[i])}) "
                                 "that is not in the privacy ledger: the ledger lost a release (deleted rows, an "
                                 "older copy) or the record was forged",
                                 node_of(ledger_path))
        key = next(k for k in sorted(set(ledger[i]) | set(theirs[i])) if ledger[i].get(k) != theirs[i].get(k))
        raise LedgerMismatch(f"{ledger_path}: a release ({name(ledger[i])}) has {key} = {ledger[i].get(key)!r}, but "
                             f"record #{seq} of {log_path} charged {theirs[i].get(key)!r}: the ledger was edited, or "
                             "it is not this log's ledger", node_of(ledger_path))


def plain(value: Any) -> Any:
    """JSON-safe copy (tuples to lists, non-finite floats to text) for the log."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)
