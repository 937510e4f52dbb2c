"""One DP release as plain data: what the accountants compose and the ledger stores.

A `Release` is one Poisson-subsampled Gaussian schedule (noise multiplier, sample rate, steps) that
left the node, with the unit of privacy it protects and the run and round it belongs to. A plain
Gaussian release of aggregates (`mechanism="gaussian"`: noise standard deviation = noise multiplier x
the L2 sensitivity of one unit, named in `sensitivity`, over the raw table named in `table`) is the
same schedule with sample rate 1 and one step, so every accountant composes both kinds alike. It is
validated on construction so that nonsense never reaches the ledger or an accountant.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

from dp_accounting.errors import ConfigError

MECHANISMS: tuple[str, ...] = ("subsampled_gaussian", "gaussian")
# Release kinds of older ledgers, by the name they have now (kept as stored: the egress log vouches for the
# ledger field by field; only reports name them anew).
LEGACY_KINDS: dict[str, str] = {"vertical-embeddings": "dp-aggregate"}


def kind_name(kind: str) -> str:
    """A release kind as reports name it today (an older ledger's kind by its current name)."""
    return LEGACY_KINDS.get(kind, kind)
DEFAULT_UNIT = "area-period row"


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def utc_iso(moment: datetime | str) -> str:
    """Normalise a timestamp to UTC ISO 8601 with microseconds, so that text order is time order."""
    if isinstance(moment, str):
        try:
            moment = datetime.fromisoformat(moment)
        except ValueError:
            raise ConfigError(f"timestamp {moment!r} is not an ISO 8601 date and time") from None
    if not isinstance(moment, datetime):
        raise ConfigError(f"timestamp {moment!r} is not a date and time")
    if moment.tzinfo is None:
        raise ConfigError(f"timestamp {moment.isoformat()} has no time zone; give it in UTC (e.g. ...+00:00)")
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds")


def _now_iso() -> str:
    return utc_iso(utc_now())


@dataclass(frozen=True, kw_only=True)
class Release:
    """One subsampled-Gaussian release charged to the node's privacy ledger.

    `steps` counts the noisy steps of this release (e.g. the local DP-SGD steps of one round);
    `unit` is the neighbouring relation the noise protects (adding or removing one such unit).
    """

    noise_multiplier: float
    sample_rate: float
    steps: int
    run_id: str
    round: int
    kind: str
    unit: str = DEFAULT_UNIT
    mechanism: str = "subsampled_gaussian"
    created_at: str = field(default_factory=_now_iso)
    node: str | None = None
    table: str | None = None
    sensitivity: float | None = None

    def __post_init__(self) -> None:
        sigma, q, steps = self.noise_multiplier, self.sample_rate, self.steps
        where = f"release of run {self.run_id!r} round {self.round!r}"
        if isinstance(sigma, bool) or not isinstance(sigma, (int, float)) or not (math.isfinite(sigma) and sigma > 0):
            raise ConfigError(f"{where}: field 'noise_multiplier' must be a finite number > 0, got {sigma!r}")
        if isinstance(q, bool) or not isinstance(q, (int, float)) or not (0 < q <= 1):
            raise ConfigError(f"{where}: field 'sample_rate' must be in (0, 1], got {q!r}")
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ConfigError(f"{where}: field 'steps' must be a whole number >= 1, got {steps!r}")
        if isinstance(self.round, bool) or not isinstance(self.round, int) or self.round < 0:
            raise ConfigError(f"{where}: field 'round' must be a whole number >= 0, got {self.round!r}")
        for name in ("run_id", "kind", "unit"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise ConfigError(f"{where}: field '{name}' must be a non-empty text, got {value!r}")
        if self.mechanism not in MECHANISMS:
            raise ConfigError(
                f"{where}: field 'mechanism' must be one of {', '.join(MECHANISMS)}, got {self.mechanism!r}"
            )
        if self.mechanism == "gaussian" and q != 1:
            raise ConfigError(f"{where}: a 'gaussian' release claims no subsampling; its sample_rate must be 1, got {q!r}")
        sens = self.sensitivity
        if sens is not None and (isinstance(sens, bool) or not isinstance(sens, (int, float))
                                 or not (math.isfinite(sens) and sens > 0)):
            raise ConfigError(f"{where}: field 'sensitivity' must be a finite number > 0 or absent, got {sens!r}")
        if self.table is not None and (not isinstance(self.table, str) or not self.table.strip()):
            raise ConfigError(f"{where}: field 'table' must be a non-empty text or absent, got {self.table!r}")
        if self.node is not None and (not isinstance(self.node, str) or not self.node.strip()):
            raise ConfigError(f"{where}: field 'node' must be a non-empty text or absent, got {self.node!r}")
        object.__setattr__(self, "noise_multiplier", float(sigma))
        object.__setattr__(self, "sample_rate", float(q))
        try:
            created_at = utc_iso(self.created_at)
        except ConfigError as err:
            raise ConfigError(f"{where}: field 'created_at': {err}") from None
        object.__setattr__(self, "created_at", created_at)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
