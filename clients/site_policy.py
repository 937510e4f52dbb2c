"""The node's site policy: what this node agrees to release, decided on the node alone.

`node_dir/site_policy.yaml` is written by the partner's IT team (from a template in
`configs/site_policy/`); the server has no way to change it. Bundles approved with
`pulse-twin node approve` are appended to `node_dir/state/approvals.jsonl` and count as approved
bundles. `policy_version` is the SHA-256 of the file's bytes, so every egress record names the exact
policy it was checked against.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path

from dp_accounting.accountants import ACCOUNTANTS
from dp_accounting.budget import BudgetCaps
from federation.config import load_yaml
from federation.errors import ConfigError, PolicyRefusal
from federation.units import PERSON_UNIT, RECORD_UNIT, ROW_UNIT, RUN_KINDS
from federation.proposal import is_sha256

POLICY_FILE = "site_policy.yaml"
# The largest delta a site may account at. delta is the chance that the epsilon guarantee fails outright:
# a delta such as 0.5 makes every epsilon 0 and no cap binds. 1e-5 is far below 1 / (persons of any node
# here); a smaller one only strengthens what the node states.
MAX_DELTA = 1e-5
APPROVALS_FILE = Path("state") / "approvals.jsonl"


def units_given(run_kind: str, table_units: dict[str, str]) -> dict[str, str]:
    """Per released table, the unit this node's releases of `run_kind` protect (from its contract's
    `privacy.unit` per table, as its features manifest records them; public tables release no noise)."""
    if run_kind == "horizontal":
        return {"area-period rows": ROW_UNIT}
    return {t: RECORD_UNIT if u == RECORD_UNIT else PERSON_UNIT for t, u in table_units.items() if u != "public"}


def check_unit(run_kind: str, claimed: str, table_units: dict[str, str]) -> None:
    """A proposal may state its guarantee only per a unit every release of this node protects."""
    given = units_given(run_kind, table_units)
    if not given:
        raise RuleRefusal("privacy.unit", f"a {run_kind} run releases this node's tables, and its features manifest "
                          "names none (build the features with `pulse-twin features` first)", where="data contract")
    short = {t: u for t, u in given.items() if not _protects(u, claimed)}
    if short:
        table, unit = next(iter(short.items()))
        raise RuleRefusal("privacy.unit", f"the proposal states its guarantee per {claimed}, but this node's "
                          f"{run_kind} releases protect one {unit} ({table}): a weaker guarantee than the proposal "
                          "claims", where="data contract")


def _protects(given: str, claimed: str) -> bool:
    if given == ROW_UNIT or claimed == ROW_UNIT:
        return given == claimed
    return claimed == RECORD_UNIT or given == PERSON_UNIT


class RuleRefusal(PolicyRefusal):
    """A site-policy rule refuses an action; `rule` is the policy field that decided it."""

    def __init__(self, rule: str, message: str, where: str = "site policy rule") -> None:
        super().__init__(f"refused by {where} '{rule}': {message}")
        self.rule = rule


@dataclass(frozen=True)
class PrivacyPolicy:
    """The node's privacy caps, always read together with delta and the accountant."""

    delta: float
    epsilon_per_year: float
    epsilon_lifetime: float
    accountant: str


@dataclass(frozen=True)
class ParameterBounds:
    """Limits on the parameters of any single release or run."""

    min_noise_multiplier: float
    max_sample_rate: float
    min_rows_per_release: int
    max_rounds_per_run: int
    max_bytes_per_message: int


