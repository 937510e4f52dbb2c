"""The coordinator's run proposal: what a run will ask of each node, for the node to approve.

The coordinator writes one JSON file per run (which code, which federation config, which privacy
parameters, and for horizontal runs the hash of every block schema, node-local ones included); each
node's staff read it with `pulse-twin node approve`, which projects the epsilon the node would reach after
the run and records an approval of the bundle's code hash.
"""
from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from federation.errors import ConfigError
from federation.units import ROW_UNIT, RUN_KINDS, UNIT_ALIASES, UNITS

# The ledger's release kind of each run kind's DP releases (a DP-SGD run: one per node and round; a vertical run:
# one per private table, `clients.release.KIND`). Ledgers written before the rename still read: see
# `dp_accounting.release.LEGACY_KINDS`.
RELEASE_KINDS: dict[str, str] = {
    "horizontal": "horizontal-update",
    "vertical": "dp-aggregate",
    "analytics": "analytics-aggregate",
}
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def is_sha256(value: object) -> bool:
    """Whether `value` is a SHA-256 digest as PULSE-TWIN writes them (64 lowercase hex digits)."""
    return isinstance(value, str) and _SHA256.match(value) is not None


@dataclass(frozen=True)
class PrivacyPlan:
    """The DP schedule a run plans on each node: noise calibrated once for all its rounds."""

    target_epsilon: float
    delta: float
    noise_multiplier: float
    sample_rate: float
    steps_per_round: int
    rounds: int
    unit: str = ROW_UNIT
    mechanism: str = "subsampled_gaussian"
    # DP-SGD's schedule (horizontal runs): every node samples at `sample_rate` (its expected batch is that
    # times its rows) and calibrates the same noise; a node with fewer than `min_rows` rows takes part
    # through its person-level DP release instead. None for runs of one Gaussian release per table.
    local_epochs: float | None = None
    loss_noise_multiplier: float | None = None
    min_rows: int | None = None
    eval_noise_multiplier: float | None = None
    # A dry run trains on each node's synthetic twin: nothing is charged on a node's real ledger.
    dry_run: bool = False


