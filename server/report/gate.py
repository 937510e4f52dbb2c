"""The release gate: every threshold of `configs/report/default.yaml`, checked, and named when crossed.

A report is releasable only when every check passes: the predictions are fit for use, the intervals'
coverage on held-out areas is within its tolerance, no fairness gap exceeds its threshold, and (for a
horizontal run, whose model left the nodes) the membership attack does no better than its threshold.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from server.report.fairness import THRESHOLD_OF, WORDS, FairnessAudit
from server.report.forecast import Forecast, gate_check_text
from server.report.intervals import Intervals
from server.report.mia import MembershipAudit


@dataclass(frozen=True)
class Check:
    name: str          # the threshold's key in configs/report/default.yaml
    passed: bool
    text: str


def gate_checks(settings: Mapping[str, Any], fit_for_use: bool, r2: float | None, intervals: Intervals | None,
                fairness: FairnessAudit | None, mia: MembershipAudit | None, horizontal: bool) -> list[Check]:
    checks = [Check("min_r2", fit_for_use,
                    f"held-out R² {r2:.3f} must be above {settings['min_r2']}" if r2 is not None
                    else "no held-out areas: the model's quality is unknown")]
    iv = settings["intervals"]
    if intervals is None or intervals.areas < 2:
        checks.append(Check("intervals.max_coverage_gap", False,
                            "interval coverage cannot be checked: fewer than two held-out areas"))
    else:
        checks.append(Check("intervals.max_coverage_gap", intervals.gap <= float(iv["max_coverage_gap"]),
                            f"coverage {intervals.coverage:.1%} vs stated {intervals.level:.0%}: gap "
                            f"{intervals.gap:.1%} (threshold {float(iv['max_coverage_gap']):.0%})"))
    fs = settings["fairness"]
    if fairness is None or not fairness.groupings:
        checks.append(Check("fairness.require", not bool(fs["require"]),
                            "fairness audit: no held-out area has public audit statistics"))
    else:
        for grouping in fairness.groupings:
            if not grouping.gaps:
                checks.append(Check(f"fairness.min_areas_per_group", False,
                                    f"{grouping.label}: fewer than two groups hold {fs['min_areas_per_group']} "
                                    "or more held-out areas; the audit cannot compare them"))
                continue
            for metric, gap in grouping.gaps.items():
                key = THRESHOLD_OF[metric]
                limit = float(fs[key])
                low, high = grouping.intervals.get(metric, (gap, gap))
                words = (f"{grouping.label}: {WORDS[metric]} differs by {gap:.3f} between groups "
                         f"({float(fs['evidence_level']):.0%} interval over areas {low:.3f} to {high:.3f}; "
                         f"threshold {limit:g})")
                if low <= limit < gap:
                    words += ": caution, above the threshold but within what chance gives with these few areas"
                checks.append(Check(f"fairness.{key}", low <= limit, words))
    if horizontal:
        ms = settings["mia"]
        if mia is None:
            checks.append(Check("mia.require", not bool(ms["require"]),
                                "membership audit: the run has no held-out areas to compare with"))
        else:
            checks.append(Check("mia.max_auc", mia.auc <= float(ms["max_auc"]),
                                f"{mia.text()} (threshold {float(ms['max_auc']):.2f})"))
    return checks


def failures(checks: list[Check]) -> list[Check]:
    return [c for c in checks if not c.passed]


def skill_check(forecast: Forecast | None, settings: Mapping[str, Any]) -> Check:
    """A model whose skill interval over the best naive forecast does not lie above `forecast.min_skill_lo`
    at the configured horizon is not releasable: the naive forecast is then the better guide."""
    passed, text = gate_check_text(forecast, settings.get("forecast") or {})
    return Check("forecast.min_skill_lo", passed, text)
