"""Budget caps: would these candidate releases take the node's epsilon past its caps?

The projection is recomputed from the stored history plus the candidates, for the last 365 days and
for the node's whole life. `PrivacyLedger.check` only reads; `PrivacyLedger.charge` runs the same projection
and the recording in one SQLite transaction, so two processes cannot both pass against the same history.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from dp_accounting.accountants import check_delta, get_accountant
from dp_accounting.release import Release, utc_iso, utc_now
from dp_accounting.errors import BudgetExceeded, ConfigError

YEAR = timedelta(days=365)
RULE_YEAR = "privacy.epsilon_per_year"
RULE_LIFETIME = "privacy.epsilon_lifetime"


@dataclass(frozen=True)
class BudgetCaps:
    """The node's caps; a cap of None means that rule is not set."""

    epsilon_per_year: float | None
    epsilon_lifetime: float | None
    delta: float
    accountant: str = "prv"

    def __post_init__(self) -> None:
        for name in ("epsilon_per_year", "epsilon_lifetime"):
            cap = getattr(self, name)
            if cap is None:
                continue
            if isinstance(cap, bool) or not isinstance(cap, (int, float)) or not (math.isfinite(cap) and cap > 0):
                raise ConfigError(f"budget cap '{name}' must be a finite number > 0, got {cap!r}")
            object.__setattr__(self, name, float(cap))
        object.__setattr__(self, "delta", check_delta(self.delta))
        object.__setattr__(self, "accountant", get_accountant(self.accountant).name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "epsilon_per_year": self.epsilon_per_year,
            "epsilon_lifetime": self.epsilon_lifetime,
            "delta": self.delta,
            "accountant": self.accountant,
        }


@dataclass(frozen=True)
class Projection:
    """Epsilon over the last 365 days and over the node's life, with the candidates included."""

    epsilon_year: float
    epsilon_lifetime: float
    caps: BudgetCaps
    units: tuple[str, ...]
    at: str

    @property
    def year_left(self) -> float | None:
        cap = self.caps.epsilon_per_year
        return None if cap is None else cap - self.epsilon_year

    @property
    def lifetime_left(self) -> float | None:
        cap = self.caps.epsilon_lifetime
        return None if cap is None else cap - self.epsilon_lifetime

    def violations(self) -> list[tuple[str, float, float]]:
        """(rule, projected epsilon, cap) for every cap the projection exceeds."""
        found = []
        for rule, value, cap in (
            (RULE_YEAR, self.epsilon_year, self.caps.epsilon_per_year),
            (RULE_LIFETIME, self.epsilon_lifetime, self.caps.epsilon_lifetime),
        ):
            if cap is not None and value > cap:
                found.append((rule, value, cap))
        return found

    def to_dict(self) -> dict[str, Any]:
        return {
            "epsilon_year": self.epsilon_year,
            "epsilon_lifetime": self.epsilon_lifetime,
            "year_left": self.year_left,
            "lifetime_left": self.lifetime_left,
            "caps": self.caps.to_dict(),
            "units": list(self.units),
            "at": self.at,
        }


def project(
    history: Sequence[Release], candidates: Sequence[Release], caps: BudgetCaps, now: datetime | None = None
) -> Projection:
    """Epsilon of history + candidates, over the last 365 days before `now` and over all time."""
    moment = now or utc_now()
    since = utc_iso(moment - YEAR)
    accountant = get_accountant(caps.accountant)
    recent = [r for r in history if r.created_at >= since]
    lifetime = accountant.epsilon([*history, *candidates], caps.delta)
    # Nothing older than a year: both windows hold the same releases, so compute once.
    year = lifetime if len(recent) == len(history) else accountant.epsilon([*recent, *candidates], caps.delta)
    units = tuple(sorted({r.unit for r in (*history, *candidates)}))
    return Projection(epsilon_year=year, epsilon_lifetime=lifetime, caps=caps, units=units, at=utc_iso(moment))


def refuse_if_over(projection: Projection, candidates: Sequence[Release], where: str) -> None:
    """Raise BudgetExceeded naming every rule the projection breaks."""
    broken = projection.violations()
    if not broken:
        return
    caps = projection.caps
    units = sorted({r.unit for r in candidates}) or list(projection.units)
    context = (
        f"({caps.accountant.upper()}, delta {caps.delta:g}, unit {'; '.join(units) or 'none'}; {where})"
    )
    parts = []
    for rule, value, cap in broken:
        scope = "per 365 days" if rule == RULE_YEAR else "over the node's life"
        shown, shown_cap = _distinct(value, cap)
        parts.append(
            f"site policy rule '{rule}' (at most {cap:g} {scope}): this release would bring epsilon "
            f"to {shown} > cap {shown_cap}"
        )
    error = BudgetExceeded("; ".join(parts) + f" {context}")
    error.rule = broken[0][0]
    error.projection = projection
    raise error


def _distinct(value: float, cap: float) -> tuple[str, str]:
    """Format two numbers with just enough digits that they do not print as equal."""
    for digits in range(4, 17):
        a, b = f"{value:.{digits}g}", f"{cap:.{digits}g}"
        if a != b:
            return a, b
    return repr(value), repr(cap)
