"""Shares out --records: fixed tables keep their natural size, absorbers take the rest.

Tables calibrated to real figures (crime at CBS rates) or tied to the population (case stocks,
registers) are `fixed`; the survey and the public-space reports absorb the remaining volume in
proportion to weight x population-months, each above its minimum.
"""
from __future__ import annotations

from federation.errors import ConfigError
from devtools.synthetic.context import Demand

Key = tuple[str, str, str]  # city, node, table


def allocate(demands: dict[Key, Demand], records: int, context: str) -> dict[Key, float]:
    """Expected rows for every absorber table (fixed tables are left out)."""
    fixed = sum(d.fixed for d in demands.values())
    minimum = sum(d.minimum for d in demands.values())
    weight = sum(d.weight for d in demands.values())
    needed = int(fixed + minimum + 0.5)
    if records < needed or weight <= 0:
        raise ConfigError(
            f"--records {records:,} is too small for {context}: the tables need at least {needed:,} records "
            f"({int(fixed):,} in tables of fixed size, {int(minimum):,} for the minimum survey and report "
            f"volume). Raise --records to at least {needed:,}, or lower --months, or generate fewer --cities."
        )
    free = records - fixed - minimum
    return {key: d.minimum + free * d.weight / weight for key, d in demands.items() if d.weight > 0}
