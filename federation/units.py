"""What a run's privacy guarantee is stated per, and the kinds of run: words node and coordinator share.

DP-SGD on area-period rows (horizontal) protects one row; a release of aggregated raw records protects what
each table's contract names: one person or household (a pseudonym column), or one record where the export
has no person link. Protecting a person protects each of their records, so "record" is the weaker claim.
"""
from __future__ import annotations

import math

RUN_KINDS: tuple[str, ...] = ("horizontal", "vertical", "analytics")
ROW_UNIT, RECORD_UNIT, PERSON_UNIT = "area-period row", "record", "person or household"
UNITS: tuple[str, ...] = (ROW_UNIT, RECORD_UNIT, PERSON_UNIT)
UNIT_ALIASES: dict[str, str] = {"person": PERSON_UNIT, "household": PERSON_UNIT, "row": ROW_UNIT}


def sample_rate(rows: int, batch_size: int) -> float:
    """Poisson sampling rate of DP-SGD for an expected batch size (capped at 1)."""
    return min(1.0, batch_size / max(rows, 1))


def steps_per_round(q: float, local_epochs: float) -> int:
    """DP-SGD steps for `local_epochs` expected passes over the data at sampling rate q."""
    return max(1, math.ceil(local_epochs / q))
