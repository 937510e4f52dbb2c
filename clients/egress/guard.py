"""The egress guard: the one gate every outgoing message of a node passes through.

`EgressGuard.open(node_dir).release(Egress(...))` checks the message against the node's site policy,
charges its DP releases to the node's privacy ledger (budget check and record in one transaction),
records any disclosed facts, and appends a hash-chained record to `state/egress.jsonl`. A refusal
raises `PolicyRefusal` (or `BudgetExceeded`) naming the rule, charges nothing, and is itself logged.
The caller sends the message only after `release` returned its record.

Order of work, under the node's egress lock: verify the log's chain since its last checkpoint and that
the privacy ledger is exactly what the log vouches for (`clients.egress.vouch`; a log or ledger the
node cannot vouch for blocks everything), check the rules, charge the ledger, record facts, append the
record (stating the ledger's count and running digest after the charge). If the append itself fails
after the charge (a full disk), the caller gets the error and sends nothing; the ledger then holds a
charge the log lacks, and the next release is refused until `pulse-twin node recover-ledger` rebuilds
the ledger from the log (the unsent charge is dropped: nothing left the node).
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from clients.egress import clock, vouch
from clients.egress.log import EgressLog
from federation import profile
from federation.errors import BudgetExceeded, ConfigError, PolicyRefusal
from clients.site_policy import RuleRefusal, SitePolicy, load_site_policy
from federation.messages import ERROR_SENTENCES, REPLY_FIELDS, ErrorReply, fields_outside
from federation.proposal import is_sha256
from dp_accounting.release import utc_iso

# Every kind of message a node may send, and whether it carries DP releases (then it must charge them).
MESSAGE_KINDS: dict[str, bool] = {
    "dp-model-update": True,           # horizontal: a DP-SGD model update
    "dp-heldout-sums": True,           # horizontal: noised sums of the global model's held-out errors
    "dp-aggregate": True,              # a person-level DP release of the node's tables (blocks, label, analytics)
    "dp-aggregate-reused": False,      # the same release again, already charged when it first left the node
    "dp-model-update-resent": False,
    "dry-run-update": False,           # a dry run: a model update trained on the node's synthetic twin only
    "dry-run-heldout-sums": False,     # a dry run: noised held-out sums of the synthetic twin   # the same model update again (same bytes), after the coordinator lost it
    "psi": False,                      # private set intersection protocol message (discloses a set size)
    "public-fact": False,              # facts declared public, e.g. the public area register
    "error": False,                    # an error reply: a short text, never data
}


@dataclass(frozen=True)
class Egress:
    """One outgoing message, described for the guard (the payload itself is named by its digest)."""

    run_id: str
    round: int
    kind: str
    run_kind: str
    payload_sha256: str
    payload_bytes: int
    charges: list[Any] = field(default_factory=list)
    rows: int | None = None
    params: dict[str, Any] = field(default_factory=dict)
    bundle_hash: str | None = None
    facts: dict[str, float | int | str] = field(default_factory=dict)
    # The payload's fields (`federation.messages.payload_fields`): checked against its kind's allow-list and
    # recorded, so the log (and `pulse-twin node audit`) says what left, not only how many bytes.
    fields: tuple[str, ...] | None = None


class EgressGuard:
    """The node's egress gate: its policy, its ledger and its log, opened together."""

    def __init__(self, node_dir: Path, policy: SitePolicy, ledger: Any, log: EgressLog) -> None:
        self.node_dir = Path(node_dir)
        self.policy = policy
        self.ledger = ledger
        self.log = log

    @classmethod
    def open(cls, node_dir: Path) -> "EgressGuard":
        """Load the node's site policy, privacy ledger and egress log; fails closed on a bad policy."""
        from dp_accounting import PrivacyLedger, ledger_path

        node_dir = Path(node_dir)
        policy = load_site_policy(node_dir)
        return cls(node_dir, policy, PrivacyLedger(ledger_path(node_dir)), EgressLog(node_dir))

    def close(self) -> None:
        self.ledger.close()

    def __enter__(self) -> "EgressGuard":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def release(self, egress: Egress) -> dict[str, Any]:
        """Check, charge and record one outgoing message; return its log record, or raise a refusal."""
        _check_shape(egress)
        # Each release names the node it was charged on, so a ledger read elsewhere still says whose it is.
        egress = replace(egress, charges=[
            r if getattr(r, "node", None) else replace(r, node=self.policy.partner) for r in egress.charges
        ])
        with self.log.locked(), profile.span("guard"):
            with profile.span("vouch"):
                count, digest = self.vouched()
            moment, behind = self._clock()
            # Every release is dated by the guard's clock, never before the log's last record: the budget
            # window is computed from these dates, which the log records and the ledger must repeat.
            egress = replace(egress, charges=[replace(r, created_at=utc_iso(moment)) for r in egress.charges])
            try:
                if behind:
                    raise behind
                check_egress(self.policy, egress)
                if egress.kind == "dp-aggregate-reused":
                    self._check_reused(egress)
                if egress.kind == "dp-model-update-resent":
                    self._check_resent(egress)
                with profile.span("ledger"):
                    charged = self._charge(egress)
            except PolicyRefusal as refusal:
                self.log.append(self._content(egress, "refused", rule=_rule_of(refusal), reason=str(refusal),
                                              ledger_count=count, ledger_digest=digest, time=utc_iso(moment)))
                raise
            for release in egress.charges:
                count, digest = count + 1, vouch.digest_step(digest, vouch.plain_release(release))
            for name, value in egress.facts.items():
                self.ledger.record_fact(egress.run_id, name, value, f"{egress.kind} message, round {egress.round}")
            return self.log.append(self._content(egress, "released", **charged, ledger_count=count,
                                                 ledger_digest=digest, time=utc_iso(moment)))

    def vouched(self) -> tuple[int, str]:
        """Verify the log since its checkpoint and the ledger against it; move the checkpoint on.

        Returns the ledger's release count and running digest; raises LogTampered (a LedgerMismatch naming
        rule `ledger-vouch` for the ledger) when the node cannot vouch for either. Call under the lock.
        """
        cp, new, size, sha256 = self.log.verify_incremental()
        history = self.ledger.history()
        count, digest = vouch.check(cp, new, history, self.policy.partner, self.ledger.path, self.log.path)
        self.last_time = clock.last_time(cp.last_time, new, history)
        self.log.write_checkpoint(cp.count + len(new), new[-1]["hash"] if new else cp.hash, size, sha256, count,
                                  digest, utc_iso(self.last_time) if self.last_time else "")
        return count, digest

    def _clock(self) -> tuple[Any, PolicyRefusal | None]:
        """The time this release is dated (the node's clock, never before the log's last record) and, when the
        clock runs behind that record, the refusal to raise (see `clients.egress.clock`)."""
        return clock.release_time(getattr(self, "last_time", None), self.log.path)

    def _check_reused(self, egress: Egress) -> None:
        """A re-sent release must name tables whose release the ledger holds (it was charged then)."""
        tables = [t for t in str(egress.params.get("reused_tables", "")).split(",") if t]
        charged = {r.table for r in self.ledger.history() if r.mechanism == "gaussian"}
        missing = [t for t in tables if t not in charged]
        if not tables or missing:
            raise RuleRefusal("message.charges", "a re-used release must name tables whose release the ledger "
                              f"holds; not charged: {', '.join(missing) or '(none named)'}", where="egress rule")

    def _check_resent(self, egress: Egress) -> None:
        """A re-sent model update must be the very bytes an earlier, charged record of the same run and round
        released: sending them again discloses nothing new."""
        for line in self.log.read_lines():
            record = json.loads(line)
            if (record.get("status") == "released" and record.get("kind") == "dp-model-update"
                    and record.get("run_id") == egress.run_id and record.get("round") == egress.round
                    and record.get("payload_sha256") == egress.payload_sha256):
                return
        raise RuleRefusal("message.charges", f"a re-sent update of run {egress.run_id}, round {egress.round} must be "
                          "the same bytes as one the egress log shows released and charged; none matches",
                          where="egress rule")

    def _charge(self, egress: Egress) -> dict[str, Any]:
        """Charge the message's releases to the ledger; return what the record states about epsilon.

        The epsilon charged is the increase of the node's lifetime epsilon, both ends computed by the
        ledger's accountant from its stored releases (composition is not additive, so it is not a
        per-release constant).
        """
        p = self.policy.privacy
        if not egress.charges:
            return {"epsilon_charged": 0.0, "epsilon_cumulative": None}
        before = self.ledger.epsilon(p.delta, accountant=p.accountant)
        now = clock.parse(egress.charges[0].created_at)   # the guard's own date of this release (see `release`)
        projection = self.ledger.charge(list(egress.charges), self.policy.budget_caps(), now)
        after = projection.epsilon_lifetime
        return {"epsilon_charged": max(0.0, after - before), "epsilon_cumulative": after,
                "epsilon_year": projection.epsilon_year}

    def _content(self, egress: Egress, status: str, **extra: Any) -> dict[str, Any]:
        p = self.policy.privacy
        content: dict[str, Any] = {
            "status": status,
            "run_id": egress.run_id,
            "round": egress.round,
            "kind": egress.kind,
            "run_kind": egress.run_kind,
            "payload_sha256": egress.payload_sha256,
            "bytes": egress.payload_bytes,
            "rows": egress.rows,
            "bundle_hash": egress.bundle_hash,
            "params": vouch.plain(egress.params),
            "releases": [vouch.plain_release(r) for r in egress.charges] if status == "released" else [],
            "facts": vouch.plain(egress.facts) if status == "released" else {},
            "fields": list(egress.fields) if egress.fields is not None else None,
            "epsilon_charged": 0.0,
            "epsilon_cumulative": None,
            "epsilon_year": None,
            "delta": p.delta,
            "accountant": p.accountant,
            "unit": _unit(egress.charges),
            "rule": None,
            "reason": None,
            "policy_version": self.policy.policy_version,
        }
        content.update(extra)
        return content


