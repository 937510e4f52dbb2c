"""`pulse-twin report`: the twin's per-area view of a finished run, as one self-contained HTML page."""
from __future__ import annotations

import argparse
from pathlib import Path

from federation.commands.options import add_json, add_overrides
from federation.config import compose, to_container
from federation.output import emit_json, result

NOT_RELEASABLE = 3


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "report",
        help="write the per-area report of a run (map, intervals, drivers, yardstick, fairness gate, receipts)",
        description=(
            "Writes RUN_DIR/report/report.html (self-contained: no request leaves the page) and PNG figures "
            "beside it: a map of the areas coloured by predicted liveability or by the change from this month, "
            "an interval per area (conformal, calibrated and checked on the run's held-out areas), drivers per "
            "area, the yardstick table with a verdict, a privacy receipt per partner in Dutch and English from "
            "its own ledger report (every epsilon recomputed from the releases the report lists; a partner "
            "without one, or a stated figure that differs, is refused: privacy.require), a model card, and the release gate: a fairness audit over groups of areas "
            "formed by public CBS statistics and, for horizontal runs, a membership-inference audit. Thresholds: "
            "configs/report/default.yaml, overridable as KEY=VALUE. Post-processing only: charges no budget. "
            f"Exit code 0: releasable; {NOT_RELEASABLE}: not releasable (the page and the output name the "
            "threshold exceeded); 2: the run cannot be reported on."
        ),
    )
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a completed run directory (runs/<run>)")
    add_overrides(p, "fairness.max_mae_gap=0.03 (thresholds of configs/report/default.yaml)")
    p.add_argument("--out", type=Path, default=None, help="output directory (default RUN_DIR/report)")
    p.add_argument("--baseline", type=Path, default=None,
                   help="the yardstick file of `pulse-twin baseline` (default runs/baseline-<federation>.json "
                        "beside the run, when present)")
    add_json(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from server.report.build import build_report, write_report

    settings = to_container(compose("default", args.overrides, group="report"))
    report = build_report(args.run_dir, settings, args.baseline)
    path = write_report(report, args.out or args.run_dir / "report")
    if args.json:
        emit_json({"report": str(path.resolve()), "releasable": report.releasable, "verdict": report.verdict.words,
                   "checks": [{"name": c.name, "passed": c.passed, "text": c.text} for c in report.checks],
                   "notes": report.notes, "skill": dict(report.skill_words)})
        return NOT_RELEASABLE if report.refused else 0
    unfit = [w for w in report.verdict.words if w.startswith("NOT FIT")]
    for words in unfit:
        result(words)
    for _, words in report.skill_words:   # the gate on skill over the naive forecast, Dutch first
        result(words)
    for words in report.verdict.words:
        if words not in unfit:
            result(words)
    if report.intervals is not None:
        result(report.intervals.text())
    if report.mia is not None:
        result(report.mia.text())
    for note in report.notes:
        result(f"note: {note}")
    result(f"report: {path.resolve()}")
    if report.refused:
        for check in report.refused:
            said = "not shown to hold" if check.status == "inconclusive" else "exceeded"
            result(f"NOT RELEASABLE: threshold {check.name} {said}: {check.text}")
        return NOT_RELEASABLE
    result("releasable: every check of the release gate passed")
    return 0
