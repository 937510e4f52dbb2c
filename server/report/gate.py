"""The release gate: every threshold of `configs/report/default.yaml`, checked, and named when crossed.

A report is releasable only when every check passes: the predictions are fit for use, the intervals'
coverage on held-out areas is within its tolerance, every fairness gap is shown within its threshold (an
inconclusive gap, whose interval holds the threshold, does not pass: `fairness_words`), and (for a
horizontal run, whose model left the nodes) the membership attack does no better than its threshold.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from server.report.fairness import PLANTED, THRESHOLD_OF, WORDS, FairnessAudit, GroupingResult
from server.report.forecast import Forecast, gate_check_text
from server.report.intervals import Intervals
from server.report.mia import MembershipAudit


@dataclass(frozen=True)
class Check:
    name: str          # the threshold's key in configs/report/default.yaml
    passed: bool
    text: str
    status: str = ""   # fairness rows: "within", "above" or "inconclusive" (the equivalence test's three answers)


def gate_checks(settings: Mapping[str, Any], fit_for_use: bool, r2: float | None, intervals: Intervals | None,
                fairness: FairnessAudit | None, mia: MembershipAudit | None, horizontal: bool,
                outside: Sequence[str] = ()) -> list[Check]:
    """`outside`: files the report read that are not the run's own records (released values): any refuses it."""
    checks = [Check("inputs.released_only", not outside,
                    "every figure comes from the run's own records (released values)" if not outside else
                    f"the report read data that did not leave a node through its guard: {', '.join(outside)}"),
              Check("min_r2", fit_for_use,
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
                passed, words = fairness_words(grouping, metric, float(fs[key]), float(fs["evidence_level"]),
                                               fairness.spread)
                checks.append(Check(f"fairness.{key}", passed, words, fairness_status(grouping, metric,
                                                                                      float(fs[key]))))
    if horizontal:
        ms = settings["mia"]
        if mia is None:
            checks.append(Check("mia.require", not bool(ms["require"]),
                                "membership audit: the coordinator holds no training rows of a horizontal run (they "
                                "never leave the nodes); each node can audit the released model on its own premises"))
        else:
            checks.append(Check("mia.max_auc", mia.auc <= float(ms["max_auc"]),
                                f"{mia.text()} (threshold {float(ms['max_auc']):.2f})"))
    return checks


def fairness_status(grouping: GroupingResult, metric: str, limit: float) -> str:
    """The equivalence test's answer for one gap: "within" (interval below the threshold), "above" (interval above
    it) or "inconclusive" (the interval holds it)."""
    gap = grouping.gaps[metric]
    low, high = grouping.intervals.get(metric, (gap, gap))
    return "within" if high < limit else "above" if low > limit else "inconclusive"


def fairness_words(grouping: GroupingResult, metric: str, limit: float, level: float,
                   spread: float | None) -> tuple[bool, str]:
    """One fairness row of the gate as an equivalence test: passed only when the gap is shown within its threshold
    (the interval's upper end below it); its words say which of the three it is and what the audit could find."""
    gap = grouping.gaps[metric]
    low, high = grouping.intervals.get(metric, (gap, gap))
    scale = (f" = {limit / spread:.2f} x the spread of predicted scores across areas (sd {spread:.3f})"
             if spread and metric != "flag_excess" else "")
    verdict = {"within": "shown within threshold", "above": "shown above threshold",
               "inconclusive": "not shown unfair (inconclusive): the interval holds the threshold, too few areas to "
                               "tell"}[fairness_status(grouping, metric, limit)]
    words = (f"{grouping.label}: {WORDS[metric]} differs by {gap:.3f} between groups ({level:.0%} interval over "
             f"areas {low:.3f} to {high:.3f}; threshold {limit:g}{scale}): {verdict}")
    if metric in PLANTED and grouping.planted_group is not None and metric in grouping.detectable:
        found = grouping.detectable[metric]
        words += ("; detectable: " + (f"a bias of {found:g} score points planted into group '{grouping.planted_group}' "
                                      "is the smallest this audit shows above the threshold" if found is not None else
                                      f"not even a bias of {grouping.searched:g} score points planted into group "
                                      f"'{grouping.planted_group}' would be shown above the threshold"))
    elif metric not in PLANTED:
        words += "; no planted check (the calibration error bins each group's own predictions)"
    return verdict.startswith("shown within"), words


def privacy_check(settings: Mapping[str, Any], missing: Sequence[str], unchecked: Mapping[str, str],
                  folder: str) -> Check | None:
    """A partner of the run without its privacy report, or with one whose epsilon cannot be recomputed from the
    history it lists: no record of what left that node. Refused under `privacy.require` (default true), else
    the check passes and the page and the console only say so. None when every partner's receipt is there and
    recomputed."""
    if not missing and not unchecked:
        return None
    parts = ([f"no privacy report of partner(s) {', '.join(missing)} ({folder}/<partner>.json): the run holds no "
              "record of what left those nodes"] if missing else []) + \
        [f"{folder}/{p}.json: its epsilon cannot be recomputed from the release history it lists ({why})"
         for p, why in unchecked.items()]
    return Check("privacy.require", not bool((settings.get("privacy") or {}).get("require", True)), "; ".join(parts))


def failures(checks: list[Check]) -> list[Check]:
    return [c for c in checks if not c.passed]


def skill_check(forecast: Forecast | None, settings: Mapping[str, Any]) -> Check:
    """A model whose skill interval over the best naive forecast does not lie above `forecast.min_skill_lo`
    at the configured horizon is not releasable: the naive forecast is then the better guide."""
    passed, text = gate_check_text(forecast, settings.get("forecast") or {})
    return Check("forecast.min_skill_lo", passed, text)
