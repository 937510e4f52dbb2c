"""`pulse-twin node recover-ledger`: rebuild a node's privacy ledger from its verified egress log.

The guard refuses every release while the ledger and the log disagree (`clients.egress.vouch`). This
is the one way back, and an explicit one: the whole log must verify (chain, head, and the ledger digest
each record states must follow from the releases before it), otherwise nothing is touched. The old
ledger is kept beside the new one (`ledger.sqlite.replaced-<time>`), never deleted. Releases in the old
ledger that no log record charges are dropped: the guard records a release only after its charge, and
the message is sent only after its record, so such a release never left the node. An incomplete last
record (an append cut off by a crash or a full disk: `EgressLog.torn_tail`) is set aside first, into
`egress.jsonl.torn-<time>`, for the same reason: the message it would have recorded was never sent.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from clients.egress import vouch
from clients.egress.log import CHECKPOINT_FILE, Checkpoint, EgressLog, LogTampered
from clients.site_policy import load_site_policy


def ledger_trouble(node_dir: Path) -> vouch.LedgerMismatch | None:
    """Why the node's ledger cannot be trusted, or None: read-only, for the commands that read the ledger
    (`privacy`, `analytics`) to name the real situation (a ledger deleted or replaced while the egress log holds
    charged releases) and the way back, instead of "no ledger" or a missing charge. Verifies the whole log
    (LogTampered when it does not verify) and checks the ledger against it as the guard would
    (`clients.egress.vouch`)."""
    from dp_accounting import ledger_path
    from clients.site_policy import policy_path

    node_dir = Path(node_dir)
    log = EgressLog(node_dir)
    records = log.verify()
    partner = load_site_policy(node_dir).partner if policy_path(node_dir).is_file() else None
    path = ledger_path(node_dir)
    try:
        vouch.check(Checkpoint(), records, vouch.read_history(path), partner, path, log.path)
    except vouch.LedgerMismatch as err:
        return err
    return None


def recover_ledger(node_dir: Path) -> dict[str, Any]:
    """Rebuild the ledger from the log when they disagree; return what was done (plain data)."""
    from dp_accounting import PrivacyLedger, Release, ledger_path

    node_dir = Path(node_dir)
    log = EgressLog(node_dir)
    with log.locked():
        torn = log.set_aside_torn_tail()
        records = log.verify()
        log.read_checkpoint()   # a log rewritten since the guard last verified it cannot vouch for anything
        policy = load_site_policy(node_dir)
        logged = [release for record in records for release in record.get("releases", [])]
        digests = vouch.running_digests(logged)
        for record in records:
            count, stated = record.get("ledger_count"), record.get("ledger_digest")
            if stated is not None and (not isinstance(count, int) or not 0 <= count < len(digests)
                                       or digests[count] != stated):
                raise LogTampered(f"{log.path}, record #{record.get('seq')}: the ledger digest it states does not "
                                  "follow from the releases the log records before it; the log cannot rebuild the "
                                  "ledger, nothing was changed")
        path = ledger_path(node_dir)
        history: list[Any] = []
        if path.exists():
            try:   # a file at the ledger's place that is no usable ledger is moved aside like a wrong one
                history = vouch.read_history(path)
                vouch.check(Checkpoint(), records, history, policy.partner, path, log.path)
                return {"status": "unchanged", "releases": len(logged), "ledger": str(path),
                        "torn": str(torn) if torn else None}
            except vouch.LedgerMismatch as err:
                reason = err.reason
        else:
            reason = f"{path} is missing"
        unsent = [r for r in map(vouch.plain_release, history) if r not in logged]
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        kept = None
        if path.exists():
            kept = path.with_name(f"{path.name}.replaced-{stamp}")
            path.rename(kept)
            for suffix in ("-wal", "-shm"):
                side = path.with_name(path.name + suffix)
                if side.exists():
                    side.rename(kept.with_name(kept.name + suffix))
        with PrivacyLedger(path) as ledger:
            ledger.record_many([Release(**release) for release in logged])
            for record in records:
                for name, value in (record.get("facts") or {}).items():
                    ledger.record_fact(record["run_id"], name, value,
                                       f"{record.get('kind')} message, round {record.get('round')} (recovered from the log)")
            rebuilt = ledger.history()
        (node_dir / CHECKPOINT_FILE).unlink(missing_ok=True)
        vouch.check(Checkpoint(), records, rebuilt, policy.partner, path, log.path)
    return {"status": "rebuilt", "releases": len(logged), "dropped": len(unsent),
            "reason": reason, "ledger": str(path), "old_ledger": str(kept) if kept else None,
            "torn": str(torn) if torn else None}