def check_egress(policy: SitePolicy, egress: Egress) -> None:
    """Every policy rule an outgoing message must pass; raises RuleRefusal naming the first it breaks."""
    needs_charges = MESSAGE_KINDS.get(egress.kind)
    if needs_charges is None:
        raise RuleRefusal(
            "message.kind", f"unknown message kind '{egress.kind}' (known: {', '.join(MESSAGE_KINDS)})",
            where="egress rule",
        )
    check_fields(egress)
    policy.check_bytes(egress.payload_bytes)
    if egress.kind == "error":
        # An error reply must always be able to say why the node refused; it carries no data or releases.
        if egress.charges or egress.facts:
            raise RuleRefusal("message.kind", "an error reply may carry no releases and no facts", where="egress rule")
        return
    policy.check_run_kind(egress.run_kind)
    policy.check_bundle(egress.bundle_hash)
    policy.check_rounds(egress.round)
    if "rounds" in egress.params:
        policy.check_rounds(int(egress.params["rounds"]))
    if "noise_multiplier" in egress.params:
        policy.check_noise_multiplier(float(egress.params["noise_multiplier"]))
    if "sample_rate" in egress.params:
        policy.check_sample_rate(float(egress.params["sample_rate"]))
    if needs_charges and not egress.charges:
        raise RuleRefusal(
            "message.charges", f"a '{egress.kind}' message must charge its DP releases to the ledger",
            where="egress rule",
        )
    if not needs_charges and egress.charges:
        raise RuleRefusal(
            "message.charges", f"a '{egress.kind}' message carries no DP release and may charge none",
            where="egress rule",
        )
    for release in egress.charges:
        if release.run_id != egress.run_id:
            raise RuleRefusal(
                "message.charges",
                f"a release of run '{release.run_id}' is charged to a message of run '{egress.run_id}'",
                where="egress rule",
            )
        policy.check_noise_multiplier(release.noise_multiplier)
        # The sampling-rate bound limits the amplification a release claims; sample rate 1 claims none
        # (e.g. vertical embeddings, whose rows the coordinator chooses and so knows).
        if release.sample_rate < 1.0:
            policy.check_sample_rate(release.sample_rate)
    if needs_charges and egress.rows is None:
        raise RuleRefusal(
            "bounds.min_rows_per_release", "the message does not say how many rows its release is computed from"
        )
    if egress.rows is not None:
        policy.check_rows(egress.rows)


