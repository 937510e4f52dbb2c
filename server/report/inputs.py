"""What a finished run left behind, read once and checked, for every part of the report.

Bad input (a missing run directory, a run without held-out predictions, a corrupt JSON or CSV) raises
`ReportInputError` naming the file and what is wrong, so the CLI prints one line instead of a traceback.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from federation.errors import PulseTwinError


class ReportInputError(PulseTwinError):
    """A run directory that cannot be reported on; the message names the file."""


@dataclass
class RunOutputs:
    """A run's outputs in one shape for both topologies.

    `holdout`: rows of held-out areas with `y` (the label as the coordinator knows it) and `pred`;
    `predictions`: one row per predicted area (`predicted_liveability`, `current_liveability` or NaN);
    `members`: training areas' rows (horizontal runs, for the membership audit), else None."""

    run_dir: Path
    name: str
    topology: str
    config: dict[str, Any]
    status: dict[str, Any]
    predictions: pd.DataFrame
    holdout: pd.DataFrame
    privacy: dict[str, dict[str, Any]]
    label_source: str
    members: pd.DataFrame | None = None
    inputs: Any = None            # Examples of the predicted rows, for attribution (None: no model kept)
    model: Any = None             # the released or fusion model (BlockModel), None when the run kept none
    partners_of_block: dict[str, str] = field(default_factory=dict)


def read_json(path: Path) -> Any:
    """A JSON file, or one clear error naming it."""
    if not path.is_file():
        raise ReportInputError(f"{path}: file not found")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        raise ReportInputError(f"{path}: not valid JSON ({err})") from None


def read_csv(path: Path, required: tuple[str, ...], hint: str = "") -> pd.DataFrame:
    """A CSV with the columns the report needs, or one clear error naming the file and the column."""
    if not path.is_file():
        raise ReportInputError(f"{path}: file not found{hint}")
    try:
        frame = pd.read_csv(path, dtype={"area_code": str, "period": str, "predicted_period": str})
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as err:
        raise ReportInputError(f"{path}: not a readable CSV ({str(err).splitlines()[0]})") from None
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise ReportInputError(f"{path}: column '{missing[0]}' is missing{hint}")
    numeric = [c for c in required if c not in ("area_code", "period", "predicted_period")]
    for column in numeric:
        values = pd.to_numeric(frame[column], errors="coerce")
        if values.isna().any():
            row = int(values.isna().to_numpy().argmax()) + 2
            raise ReportInputError(f"{path}: line {row}, column '{column}': not a number")
        frame[column] = values
    return frame


def privacy_reports(run_dir: Path) -> dict[str, dict[str, Any]]:
    """Each node's own privacy report, as its node computed it from its ledger (`privacy/<node>.json`)."""
    folder = run_dir / "privacy"
    reports = {}
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        report = read_json(path)
        if not isinstance(report, dict) or not isinstance(report.get("epsilon"), (int, float)):
            raise ReportInputError(f"{path}: not a node privacy report (no numeric 'epsilon')")
        reports[path.stem] = report
    return reports


def read_run(run_dir: Path) -> RunOutputs:
    """The run's outputs; a vertical run from its files, a horizontal one by evaluating its model."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ReportInputError(f"{run_dir}: no such run directory")
    status = read_json(run_dir / "status.json")
    if not isinstance(status, dict) or status.get("state") not in ("completed", "completed-with-refusals"):
        state = status.get("state") if isinstance(status, dict) else status
        raise ReportInputError(f"{run_dir / 'status.json'}: the run did not complete (state {state!r}); "
                               "a report is made of a completed run only")
    config = read_json(run_dir / "config.json")
    try:
        topology = str(config["federation"]["topology"])
    except (TypeError, KeyError):
        raise ReportInputError(f"{run_dir / 'config.json'}: no federation.topology") from None
    if topology == "vertical":
        return _vertical(run_dir, config, status)
    if topology == "horizontal":
        from server.report.horizontal import read_horizontal

        return read_horizontal(run_dir, config, status)
    raise ReportInputError(f"{run_dir / 'config.json'}: unknown topology {topology!r}")


def _vertical(run_dir: Path, config: dict[str, Any], status: dict[str, Any]) -> RunOutputs:
    hint = " (a vertical run writes it with vertical.cross_validate=true, the default)"
    holdout = read_csv(run_dir / "holdout_predictions.csv", ("area_code", "period", "y_dp", "pred"), hint)
    if holdout.empty:
        raise ReportInputError(f"{run_dir / 'holdout_predictions.csv'}: no rows{hint}")
    holdout = holdout.rename(columns={"y_dp": "y"})
    predictions = read_csv(run_dir / "predictions.csv",
                           ("area_code", "period", "predicted_period", "predicted_liveability"))
    if "current_liveability" not in predictions.columns:
        predictions["current_liveability"] = float("nan")
    evaluation = read_json(run_dir / "evaluation.json")
    source = str(evaluation.get("label", "dp_release")) if isinstance(evaluation, dict) else "dp_release"
    partners = config["federation"].get("partners", {})
    owners = {b: p for p, spec in partners.items() for b in spec.get("blocks", [])}
    outputs = RunOutputs(run_dir, run_dir.name, "vertical", config, status, predictions, holdout,
                         privacy_reports(run_dir), source, partners_of_block=owners)
    from server.report.drivers import load_vertical_model

    outputs.model, outputs.inputs = load_vertical_model(run_dir)
    return outputs