@dataclass(frozen=True)
class RunProposal:
    """One run as the coordinator proposes it; `to_json`/`from_json` keep it as plain data."""

    run_name: str
    run_kind: str
    bundle_hash: str
    privacy: PrivacyPlan
    federation: dict[str, Any] = field(default_factory=dict)
    # Horizontal runs: every block schema the run uses, by name -> its hash (`federation.blocks`), so a
    # node's approval covers its own node-local blocks and a changed one needs a new approval.
    block_schemas: dict[str, str] = field(default_factory=dict)

    def planned_releases(self) -> list[Any]:
        """The releases the run would charge to one DP-SGD node's ledger: per round the update, and the
        noised training loss and held-out sums when the run asks for them."""
        from dp_accounting import Release
        from federation import heldout

        p = self.privacy
        out = []
        if p.dry_run:
            return out
        for r in range(1, p.rounds + 1):
            out.append(Release(mechanism=p.mechanism, noise_multiplier=p.noise_multiplier, sample_rate=p.sample_rate,
                               steps=p.steps_per_round, unit=p.unit, run_id=self.run_name, round=r,
                               kind=RELEASE_KINDS[self.run_kind]))
            if self.run_kind == "horizontal" and p.loss_noise_multiplier:
                out.append(Release(noise_multiplier=p.loss_noise_multiplier, sample_rate=p.sample_rate, steps=1,
                                   unit=p.unit, run_id=self.run_name, round=r, kind="horizontal-loss"))
            if self.run_kind == "horizontal" and p.eval_noise_multiplier:
                out.append(heldout.release(p.eval_noise_multiplier, self.run_name, r))
        return out

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    def sha256(self) -> str:
        """Hash of the proposal's canonical JSON: an approval names exactly what was approved."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":")).encode()).hexdigest()

    def save(self, path: Path) -> None:
        Path(path).write_text(self.to_json(), encoding="utf-8")

    @classmethod
    def from_json(cls, text: str, source: str = "<proposal>") -> "RunProposal":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ConfigError(f"{source}: not valid JSON (line {err.lineno}: {err.msg})") from None
        return cls.from_dict(data, source)

    @classmethod
    def load(cls, path: Path) -> "RunProposal":
        try:
            text = Path(path).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(f"{path}: proposal file not found") from None
        except IsADirectoryError:
            raise ConfigError(f"{path}: is a directory; give the proposal's JSON file") from None
        except UnicodeDecodeError:
            raise ConfigError(f"{path}: not a UTF-8 text file") from None
        return cls.from_json(text, str(path))

    @classmethod
    def from_dict(cls, data: Any, source: str = "<proposal>") -> "RunProposal":
        """Validate a proposal; every error names the source and the field."""
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: expected a JSON object at the top level")
        _known(data, {"run_name", "run_kind", "bundle_hash", "privacy", "federation", "block_schemas"}, source, "")
        run_name = data.get("run_name")
        if not isinstance(run_name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}", run_name):
            raise ConfigError(f"{source}: field 'run_name' must be a name of letters, digits, '.', '_', '-'")
        run_kind = data.get("run_kind")
        if run_kind not in RUN_KINDS:
            raise ConfigError(f"{source}: field 'run_kind' must be one of {', '.join(RUN_KINDS)}, got {run_kind!r}")
        bundle_hash = data.get("bundle_hash")
        if not is_sha256(bundle_hash):
            raise ConfigError(f"{source}: field 'bundle_hash' must be a SHA-256 code hash (64 lower-case hex digits)")
        federation = data.get("federation", {})
        if not isinstance(federation, dict):
            raise ConfigError(f"{source}: field 'federation' must be an object")
        block_schemas = data.get("block_schemas", {})
        if not isinstance(block_schemas, dict) or not all(
                isinstance(k, str) and is_sha256(v) for k, v in block_schemas.items()):
            raise ConfigError(f"{source}: field 'block_schemas' must map block names to SHA-256 schema hashes")
        privacy = data.get("privacy")
        if not isinstance(privacy, dict):
            raise ConfigError(f"{source}: field 'privacy' must be an object")
        fields = {"target_epsilon", "delta", "noise_multiplier", "sample_rate", "steps_per_round", "rounds",
                  "unit", "mechanism", "local_epochs", "loss_noise_multiplier", "min_rows", "eval_noise_multiplier",
                  "dry_run"}
        _known(privacy, fields, source, "privacy.")
        unit = privacy.get("unit", PrivacyPlan.unit)
        mechanism = privacy.get("mechanism", PrivacyPlan.mechanism)
        for name, value in (("unit", unit), ("mechanism", mechanism)):
            if not isinstance(value, str) or not value.strip():
                raise ConfigError(f"{source}: field 'privacy.{name}' must be a non-empty text")
        unit = UNIT_ALIASES.get(unit.strip().lower(), unit.strip().lower())
        if unit not in UNITS:
            raise ConfigError(f"{source}: field 'privacy.unit' must be one of {', '.join(UNITS)} (what the "
                              f"guarantee is stated per); got {privacy.get('unit')!r}")
        plan = PrivacyPlan(
            target_epsilon=_num(privacy, "target_epsilon", source, positive=True),
            delta=_num(privacy, "delta", source, positive=True, below_one=True),
            noise_multiplier=_num(privacy, "noise_multiplier", source, positive=True),
            sample_rate=_num(privacy, "sample_rate", source, positive=True, below_one=True, allow_one=True),
            steps_per_round=int(_num(privacy, "steps_per_round", source, positive=True, integer=True)),
            rounds=int(_num(privacy, "rounds", source, positive=True, integer=True)),
            unit=unit,
            mechanism=mechanism,
            local_epochs=_optional(privacy, "local_epochs", source),
            loss_noise_multiplier=_optional(privacy, "loss_noise_multiplier", source, zero_ok=True),
            min_rows=_optional(privacy, "min_rows", source, integer=True),
            eval_noise_multiplier=_optional(privacy, "eval_noise_multiplier", source, zero_ok=True),
            dry_run=_flag(privacy, "dry_run", source),
        )
        if plan.steps_per_round * plan.rounds > MAX_PLANNED_STEPS:
            raise ConfigError(f"{source}: fields 'privacy.steps_per_round' x 'privacy.rounds' plan "
                              f"{plan.steps_per_round * plan.rounds:,} DP steps; a node accounts for at most "
                              f"{MAX_PLANNED_STEPS:,} in one run (such a schedule has no useful guarantee anyway)")
        return cls(run_name=run_name, run_kind=run_kind, bundle_hash=bundle_hash, privacy=plan, federation=federation,
                   block_schemas=block_schemas)


MAX_PLANNED_STEPS = 10_000_000


def _known(data: dict, known: set[str], source: str, prefix: str) -> None:
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{source}: unknown field '{prefix}{unknown[0]}' (known: {', '.join(sorted(known))})")


def _flag(data: dict, name: str, source: str) -> bool:
    value = data.get(name, False)
    if not isinstance(value, bool):
        raise ConfigError(f"{source}: field 'privacy.{name}' must be true or false, got {value!r}")
    return value


def _optional(data: dict, name: str, source: str, integer: bool = False, zero_ok: bool = False) -> Any:
    """An optional schedule field: absent or null, else a number > 0 (>= 0 with `zero_ok`)."""
    if data.get(name) is None:
        return None
    value = data[name]
    if zero_ok and value == 0 and not isinstance(value, bool):
        return 0.0
    number = _num(data, name, source, positive=True, integer=integer)
    return int(number) if integer else number


def _num(
    data: dict, name: str, source: str, positive: bool = False, below_one: bool = False,
    allow_one: bool = False, integer: bool = False,
) -> float:
    field_name = f"privacy.{name}"
    if name not in data:
        raise ConfigError(f"{source}: field '{field_name}' is missing")
    value = data[name]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{source}: field '{field_name}' must be a number, got {value!r}")
    if integer and value != int(value):
        raise ConfigError(f"{source}: field '{field_name}' must be a whole number, got {value!r}")
    if positive and value <= 0:
        raise ConfigError(f"{source}: field '{field_name}' must be > 0, got {value!r}")
    if below_one and (value > 1 or (value == 1 and not allow_one)):
        raise ConfigError(f"{source}: field '{field_name}' must be {'<=' if allow_one else '<'} 1, got {value!r}")
    return float(value)
