"""The guard's clock: every release is dated, and the 365-day budget window computed, from times the log vouches for.

The per-year cap composes the releases of the last 365 days, so the dates decide what counts. A date the
node's clock alone gives could be moved: set the clock back two years and a release falls outside the
window of the next one; set it ahead and the earlier releases fall out. The guard therefore dates each release
itself (the ledger's `created_at`, repeated field by field in the hash-chained, signed log and checked by
`clients.egress.vouch`), and refuses a release whose clock reads earlier than the log's last record (beyond
`TOLERANCE`, for a clock that was just corrected by a few seconds; within it the release is dated at the last
record's time, so the log's times never go back). A clock set ahead dates every later record ahead too: once
it is corrected, nothing leaves until the real time has passed the log's last record, so the jump buys no
second window.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, Sequence

from clients.site_policy import RuleRefusal

RULE = "egress.clock"
TOLERANCE = dt.timedelta(seconds=60)


def parse(value: Any) -> dt.datetime | None:
    """A record's or release's time as an aware UTC datetime; None when absent or not a date."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment.astimezone(dt.timezone.utc) if moment.tzinfo else None


def last_time(checkpointed: str, records: Sequence[dict[str, Any]], history: Sequence[Any]) -> dt.datetime | None:
    """The latest time the verified log vouches for: its records after the checkpoint, the checkpoint's own (signed)
    last time, and the dates of the ledger's releases (which the log repeats)."""
    times = [parse(checkpointed), *(parse(r.get("time")) for r in records),
             *(parse(getattr(r, "created_at", None)) for r in history)]
    known = [t for t in times if t is not None]
    return max(known) if known else None


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def release_time(last: dt.datetime | None, log_path: Path) -> tuple[dt.datetime, RuleRefusal | None]:
    """The date of the next release and, if the node's clock runs behind the log's last record, its refusal."""
    current = now()
    if last is None or current >= last:
        return current, None
    if last - current <= TOLERANCE:
        return last, None
    return last, RuleRefusal(RULE, f"this node's clock reads {current.isoformat(timespec='seconds')}, but the last "
                             f"record of its egress log ({log_path}) is dated {last.isoformat(timespec='seconds')}: "
                             "a clock running behind the log would move releases out of the 365-day budget window, "
                             "so nothing leaves until the clock is right (if the log's date is in the future, it "
                             "was written with a clock set ahead and releases resume once that time has passed)",
                             where="egress rule")
