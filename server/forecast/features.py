"""Forecast features at an origin t for horizon h, built from RELEASED values only (post-processing).

The label's own released history: last value, lags, trailing means over several windows, trend (slope per
period) over several windows, the seasonal value. Each partner block's features: last value, trailing
means and trend. Every function reads periods up to and including t only, and refuses an exact panel
unless the caller builds the yardstick's exact reference (`reference=True`). One set of releases serves
every horizon: only the seasonal feature and the target depend on h.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from server.forecast.naive import seasonal_naive, trailing_mean
from server.forecast.panel import Panel

LABEL_LAGS: tuple[int, ...] = (1, 2, 3, 6, 12)
LABEL_WINDOWS: tuple[int, ...] = (3, 6, 12, 24)
LABEL_TRENDS: tuple[int, ...] = (3, 6, 12)
BLOCK_WINDOWS: tuple[int, ...] = (3, 12)
BLOCK_TRENDS: tuple[int, ...] = (6,)
# A feature's rise: log(1 + its 3-period mean) - log(1 + its 12-period mean), released values below 0 (noise)
# read as 0. The change against the area's own level on a relative scale, so that a doubling counts the same
# in a quiet buurt as in a busy one (partners' counts and rates move multiplicatively with what drives them).
BLOCK_RISE: tuple[int, int] = (3, 12)
# The columns of each partner feature, in order (`block_history`); `rise` is the last.
BLOCK_COLUMNS: tuple[str, ...] = ("last", *(f"mean{w}" for w in BLOCK_WINDOWS),
                                  *(f"trend{w}" for w in BLOCK_TRENDS), "rise")


def slope(panel: Panel, t: int, window: int) -> np.ndarray:
    """Least-squares slope per period of each area's released values in t - window + 1 .. t (gaps skipped;
    0 where fewer than two values)."""
    lo = max(0, t - window + 1)
    y = panel.values[:, lo:t + 1]
    x = np.broadcast_to(np.arange(y.shape[1], dtype=float), y.shape)
    ok = ~np.isnan(y)
    n = ok.sum(axis=1)
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        mx = np.where(ok, x, 0).sum(axis=1) / n
        my = np.where(ok, y, 0).sum(axis=1) / n
        sxy = np.where(ok, (x - mx[:, None]) * (y - my[:, None]), 0).sum(axis=1)
        sxx = np.where(ok, (x - mx[:, None]) ** 2, 0).sum(axis=1)
        out = sxy / sxx
    return np.where((n >= 2) & (sxx > 0), out, 0.0)


def rise(panel: Panel, t: int, *, reference: bool = False) -> np.ndarray:
    """`BLOCK_RISE`: log(1 + recent mean) - log(1 + longer mean) of each area's released values up to t."""
    short, long = (np.clip(trailing_mean(panel, t, 1, w, reference=reference), 0.0, None) for w in BLOCK_RISE)
    return np.log1p(short) - np.log1p(long)


def rise_columns(widths: Mapping[str, int]) -> list[int]:
    """Column indices of every partner feature's rise in the groups' matrix (`Design.matrix`), the groups
    in the order of `widths`; the label's own history (group "history") has none."""
    out, at, per = [], 0, len(BLOCK_COLUMNS)
    for group, width in widths.items():
        if group != "history":
            out += [at + i + per - 1 for i in range(0, width, per)]
        at += width
    return out


def label_history(panel: Panel, t: int, h: int, *, reference: bool = False) -> tuple[list[str], np.ndarray]:
    """The label's own released history at origin t: (feature names, [areas x features])."""
    panel.require_released(reference)
    filled = panel.filled()
    names, cols = ["last"], [filled[:, t]]
    for k in LABEL_LAGS:
        names.append(f"lag{k}")
        cols.append(filled[:, t - k] if t - k >= 0 else np.full(len(panel.areas), np.nan))
    for w in LABEL_WINDOWS:
        names.append(f"mean{w}")
        cols.append(trailing_mean(panel, t, h, w, reference=reference))
    for w in LABEL_TRENDS:
        names.append(f"trend{w}")
        cols.append(slope(panel, t, w))
    names.append("seasonal")
    cols.append(seasonal_naive(panel, t, h, reference=reference))
    return names, np.column_stack(cols)


def block_history(panels: Mapping[str, Panel], t: int, *, reference: bool = False) -> tuple[list[str], np.ndarray]:
    """One partner's released features at origin t, each with its last value, trailing means and trends."""
    names, cols = [], []
    for feature, panel in panels.items():
        panel.require_released(reference)
        names.append(f"{feature}:last")
        cols.append(panel.filled()[:, t])
        for w in BLOCK_WINDOWS:
            names.append(f"{feature}:mean{w}")
            cols.append(trailing_mean(panel, t, 1, w, reference=reference))
        for w in BLOCK_TRENDS:
            names.append(f"{feature}:trend{w}")
            cols.append(slope(panel, t, w))
        names.append(f"{feature}:rise")
        cols.append(rise(panel, t, reference=reference))
    n = len(next(iter(panels.values())).areas) if panels else 0
    return names, (np.column_stack(cols) if cols else np.zeros((n, 0)))


@dataclass
class Design:
    """Feature rows over (area, origin) for one horizon: `groups[name]` is a [rows x features] matrix per
    feature group ("history" = the label's own history; one group per partner), `area`/`origin` are the
    rows' indices into the label panel's areas and periods."""

    horizon: int
    area: np.ndarray
    origin: np.ndarray
    groups: dict[str, np.ndarray]
    names: dict[str, list[str]]

    def __len__(self) -> int:
        return len(self.area)

    def take(self, mask: np.ndarray) -> "Design":
        return Design(self.horizon, self.area[mask], self.origin[mask],
                      {g: m[mask] for g, m in self.groups.items()}, self.names)

    def matrix(self, groups: Sequence[str] | None = None) -> np.ndarray:
        """The chosen groups' columns side by side (all groups if None)."""
        chosen = list(self.groups) if groups is None else list(groups)
        return np.concatenate([self.groups[g] for g in chosen], axis=1)


def design(label: Panel, partners: Mapping[str, Mapping[str, Panel]], origins: Sequence[int], h: int, *,
           reference: bool = False) -> Design:
    """Feature rows at every origin in `origins` for horizon h, for every area that has a released label
    value up to its origin. `partners`: {partner: {feature: Panel}} on the label's grid (same areas and
    periods). The target (label at origin + h) is not part of the design: see `evaluate.targets`."""
    label.require_released(reference)
    filled = label.filled()
    areas, origin_idx = [], []
    groups: dict[str, list[np.ndarray]] = {"history": []}
    names: dict[str, list[str]] = {}
    for p in partners:
        groups[p] = []
    for t in origins:
        ok = ~np.isnan(filled[:, t])
        hn, hx = label_history(label, t, h, reference=reference)
        names["history"] = hn
        groups["history"].append(hx[ok])
        for p, panels in partners.items():
            pn, px = block_history(panels, t, reference=reference)
            names[p] = pn
            groups[p].append(px[ok])
        areas.append(np.flatnonzero(ok))
        origin_idx.append(np.full(int(ok.sum()), t))
    if not areas:
        return Design(h, np.zeros(0, int), np.zeros(0, int), {g: np.zeros((0, 0)) for g in groups}, names)
    return Design(h, np.concatenate(areas), np.concatenate(origin_idx),
                  {g: np.concatenate(m) for g, m in groups.items()}, names)
