"""The report's settings (`configs/report/default.yaml` with the command line's overrides), checked on load.

Every numeric setting has an allowed range; a value outside it, or not a number at all, is refused with one
message naming the setting and the range (`fairness.resamples=0` used to end in an IndexError, and
`intervals.level=1.5` printed "coverage 100.0% vs stated 150%"). Flags (`*.require`) must be true or false.
"""
from __future__ import annotations

import math
from typing import Any, Mapping

from federation.errors import ConfigError
from server.ranges import PROBABILITY_OPEN, Range


INF = math.inf
SHARE = Range(0, 1)
SCORE_GAP = Range(0, INF)

# dotted key -> its allowed range. R² and skill are at most 1 (a perfect forecast), so a threshold at 1 or above
# could never pass; a negative one is allowed (worse than the mean / the naive forecast, but said so).
NUMERIC: dict[str, Range] = {
    "intervals.level": PROBABILITY_OPEN,
    "intervals.max_coverage_gap": SHARE,
    "min_r2": Range(-INF, 1, low_open=True, high_open=True),
    "forecast.min_skill_lo": Range(-INF, 1, low_open=True, high_open=True),
    "fairness.cbs_year": Range(1900, 2100, whole=True),
    "fairness.min_areas_per_group": Range(1, INF, whole=True),
    "fairness.evidence_level": PROBABILITY_OPEN,
    "fairness.resamples": Range(10, 100_000, whole=True),
    "fairness.detection.step": Range(0, INF, low_open=True),
    "fairness.detection.max_shift": SCORE_GAP,
    "fairness.max_mae_gap": SCORE_GAP,
    "fairness.max_bias_gap": SCORE_GAP,
    "fairness.max_calibration_gap": SCORE_GAP,
    "fairness.max_flag_excess": SHARE,
    "mia.max_auc": SHARE,
}
GROUP_BINS = Range(2, 20, whole=True)   # fairness.groups.<name>.bins: at least two groups to compare
FLAGS = ("forecast.require", "fairness.require", "mia.require", "privacy.require")


def _get(settings: Mapping[str, Any], key: str) -> tuple[bool, Any]:
    node: Any = settings
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return False, None
        node = node[part]
    return True, node


def _number(key: str, value: Any, allowed: Range) -> None:
    if not allowed.admits(value):
        raise ConfigError(f"report setting {key} = {value!r}: must be {allowed.words()} "
                          "(configs/report/default.yaml, docs/report.md)")


def check_settings(settings: Mapping[str, Any]) -> Mapping[str, Any]:
    """`settings` unchanged when every numeric setting lies in its range and every flag is true or false; else
    a ConfigError naming the first setting that does not, and its allowed range. A setting left out is not
    checked here (the code that needs it gives its default)."""
    for key, allowed in NUMERIC.items():
        present, value = _get(settings, key)
        if present:
            _number(key, value, allowed)
    present, groups = _get(settings, "fairness.groups")
    if present:
        if not isinstance(groups, Mapping):
            raise ConfigError(f"report setting fairness.groups = {groups!r}: must be a mapping of groupings")
        for name, spec in groups.items():
            if not isinstance(spec, Mapping) or "bins" not in spec:
                raise ConfigError(f"report setting fairness.groups.{name}: must give 'attribute' and 'bins'")
            _number(f"fairness.groups.{name}.bins", spec["bins"], GROUP_BINS)
    for key in FLAGS:
        present, value = _get(settings, key)
        if present and not isinstance(value, bool):
            raise ConfigError(f"report setting {key} = {value!r}: must be true or false")
    return settings