def check_fields(egress: Egress) -> None:
    """Every field of the message is on its kind's allow-list (`federation.messages.REPLY_FIELDS`); a message
    that does not list its fields is refused like one that carries a field off the list."""
    if egress.fields is None:
        raise RuleRefusal("message.fields", f"the '{egress.kind}' message does not list the fields it carries",
                          where="egress rule")
    outside = fields_outside(egress.kind, egress.fields)
    if outside:
        raise RuleRefusal("message.fields", f"a '{egress.kind}' message may not carry {', '.join(outside)} "
                          f"(allowed: {', '.join(REPLY_FIELDS.get(egress.kind, ())) or 'nothing'})",
                          where="egress rule")
    if egress.kind == "error":   # its text is one of the fixed set: the rule it names and that rule's sentence
        rule = egress.params.get("rule")
        known = isinstance(rule, str) and rule in ERROR_SENTENCES
        text = ErrorReply(rule, ERROR_SENTENCES[rule]).text if known else None
        if text is None or hashlib.sha256(text.encode()).hexdigest() != egress.payload_sha256:
            raise RuleRefusal("message.fields", "an error reply must carry a rule name and that rule's fixed "
                              "sentence (federation.messages.ERROR_SENTENCES), nothing else", where="egress rule")


def _check_shape(egress: Egress) -> None:
    """Programming mistakes in the description itself are errors, not refusals."""
    if not isinstance(egress.run_id, str) or not egress.run_id:
        raise ConfigError(f"egress: run_id must be a non-empty text, got {egress.run_id!r}")
    if isinstance(egress.round, bool) or not isinstance(egress.round, int) or egress.round < 0:
        raise ConfigError(f"egress of run {egress.run_id}: round must be a whole number >= 0, got {egress.round!r}")
    if not is_sha256(egress.payload_sha256):
        raise ConfigError(f"egress of run {egress.run_id}: payload_sha256 must be a SHA-256 hex digest")
    if isinstance(egress.payload_bytes, bool) or not isinstance(egress.payload_bytes, int) or egress.payload_bytes < 0:
        raise ConfigError(f"egress of run {egress.run_id}: payload_bytes must be a whole number >= 0")
    if egress.fields is not None and (isinstance(egress.fields, str)
                                      or any(not isinstance(f, str) for f in egress.fields)):
        raise ConfigError(f"egress of run {egress.run_id}: fields must be a sequence of texts")
    if egress.rows is not None and (isinstance(egress.rows, bool) or not isinstance(egress.rows, int)):
        raise ConfigError(f"egress of run {egress.run_id}: rows must be a whole number or None")
    from dp_accounting import Release

    if any(not isinstance(r, Release) for r in egress.charges):
        raise ConfigError(f"egress of run {egress.run_id}: charges must be dp_accounting.Release objects")
    for name in ("noise_multiplier", "sample_rate", "rounds"):  # (other params are free text, logged as given)
        value = egress.params.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)):
            raise ConfigError(f"egress of run {egress.run_id}: params[{name!r}] must be a finite number, got {value!r}")
    # Facts are recorded after the charge: anything that could fail there is checked here, before it.
    for name, value in egress.facts.items():
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f"egress of run {egress.run_id}: fact names must be non-empty text, got {name!r}")
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError):
            raise ConfigError(f"egress of run {egress.run_id}: fact {name!r} = {value!r} is not plain JSON data") from None


def _rule_of(refusal: PolicyRefusal) -> str:
    rule = getattr(refusal, "rule", None)
    if rule:
        return str(rule)
    return "privacy budget" if isinstance(refusal, BudgetExceeded) else "site policy"


def _unit(charges: list[Any]) -> str | None:
    units = sorted({r.unit for r in charges})
    return ", ".join(units) if units else None
