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


def steps_per_round(q: float, local_epochs: float) -> int:
    """DP-SGD steps for `local_epochs` expected passes over the data at sampling rate q."""
    return max(1, math.ceil(local_epochs / q))


def expected_batch(rows: int, q: float) -> float:
    """The expected batch of a node of `rows` rows at Poisson rate q: the run proposes q, not a batch size,
    so every node gets the same rate (and noise) and a small node a small batch, not a large rate."""
    return q * rows


def min_rows_for_dp_sgd(q: float, noise_multiplier: float, min_signal_to_noise: float) -> int:
    """Fewest rows for which a step's expected batch holds `min_signal_to_noise` rows per unit of noise
    multiplier: below it the noise on a step's averaged gradient outweighs the clipped signal."""
    return max(1, math.ceil(min_signal_to_noise * noise_multiplier / q - 1e-9))


def too_small_text(name: str, rows: int, min_rows: int, q: float) -> str:
    """Why a node does not train with DP-SGD in a run, in one sentence naming it, its rows and the minimum."""
    return (f"node '{name}' has {rows} training rows, fewer than the {min_rows} DP-SGD needs at this run's privacy "
            f"(sample rate {q:g}: an expected batch of {q * rows:.2g} rows); it takes part through its person-level "
            "DP release of its blocks and label instead")
