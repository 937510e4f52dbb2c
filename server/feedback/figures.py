"""Per buurt, the figures of the feedback pages: sums of the community node's DP release over the last months.

Everything here is post-processing of `releases/community.csv` (the run kept what the node released, with
each value's noise sd): yearly rates per 1,000 residents, the share handled within the norm and the share
satisfied (ratios of released sums, shown only when the denominator is well above its own noise), and the
uncertainty of each rate in words (from the released noise, not from the data).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

REPORTS, IN_NORM, FRONTLINE = "reports_", "in_norm_", "frontliner_"
SATISFIED, UNSATISFIED = "satisfied_per_1000", "unsatisfied_per_1000"
MIN_SIGNAL_TO_NOISE = 2.0   # a rate (or a ratio's denominator) is shown only this many noise sds above zero


@dataclass(frozen=True)
class Figure:
    """One published number: its value, its noise sd (None: exact), and the release it comes from."""

    value: float
    sd: float | None
    release: str
    series: str
    periods: str

    def relative(self) -> float:
        return np.inf if self.sd is None or self.value <= 0 else (self.sd / self.value)


@dataclass(frozen=True)
class AreaFigures:
    shown: bool              # the buurt is in the release (not suppressed)
    reports: Figure | None
    frontliners: Figure | None
    in_norm_share: Figure | None
    satisfied_share: Figure | None


def _sum(rows: pd.DataFrame, prefix: str | tuple[str, ...]) -> tuple[float, float, str, str]:
    pick = rows[rows["series"].str.startswith(prefix)] if isinstance(prefix, str) else rows[rows["series"].isin(prefix)]
    value = float(pick["value"].sum())
    sd = float(np.sqrt((pick["noise_sd"].fillna(0.0) ** 2).sum()))
    return value, sd, ";".join(sorted(set(pick["release"]))), ",".join(sorted(set(pick["series"])))


def area_figures(release: pd.DataFrame, area: str, periods: list[str]) -> AreaFigures:
    """The buurt's figures over `periods` (rates summed over the months: per 1,000 residents in that time)."""
    rows = release[(release["area_code"] == area) & (release["period"].isin(periods))]
    if rows.empty:
        return AreaFigures(False, None, None, None, None)
    span = f"{periods[0]}..{periods[-1]}"

    def fig(prefix) -> Figure | None:
        v, sd, rel, series = _sum(rows, prefix)
        if v < MIN_SIGNAL_TO_NOISE * sd:   # a rate inside its own noise says nothing: not shown
            return None
        return Figure(v, sd, rel, series, span)

    def share(num, den) -> Figure | None:
        n, _, rel_n, s_n = _sum(rows, num)
        d, sd_d, rel_d, s_d = _sum(rows, den)
        if d <= MIN_SIGNAL_TO_NOISE * max(sd_d, 1e-9):
            return None
        return Figure(float(np.clip(n / d, 0.0, 1.0)), None, ";".join(sorted({rel_n, rel_d})), f"{s_n}/{s_d}", span)

    return AreaFigures(
        shown=True, reports=fig(REPORTS), frontliners=fig(FRONTLINE),
        in_norm_share=share(IN_NORM, REPORTS),
        satisfied_share=share((SATISFIED,), (SATISFIED, UNSATISFIED)),
    )


def last_periods(release: pd.DataFrame, months: int) -> list[str]:
    periods = sorted(set(release["period"].astype(str)))
    return periods[-months:]
