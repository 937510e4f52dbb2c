"""`pulse-twin node audit`: what left the node and what it cost, from the egress log and the ledger.

The audit trusts nothing it has not checked: it verifies the log's hash chain and head, checks that
the privacy ledger holds exactly the DP releases of the log, in order and field by field
(`clients.egress.vouch`, the check the guard makes before every release), and recomputes epsilon from the
ledger's releases with the node's accountant (never reusing a number written in the log without
comparing it). It raises `LogTampered`, naming the record, when any of that fails.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clients.egress import vouch
from dp_accounting.report import one_unit
from clients.egress.log import Checkpoint, EgressLog, LogTampered
from federation.errors import ConfigError
from clients.site_policy import load_site_policy

# Recorded and recomputed epsilon must agree to this tolerance (same accountant, same releases).
_TOLERANCE = 1e-6


@dataclass(frozen=True)
class _Group:
    round: int
    kind: str


def run_audit(node_dir: Path, run: str | None = None, public_key: Path | None = None,
              resign: bool = False) -> dict[str, Any]:
    """Verify the node's egress record and summarise it (all runs, or one); plain data for JSON.

    `public_key`: the key the head's signature is checked with (default the node's own keys/node.pub; the lab's
    registered copy is the stronger check). `resign`: after everything verified, sign the head with the node's
    current key (after a planned key rotation, checked against the old key given as `public_key`)."""
    from dp_accounting import ledger_path
    from dp_accounting.accountants import get_accountant
    from dp_accounting.budget import project

    node_dir = Path(node_dir)
    log = EgressLog(node_dir, public_key)
    records = log.verify()
    policy = load_site_policy(node_dir)
    delta, accountant_name = policy.privacy.delta, policy.privacy.accountant
    # The audit only reads: a missing ledger is an empty history (and any charge in the log then fails); a file
    # that is no usable ledger is a sign of tampering like an edited one (exit 4, naming the way back).
    path = ledger_path(node_dir)
    history = vouch.read_history(path)
    vouch.check(Checkpoint(), records, history, policy.partner, path, log.path)

    accountant = get_accountant(accountant_name)
    runs: dict[str, dict[str, Any]] = {}
    prefix: list[Any] = []
    remaining = iter(history)   # the vouch check showed: the ledger holds the log's releases, in its order
    for record in records:
        summary = runs.setdefault(record["run_id"], _new_run(record))
        if record.get("status") == "refused":
            summary["refused"].append(_entry(record))
            continue
        summary["released"].append(_entry(record))
        prefix.extend(next(remaining) for _ in record.get("releases", []))
        summary["_last_prefix"] = len(prefix)
        summary["_last_record"] = record
    # Epsilon after each run, recomputed from the ledger's releases up to that run's last release.
    for summary in runs.values():
        last = summary.pop("_last_record", None)
        n = summary.pop("_last_prefix", None)
        if n is None:
            summary["epsilon_after_run"] = None
            continue
        recomputed = accountant.epsilon(prefix[:n], delta) if n else 0.0
        stated = last.get("epsilon_cumulative")
        if stated is not None and abs(stated - recomputed) > _TOLERANCE * max(1.0, recomputed):
            raise LogTampered(
                f"{log.path}, line {last['seq'] + 1} (record #{last['seq']}): states cumulative epsilon "
                f"{stated:.6g}, but the ledger's releases up to it give {recomputed:.6g}"
            )
        summary["epsilon_after_run"] = recomputed
    log.read_checkpoint()   # the prefix the guard verified last is still the same bytes (a rewritten chain is not)
    if resign:
        log.resign()
    head = log.read_head()
    for summary in runs.values():
        summary["groups"] = _groups(summary["released"], summary["refused"])
        summary["bytes"] = sum(e["bytes"] for e in summary["released"])
        summary["epsilon_charged"] = sum(e["epsilon_charged"] for e in summary["released"])
    spent = project(history, [], policy.budget_caps())
    units = sorted({r.unit for r in history})
    # A run is named as the lab named it ("eps20") or as the log keys it ("eps20#<proposal>").
    selected = [s for s in runs.values() if run is None or run in (s["run_id"], s["run_id"].split("#")[0])]
    return {
        "node_dir": str(node_dir),
        "partner": policy.partner,
        "log": str(log.path),
        "records": len(records),
        "head": records[-1]["hash"] if records else None,
        "head_signed_by": head.signature.key if head is not None and head.signature is not None else None,
        "resigned": resign,
        "chain": "intact",
        "ledger": {"releases_in_log": sum(len(r.get("releases", [])) for r in records), "releases_in_ledger": len(history)},
        "epsilon": {
            "lifetime": spent.epsilon_lifetime,
            "last_365_days": spent.epsilon_year,
            "delta": delta,
            "accountant": accountant_name,
            "unit": ", ".join(units) if units else None,
            "cap_per_year": policy.privacy.epsilon_per_year,
            "cap_lifetime": policy.privacy.epsilon_lifetime,
        },
        "policy_version": policy.policy_version,
        "fields_by_kind": fields_by_kind(records),
        "proxy_warnings": _proxy_warnings(node_dir),
        "run_filter": run,
        "runs": selected,
    }


def fields_by_kind(records: list[dict[str, Any]]) -> dict[str, list[str]]:
    """For every message kind the node sent, the fields that left (each released record's field list, as the
    guard checked it against the kind's allow-list); records logged before fields were listed say so."""
    out: dict[str, set[str]] = {}
    for record in records:
        if record.get("status") != "released":
            continue
        fields = record.get("fields")
        out.setdefault(record["kind"], set()).update(fields if fields is not None else [UNLISTED])
    return {kind: sorted(fields) for kind, fields in sorted(out.items())}


UNLISTED = "(not listed: logged before the guard listed fields)"


def _proxy_warnings(node_dir: Path) -> list[dict[str, Any]]:
    """Features of the accepted build that correlate strongly with a protected area statistic (from its manifest)."""
    from clients.contracts.manifest import MANIFEST, read_manifest

    try:
        stats = read_manifest(node_dir / MANIFEST).get("stats") or {}
    except ConfigError:
        return []     # the audit is about the egress log; `features` names a damaged manifest
    return list(stats.get("protected_proxies") or [])


def format_audit(report: dict[str, Any]) -> str:
    """The audit in plain words, for the node's staff and their data-protection officer."""
    eps = report["epsilon"]
    unit = eps["unit"] or "area-period row"
    lines = [
        f"Node '{report['partner']}' ({report['node_dir']})",
        f"Egress log {report['log']}: {report['records']} records, hash chain intact"
        + (f", head {report['head']}." if report["head"] else " (nothing has left this node)."),
        (f"Head signed with the node key {report['head_signed_by']}"
         + (" (just re-signed)" if report.get("resigned") else "")
         + "; compare with the key the lab registered for this node." if report.get("head_signed_by")
         else "Head NOT signed: this node has no key pair (keys/node.key); `pulse-twin node init` makes one."
         if report["head"] else "No head to sign yet."),
        f"Ledger cross-check: the {report['ledger']['releases_in_log']} DP releases in the log are exactly the "
        f"{report['ledger']['releases_in_ledger']} in the privacy ledger.",
        f"Privacy spent over the node's life: epsilon {eps['lifetime']:.4g} at delta {eps['delta']:g} "
        f"(unit: {one_unit(unit)}; accountant: {eps['accountant']}), {eps['last_365_days']:.4g} over the last 365 days; "
        f"recomputed from the ledger's releases. Caps: {eps['cap_per_year']:g} per 365 days, "
        f"{eps['cap_lifetime']:g} for life.",
    ]
    if report.get("fields_by_kind"):
        lines.append("")
        lines.append("Fields that left the node, per message kind (each checked against the kind's allow-list):")
        lines += [f"  {kind}: {', '.join(fields)}" for kind, fields in report["fields_by_kind"].items()]
    if report.get("proxy_warnings"):
        from clients.contracts.proxies import describe

        lines.append("")
        lines += [f"Warning: {describe(p)}" for p in report["proxy_warnings"]]
    if report["run_filter"] and not report["runs"]:
        lines.append(f"\nRun '{report['run_filter']}': nothing in the log.")
    for run in report["runs"]:
        lines.append("")
        lines.append(
            f"Run '{run['run_id']}' ({run['run_kind']}): {len(run['released'])} messages left the node "
            f"({_size(run['bytes'])}), {len(run['refused'])} refused; epsilon charged {run['epsilon_charged']:.4g}."
        )
        if run["epsilon_after_run"] is not None:
            lines.append(
                f"  After this run the node's lifetime epsilon was {run['epsilon_after_run']:.4g} at delta "
                f"{eps['delta']:g} ({eps['accountant']}, recomputed)."
            )
        lines.append(f"  {'round':>5}  {'kind':<26}{'messages':>9}{'refused':>9}{'bytes':>12}{'epsilon':>10}{'cumulative':>12}")
        for g in run["groups"]:
            cumulative = "-" if g["epsilon_cumulative"] is None else f"{g['epsilon_cumulative']:.4g}"
            lines.append(
                f"  {g['round']:>5}  {g['kind']:<26}{g['messages']:>9}{g['refused']:>9}{_size(g['bytes']):>12}"
                f"{g['epsilon_charged']:>10.4g}{cumulative:>12}"
            )
        lines.append("  What left the node:")
        for e in run["released"]:
            lines.append(f"    {_describe(e)}")
        if run["refused"]:
            lines.append("  Refused (nothing left the node):")
            for e in run["refused"]:
                lines.append(f"    #{e['seq']} {e['time']} round {e['round']} {e['kind']} ({_size(e['bytes'])}): {e['reason']}")
    return "\n".join(lines)


def _new_run(record: dict[str, Any]) -> dict[str, Any]:
    return {"run_id": record["run_id"], "run_kind": record.get("run_kind"), "released": [], "refused": []}


def _entry(record: dict[str, Any]) -> dict[str, Any]:
    keep = ("seq", "status", "time", "round", "kind", "payload_sha256", "bytes", "rows", "epsilon_charged",
            "epsilon_cumulative", "delta", "accountant", "unit", "releases", "facts", "fields", "rule", "reason",
            "policy_version", "bundle_hash")
    entry = {k: record.get(k) for k in keep}
    redrawn = (record.get("params") or {}).get("redrawn_lost_releases")
    if redrawn:   # a release drawn afresh on the operator's word after its kept cells were lost (clients.release)
        entry["redrawn_lost"] = redrawn
    return entry


def _groups(released: list[dict[str, Any]], refused: list[dict[str, Any]]) -> list[dict[str, Any]]:
    groups: dict[_Group, dict[str, Any]] = {}
    for e in sorted(released + refused, key=lambda e: e["seq"]):
        g = groups.setdefault(
            _Group(e["round"], e["kind"]),
            {"round": e["round"], "kind": e["kind"], "messages": 0, "refused": 0, "bytes": 0,
             "epsilon_charged": 0.0, "epsilon_cumulative": None},
        )
        if e["status"] == "refused":
            g["refused"] += 1
            continue
        g["messages"] += 1
        g["bytes"] += e["bytes"]
        g["epsilon_charged"] += e["epsilon_charged"]
        if e["epsilon_cumulative"] is not None:
            g["epsilon_cumulative"] = e["epsilon_cumulative"]
    return sorted(groups.values(), key=lambda g: (g["round"], g["kind"]))


def _describe(e: dict[str, Any]) -> str:
    text = (f"#{e['seq']} {e['time']} round {e['round']} {e['kind']}: {_size(e['bytes'])}, "
            f"sha256 {e['payload_sha256'][:16]}...")
    if e["rows"] is not None:
        text += f", from {e['rows']} rows"
    if e["releases"]:
        parts = [f"noise {r['noise_multiplier']:g}, sample rate {r['sample_rate']:g}, {r['steps']} steps"
                 for r in e["releases"]]
        text += f"; DP release ({'; '.join(parts)}): epsilon +{e['epsilon_charged']:.4g}"
        if e["epsilon_cumulative"] is not None:
            text += f", node total {e['epsilon_cumulative']:.4g}"
    for table, runs in sorted((e.get("redrawn_lost") or {}).items()):
        text += (f"; {table} drawn afresh on --redraw-lost: the kept cells of run(s) {', '.join(map(str, runs))} "
                 "were lost, their charge stays")
    if e["facts"]:
        text += "; disclosed: " + ", ".join(f"{k} = {v}" for k, v in sorted(e["facts"].items()))
    return text


def _size(nbytes: int) -> str:
    for unit, factor in (("MB", 1e6), ("kB", 1e3)):
        if nbytes >= factor:
            return f"{nbytes / factor:.1f} {unit}"
    return f"{nbytes} B"
