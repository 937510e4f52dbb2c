"""Read a completed run's outputs for the report, by the run's topology."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from server.report.drivers import INPUTS_FILE, load_vertical_model
from server.report.horizontal import read_horizontal
from server.report.inputs import ReportInputError, RunOutputs, privacy_reports, read_csv, read_json


def read_run(run_dir: Path) -> RunOutputs:
    """The run's outputs, from the run's own records only (released values)."""
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
        return read_horizontal(run_dir, config, status)
    raise ReportInputError(f"{run_dir / 'config.json'}: unknown topology {topology!r}")


def _vertical(run_dir: Path, config: dict[str, Any], status: dict[str, Any]) -> RunOutputs:
    hint = " (a vertical run writes it with its forecast: rolling origin in time x held-out areas)"
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
    outputs.model, outputs.inputs = load_vertical_model(run_dir)
    outputs.sources = [run_dir / "holdout_predictions.csv", run_dir / "predictions.csv", run_dir / "evaluation.json",
                       run_dir / "privacy", run_dir / "model.pt", run_dir / INPUTS_FILE]
    return outputs
