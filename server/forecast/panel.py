"""An area x period panel of one series, with NaN where a period was not released, and where it came from.

Forecast features are post-processing of releases only (ARCHITECTURE principle 8; no privacy cost). A
panel says whether it holds what the coordinator really holds (`released=True`: a DP release or a published
index) or exact data (`released=False`: the yardstick's reference only). Everything in this package that
builds features or forecasts refuses an exact panel unless the caller asks for the reference explicitly,
so a real run cannot read an exact table by mistake.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from federation.errors import PulseTwinError

KEYS = ["area_code", "period"]


class ExactDataError(PulseTwinError):
    """An exact (unreleased) table reached code that may only read released values."""


def period_range(first: str, last: str) -> tuple[str, ...]:
    """Every period from `first` to `last` inclusive: months (`YYYY-MM`) or years (`YYYY`)."""
    freq = "M" if len(str(first)) == 7 else "Y"
    return tuple(str(p) for p in pd.period_range(str(first), str(last), freq=freq))


@dataclass(frozen=True)
class Panel:
    """One series per area: `values[i, t]` of area `areas[i]` in period `periods[t]` (NaN: not released).

    `noise_sd` (same shape, optional): the release's own noise standard deviation per cell (0 or None: exact
    or published). `released`: True if the values are what the coordinator holds (releases), False if exact.
    """

    areas: tuple[str, ...]
    periods: tuple[str, ...]
    values: np.ndarray
    released: bool
    noise_sd: np.ndarray | None = None
    name: str = "label"

    def __post_init__(self) -> None:
        shape = (len(self.areas), len(self.periods))
        if self.values.shape != shape:
            raise ValueError(f"panel '{self.name}': values of shape {self.values.shape}, expected {shape}")
        if self.noise_sd is not None and self.noise_sd.shape != shape:
            raise ValueError(f"panel '{self.name}': noise_sd of shape {self.noise_sd.shape}, expected {shape}")

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, column: str = "label", *, released: bool,
                   areas: Sequence[str] | None = None, periods: Sequence[str] | None = None,
                   noise: pd.DataFrame | None = None) -> "Panel":
        """From long rows (area_code, period, `column`). Periods run without gaps from the first to the last
        (a period missing from `frame` is NaN, never zero); `noise`: rows of the same keys with the cell's
        noise sd in `column`."""
        rows = frame[KEYS + [column]].astype({"area_code": str, "period": str})
        areas = tuple(sorted(set(rows["area_code"]))) if areas is None else tuple(str(a) for a in areas)
        if periods is None:
            seen = sorted(set(rows["period"]))
            if not seen:
                raise ValueError(f"panel '{column}': no rows")
            periods = period_range(seen[0], seen[-1])
        periods = tuple(str(p) for p in periods)
        values = _grid(rows, column, areas, periods)
        sd = None if noise is None else _grid(noise[KEYS + [column]].astype({"area_code": str, "period": str}),
                                              column, areas, periods)
        return cls(areas, periods, values, released, sd, column)

    def index_of(self, period: str) -> int:
        return self.periods.index(str(period))

    def require_released(self, reference: bool = False) -> "Panel":
        """This panel, if it holds released values or the caller builds the exact reference (`reference`)."""
        if not self.released and not reference:
            raise ExactDataError(f"panel '{self.name}' holds exact values; forecast features read released "
                                 "values only (pass reference=True for the yardstick's exact reference)")
        return self

    def filled(self) -> np.ndarray:
        """Each cell as the last released value up to it (last observation carried forward; NaN before the
        first release)."""
        out = self.values.copy()
        for t in range(1, out.shape[1]):
            gap = np.isnan(out[:, t])
            out[gap, t] = out[gap, t - 1]
        return out

    def only_periods(self, periods: Iterable[str]) -> "Panel":
        """The same panel with every period outside `periods` set to NaN: e.g. a survey's public wave months,
        where a release over months without a wave holds only noise."""
        keep = np.isin(np.asarray(self.periods), [str(p) for p in periods])
        values = np.where(keep[None, :], self.values, np.nan)
        sd = None if self.noise_sd is None else np.where(keep[None, :], self.noise_sd, np.nan)
        return replace(self, values=values, noise_sd=sd)

    def select(self, areas: Iterable[str]) -> "Panel":
        """The same panel restricted to (and ordered as) `areas`; an unknown area gets an all-NaN row."""
        areas = tuple(str(a) for a in areas)
        pos = {a: i for i, a in enumerate(self.areas)}
        idx = np.array([pos.get(a, -1) for a in areas])

        def take(m: np.ndarray | None) -> np.ndarray | None:
            if m is None:
                return None
            out = np.full((len(areas), m.shape[1]), np.nan)
            out[idx >= 0] = m[idx[idx >= 0]]
            return out

        return replace(self, areas=areas, values=take(self.values), noise_sd=take(self.noise_sd))


def _grid(rows: pd.DataFrame, column: str, areas: Sequence[str], periods: Sequence[str]) -> np.ndarray:
    a = {x: i for i, x in enumerate(areas)}
    p = {x: i for i, x in enumerate(periods)}
    ai = rows["area_code"].map(a)
    pi = rows["period"].map(p)
    ok = ai.notna() & pi.notna()
    out = np.full((len(areas), len(periods)), np.nan)
    out[ai[ok].astype(int).to_numpy(), pi[ok].astype(int).to_numpy()] = pd.to_numeric(
        rows.loc[ok, column], errors="coerce").to_numpy(np.float64)
    return out


def block_panels(frame: pd.DataFrame, *, released: bool, areas: Sequence[str], periods: Sequence[str],
                 noise: pd.DataFrame | None = None, prefix: str = "") -> dict[str, Panel]:
    """One panel per feature column of a block's rows (a partner's release), on the label's grid."""
    out = {}
    for column in [c for c in frame.columns if c not in KEYS]:
        panel = Panel.from_frame(frame, column, released=released, areas=areas, periods=periods,
                                 noise=noise if noise is not None and column in noise.columns else None)
        out[f"{prefix}{column}"] = replace(panel, name=f"{prefix}{column}")
    return out


def blocks_to_panels(blocks: Mapping[str, pd.DataFrame], *, released: bool, areas: Sequence[str],
                     periods: Sequence[str], noise: Mapping[str, pd.DataFrame] | None = None
                     ) -> dict[str, dict[str, Panel]]:
    """{block: {feature: Panel}} for every block frame (exact or released, as `released` says)."""
    noise = noise or {}
    return {b: block_panels(f, released=released, areas=areas, periods=periods, noise=noise.get(b))
            for b, f in blocks.items()}

