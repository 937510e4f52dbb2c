"""How far a new features build moved from the last accepted one, feature by feature.

A thousands separator read as a decimal point, shares in a percent column or a unit changed in the export
all scale a feature while every cell stays valid on its own; compared with the last accepted build, the
same (area, period) cells suddenly sit far away. Robust statistics (median, interquartile range) so that a
few genuinely new values do not raise the alarm. Thresholds: `configs/build_checks.yaml`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from federation.config import configs_dir, load_yaml
from federation.errors import ConfigError

CHECKS_FILE = "build_checks.yaml"
KEYS = ["area_code", "period"]


@dataclass(frozen=True)
class ShiftChecks:
    max_median_shift: float = 3.0
    max_spread_ratio: float = 5.0
    min_cells: int = 20
    keep_builds: int = 5


def load_checks(path: Path | None = None) -> ShiftChecks:
    """The thresholds of `configs/build_checks.yaml` (or of `path`)."""
    file = configs_dir() / CHECKS_FILE if path is None else path
    data = load_yaml(file)
    shift = data.get("shift") or {}
    try:
        checks = ShiftChecks(max_median_shift=float(shift["max_median_shift"]),
                             max_spread_ratio=float(shift["max_spread_ratio"]),
                             min_cells=int(shift["min_cells"]), keep_builds=int(data["keep_builds"]))
    except (KeyError, TypeError, ValueError) as err:
        raise ConfigError(f"{file}: needs shift.max_median_shift, shift.max_spread_ratio, shift.min_cells and "
                          f"keep_builds as numbers ({err})") from None
    if checks.max_median_shift <= 0 or checks.max_spread_ratio <= 1 or checks.min_cells < 1 or checks.keep_builds < 1:
        raise ConfigError(f"{file}: thresholds must be positive, max_spread_ratio above 1, keep_builds at least 1")
    return checks


def _spread(values: np.ndarray) -> float:
    q1, q3 = np.percentile(values, [25, 75])
    return float(q3 - q1) or float(np.std(values))


def feature_shifts(name: str, old: pd.DataFrame, new: pd.DataFrame, checks: ShiftChecks) -> list[str]:
    """One line per feature of `new` (a block or the label: area_code, period, values) that moved too far."""
    common = old.merge(new, on=KEYS, suffixes=("_old", "_new"))
    out = []
    for col in (c for c in new.columns if c not in KEYS and c in old.columns):
        if len(common) >= checks.min_cells:
            a, b = common[f"{col}_old"].to_numpy(float), common[f"{col}_new"].to_numpy(float)
            where = f"on the {len(common):,} (area, period) cells both builds hold"
        else:
            a, b = old[col].to_numpy(float), new[col].to_numpy(float)
            where = "over all cells"
        a, b = a[np.isfinite(a)], b[np.isfinite(b)]
        if len(a) == 0 or len(b) == 0:
            continue
        spread_a, spread_b = _spread(a), _spread(b)
        move = abs(float(np.median(b)) - float(np.median(a)))
        scale = spread_a or abs(float(np.median(a))) or 1.0
        ratio = (spread_b / spread_a) if spread_a else (np.inf if spread_b else 1.0)
        if move / scale > checks.max_median_shift or not 1 / checks.max_spread_ratio <= ratio <= checks.max_spread_ratio:
            out.append(f"{name}.{col}: median {np.median(a):.4g} -> {np.median(b):.4g}, spread {spread_a:.4g} -> "
                       f"{spread_b:.4g} {where} (limits: median shift {checks.max_median_shift:g} x spread, spread "
                       f"ratio {checks.max_spread_ratio:g})")
    return out
