"""An interval per area from the run's held-out areas (split conformal), and its coverage checked there.

The held-out rows are areas the model never trained on, predicted from released (noised) inputs and
scored against the label as released: their errors carry the model's error, the release noise of the
inputs and the release noise of the label together, so an interval calibrated on them covers all three
(for the true liveability it is conservative, since the label's own noise widens it). Areas, not rows,
are exchangeable: the coverage is checked by calibrating each held-out area's interval on the other
held-out areas only, and counting how many of its rows fall inside.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Intervals:
    """A symmetric interval `prediction ± half_width` and how it did on held-out areas."""

    level: float
    half_width: float
    coverage: float            # share of held-out rows inside, each area calibrated without itself
    areas: int
    rows: int
    per_area: dict[str, float]  # coverage of each held-out area's rows

    @property
    def gap(self) -> float:
        return abs(self.coverage - self.level)

    def text(self) -> str:
        return (f"interval coverage on held-out areas: {self.coverage:.1%} (stated {self.level:.0%}; "
                f"{self.areas} areas, {self.rows} area-months, each area's interval calibrated without it); "
                f"half-width ±{self.half_width:.3f}")


def conformal_quantile(residuals: np.ndarray, level: float) -> float:
    """The split-conformal quantile: the ceil((n+1)·level)-th smallest |error| (inf when n is too small)."""
    n = len(residuals)
    k = math.ceil((n + 1) * level)
    return float("inf") if k > n or n == 0 else float(np.sort(residuals)[k - 1])


def conformal_intervals(holdout: pd.DataFrame, level: float) -> Intervals:
    """Calibrate on all held-out rows; check coverage leaving one held-out area out at a time."""
    residual = (holdout["y"] - holdout["pred"]).abs().to_numpy(np.float64)
    area = holdout["area_code"].astype(str).to_numpy()
    per_area, inside = {}, 0
    for code in sorted(set(area)):
        mine = area == code
        q = conformal_quantile(residual[~mine], level)
        covered = residual[mine] <= q
        per_area[code] = float(covered.mean())
        inside += int(covered.sum())
    return Intervals(level, conformal_quantile(residual, level), inside / max(len(residual), 1),
                     len(per_area), len(residual), per_area)
