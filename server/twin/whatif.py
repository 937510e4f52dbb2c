"""What-if, honestly labelled: how the model's expectation for an area moves if one driver were at the city
median, all else unchanged, with the interval of that shift: the run's drivers (`run_drivers`: the one
measure the report, the feedback pages and the twin colleague read too; RUN_DIR/forecast/drivers.csv).

This is the model's sensitivity, an association learned from released data, not the effect of a policy:
the page says so beside every number, and puts the area's own forecast interval next to it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from server.report.drivers import area_rows, run_drivers


def sensitivities(run_dir: Path, config: Mapping[str, Any], top: int = 3) -> tuple[dict[str, list[list]], int | None]:
    """{area: [[driver, shift, shift_lo, shift_hi], ...]} for the `top` drivers whose city median moves the
    model's expectation most (label units; lo/hi None where the run gave no interval), and the horizon of the
    forecast they move (None if unknown); ({}, None) for a run that kept no drivers."""
    frame = run_drivers(Path(run_dir), config)
    if frame is None:
        return {}, None
    bounds = {(str(r["area_code"]), str(r["driver"])): (r["shift_lo"], r["shift_hi"])
              for r in frame.to_dict("records")}
    out: dict[str, list[list]] = {}
    for area in sorted(set(frame["area_code"].astype(str))):
        rows = []
        for d in area_rows(frame, area)[:top]:
            lo, hi = bounds[(area, d.feature)]
            rows.append([d.feature, _round(-d.value), _round(lo), _round(hi)])
        if rows:
            out[area] = rows
    horizons = frame["horizon"].dropna()
    return out, (int(horizons.iloc[0]) if len(horizons) else None)


def _round(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return round(v, 4) if v == v and abs(v) != float("inf") else None