@dataclass(frozen=True)
class SitePolicy:
    """A validated site policy plus the bundles approved on this node."""

    partner: str
    privacy: PrivacyPolicy
    allowed_run_kinds: tuple[str, ...]
    bounds: ParameterBounds
    approved_bundles: frozenset[str]
    policy_version: str
    path: Path

    def budget_caps(self) -> BudgetCaps:
        """The caps in the form the privacy ledger checks them."""
        p = self.privacy
        return BudgetCaps(
            epsilon_per_year=p.epsilon_per_year,
            epsilon_lifetime=p.epsilon_lifetime,
            delta=p.delta,
            accountant=p.accountant,
        )

    # The rules. Each raises RuleRefusal naming the policy field it enforces.

    def check_run_kind(self, run_kind: str) -> None:
        if run_kind not in self.allowed_run_kinds:
            raise RuleRefusal(
                "allowed_run_kinds",
                f"run kind '{run_kind}' is not allowed on this node (allowed: {', '.join(self.allowed_run_kinds)})",
            )

    def check_bundle(self, bundle_hash: str | None) -> None:
        if not bundle_hash:
            raise RuleRefusal("approved_bundles", "the message does not name the code bundle that produced it")
        if bundle_hash not in self.approved_bundles:
            raise RuleRefusal(
                "approved_bundles",
                f"app bundle {bundle_hash[:12]}... is not approved on this node "
                "(approve a run proposal for it with `pulse-twin node approve`)",
            )

    def check_noise_multiplier(self, noise_multiplier: float) -> None:
        if not noise_multiplier >= self.bounds.min_noise_multiplier:
            raise RuleRefusal(
                "bounds.min_noise_multiplier",
                f"noise multiplier {noise_multiplier:g} is below the node's minimum "
                f"{self.bounds.min_noise_multiplier:g}",
            )

    def check_delta(self, delta: float) -> None:
        """A run may not state its guarantee at a larger delta than the node accounts at."""
        if not delta <= self.privacy.delta:
            raise RuleRefusal(
                "privacy.delta",
                f"the proposal states its guarantee at delta {delta:g}, above the node's delta "
                f"{self.privacy.delta:g}: a larger delta is a weaker guarantee than this node gives",
            )

    def check_sample_rate(self, sample_rate: float) -> None:
        if not sample_rate <= self.bounds.max_sample_rate:
            raise RuleRefusal(
                "bounds.max_sample_rate",
                f"sample rate {sample_rate:g} is above the node's maximum {self.bounds.max_sample_rate:g}",
            )

    def check_rows(self, rows: int) -> None:
        if rows < self.bounds.min_rows_per_release:
            raise RuleRefusal(
                "bounds.min_rows_per_release",
                f"the release is computed from {rows} rows, fewer than the node's minimum "
                f"{self.bounds.min_rows_per_release}",
            )
        self.check_delta_rows(rows)

    def check_delta_rows(self, rows: int) -> None:
        """delta is the chance the guarantee fails outright; at delta >= 1/rows a mechanism that publishes one
        row exactly would meet (epsilon, delta) with epsilon 0, so such a delta guarantees nothing."""
        if rows > 0 and not self.privacy.delta < 1.0 / rows:
            raise RuleRefusal(
                "privacy.delta",
                f"the node's delta {self.privacy.delta:g} is not below 1/(the {rows:,} rows of the release) = "
                f"{1.0 / rows:.3g}: at such a delta releasing one row exactly would count as private; lower delta "
                "in the site policy",
            )

    def check_rounds(self, rounds: int) -> None:
        if rounds > self.bounds.max_rounds_per_run:
            raise RuleRefusal(
                "bounds.max_rounds_per_run",
                f"round {rounds} is beyond the node's maximum of {self.bounds.max_rounds_per_run} rounds per run",
            )

    def check_bytes(self, nbytes: int) -> None:
        if nbytes > self.bounds.max_bytes_per_message:
            raise RuleRefusal(
                "bounds.max_bytes_per_message",
                f"the message has {nbytes:,} bytes, more than the node's maximum "
                f"{self.bounds.max_bytes_per_message:,}",
            )


def policy_path(node_dir: Path) -> Path:
    return Path(node_dir) / POLICY_FILE


def approvals_path(node_dir: Path) -> Path:
    return Path(node_dir) / APPROVALS_FILE


def load_site_policy(node_dir: Path) -> SitePolicy:
    """Read and validate `node_dir/site_policy.yaml` and the node's approvals."""
    path = policy_path(node_dir)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: no site policy (create one with `pulse-twin node init`)"
        ) from None
    data = load_yaml(path)
    policy = parse_site_policy(data, path, hashlib.sha256(raw).hexdigest())
    approved = set(policy.approved_bundles) | {a["bundle_hash"] for a in read_approvals(node_dir)}
    return replace(policy, approved_bundles=frozenset(approved))


def parse_site_policy(data: dict, path: Path, policy_version: str) -> SitePolicy:
    """Validate a policy mapping; every error names the file and the field."""
    known = {"partner", "privacy", "allowed_run_kinds", "bounds", "approved_bundles"}
    _no_unknown(data, known, path, "")
    privacy = _section(data, "privacy", path)
    _no_unknown(privacy, {"delta", "epsilon_per_year", "epsilon_lifetime", "accountant"}, path, "privacy.")
    bounds = _section(data, "bounds", path)
    bound_fields = {
        "min_noise_multiplier", "max_sample_rate", "min_rows_per_release", "max_rounds_per_run",
        "max_bytes_per_message",
    }
    _no_unknown(bounds, bound_fields, path, "bounds.")

    partner = data.get("partner")
    if not isinstance(partner, str) or not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", partner or ""):
        raise ConfigError(f"{path}: field 'partner' must be a lower-case name such as 'police', got {partner!r}")
    accountant = privacy.get("accountant")
    # Only accountants whose epsilon is a bound exist; a Gaussian-DP approximation is never one.
    if accountant not in ACCOUNTANTS:
        raise ConfigError(
            f"{path}: field 'privacy.accountant' must be one of {', '.join(ACCOUNTANTS)}, got {accountant!r}"
        )
    privacy_policy = PrivacyPolicy(
        delta=_number(privacy, "delta", path, "privacy.", low=0.0, high=MAX_DELTA, open_low=True),
        epsilon_per_year=_number(privacy, "epsilon_per_year", path, "privacy.", low=0.0, open_low=True),
        epsilon_lifetime=_number(privacy, "epsilon_lifetime", path, "privacy.", low=0.0, open_low=True),
        accountant=accountant,
    )
    if privacy_policy.epsilon_per_year > privacy_policy.epsilon_lifetime:
        raise ConfigError(
            f"{path}: field 'privacy.epsilon_per_year' ({privacy_policy.epsilon_per_year:g}) is larger than "
            f"'privacy.epsilon_lifetime' ({privacy_policy.epsilon_lifetime:g})"
        )
    kinds = data.get("allowed_run_kinds")
    if not isinstance(kinds, list) or not kinds or any(k not in RUN_KINDS for k in kinds):
        raise ConfigError(
            f"{path}: field 'allowed_run_kinds' must be a non-empty list of {', '.join(RUN_KINDS)}, got {kinds!r}"
        )
    bounds_policy = ParameterBounds(
        min_noise_multiplier=_number(bounds, "min_noise_multiplier", path, "bounds.", low=0.0, open_low=True),
        max_sample_rate=_number(bounds, "max_sample_rate", path, "bounds.", low=0.0, high=1.0, open_low=True),
        min_rows_per_release=int(_number(bounds, "min_rows_per_release", path, "bounds.", low=1, integer=True)),
        max_rounds_per_run=int(_number(bounds, "max_rounds_per_run", path, "bounds.", low=1, integer=True)),
        max_bytes_per_message=int(_number(bounds, "max_bytes_per_message", path, "bounds.", low=1, integer=True)),
    )
    bundles = data.get("approved_bundles") or []
    if not isinstance(bundles, list) or any(not is_sha256(b) for b in bundles):
        raise ConfigError(
            f"{path}: field 'approved_bundles' must be a list of SHA-256 code hashes (64 lower-case hex digits)"
        )
    return SitePolicy(
        partner=partner,
        privacy=privacy_policy,
        allowed_run_kinds=tuple(dict.fromkeys(kinds)),
        bounds=bounds_policy,
        approved_bundles=frozenset(bundles),
        policy_version=policy_version,
        path=path,
    )


def read_approvals(node_dir: Path) -> list[dict]:
    """The approvals recorded by `pulse-twin node approve`, oldest first."""
    path = approvals_path(node_dir)
    if not path.exists():
        return []
    approvals = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise ConfigError(f"{path}, line {number}: not a JSON record ({err.msg})") from None
        if not isinstance(record, dict) or not is_sha256(record.get("bundle_hash")):
            raise ConfigError(f"{path}, line {number}: field 'bundle_hash' is missing or not a SHA-256 hash")
        approvals.append(record)
    return approvals


def append_approval(node_dir: Path, approval: dict) -> None:
    """Append one approval record; the file is only ever appended to."""
    if not is_sha256(approval.get("bundle_hash")):
        raise ConfigError(f"approval has no valid 'bundle_hash': {approval.get('bundle_hash')!r}")
    path = approvals_path(node_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(approval, sort_keys=True, separators=(",", ":")) + "\n"
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(line)
        handle.flush()
        os.fsync(handle.fileno())


def _section(data: dict, name: str, path: Path) -> dict:
    section = data.get(name)
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: field '{name}' must be a mapping, got {section!r}")
    return section


def _no_unknown(data: dict, known: set[str], path: Path, prefix: str) -> None:
    unknown = sorted(set(map(str, data)) - known)
    if unknown:
        raise ConfigError(
            f"{path}: unknown field '{prefix}{unknown[0]}' (known: {', '.join(sorted(known))})"
        )


def _number(
    data: dict,
    name: str,
    path: Path,
    prefix: str,
    low: float | None = None,
    high: float | None = None,
    open_low: bool = False,
    open_high: bool = False,
    integer: bool = False,
) -> float:
    """One numeric field; YAML's `1e-5` (read as a string) is accepted as a number."""
    field = f"{prefix}{name}"
    if name not in data:
        raise ConfigError(f"{path}: field '{field}' is missing")
    value = data[name]
    if isinstance(value, str):
        try:
            value = float(value.replace("_", ""))
        except ValueError:
            pass
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{path}: field '{field}' must be a number, got {data[name]!r}")
    if integer and float(value) != int(value):
        raise ConfigError(f"{path}: field '{field}' must be a whole number, got {data[name]!r}")
    too_low = low is not None and (value <= low if open_low else value < low)
    too_high = high is not None and (value >= high if open_high else value > high)
    if too_low or too_high:
        lo = "" if low is None else ("> " if open_low else ">= ") + f"{low:g}"
        hi = "" if high is None else ("< " if open_high else "<= ") + f"{high:g}"
        raise ConfigError(f"{path}: field '{field}' must be {' and '.join(x for x in (lo, hi) if x)}, got {value!r}")
    return float(value)
