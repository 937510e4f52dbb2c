"""What a finished run left behind, read once and checked, for every part of the report.

Bad input (a missing run directory, a run without held-out predictions, a corrupt JSON or CSV) raises
`ReportInputError` naming the file and what is wrong, so the CLI prints one line instead of a traceback.
"""
from __future__ import annotations

import csv
import io
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
    `members`: training areas' rows for a membership audit, else None (the coordinator of a horizontal run holds
    none: they never leave the nodes)."""

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
    dp_heldout: dict[str, Any] | None = None   # a horizontal run's held-out evaluation from noised sums (DP)
    # Every file the report's figures come from: all must be the run's own records (released values); the gate
    # refuses a report that read anything else (`inputs.released_only`).
    sources: list[Path] = field(default_factory=list)


def read_json(path: Path) -> Any:
    """A JSON file, or one clear error naming it."""
    if not path.is_file():
        raise ReportInputError(f"{path}: file not found")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        raise ReportInputError(f"{path}: not valid JSON ({err})") from None


def check_rows(path: Path) -> None:
    """Every line of the CSV `path` has as many fields as its header: a file cut off mid-row (its last line
    short) is refused naming the line, where pandas would fill the missing cells with NaN and read on."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ReportInputError(f"{path}: not a readable CSV ({err})") from None
    try:
        rows = csv.reader(io.StringIO(text))
        header = next(rows, None)
        if header is None:
            raise ReportInputError(f"{path}: empty file (no header)")
        for row in rows:
            if row and len(row) != len(header):
                line = rows.line_num
                cut = ": the file ends mid-row (cut off?)" if not text.endswith("\n") and \
                    next(rows, None) is None else ""
                raise ReportInputError(f"{path}: line {line} has {len(row)} of the header's {len(header)} "
                                       f"columns{cut}")
    except csv.Error as err:
        raise ReportInputError(f"{path}: not a readable CSV ({err})") from None


def numeric_columns(path: Path, frame: pd.DataFrame, required: tuple[str, ...] = (),
                    optional: tuple[str, ...] = ()) -> pd.DataFrame:
    """`required` columns must hold a number on every row, `optional` ones a number or nothing; else one error
    naming the file, the line and the column."""
    for column, may_be_empty in [*((c, False) for c in required), *((c, True) for c in optional)]:
        values = pd.to_numeric(frame[column], errors="coerce")
        bad = values.isna() & (frame[column].notna() if may_be_empty else True)
        if bad.any():
            row = int(bad.to_numpy().argmax()) + 2
            raise ReportInputError(f"{path}: line {row}, column '{column}': "
                                   f"{'not a number' if frame[column].notna().iloc[row - 2] else 'empty'}")
        frame[column] = values
    return frame


def read_csv(path: Path, required: tuple[str, ...], hint: str = "") -> pd.DataFrame:
    """A CSV with the columns the report needs, or one clear error naming the file and the column."""
    if not path.is_file():
        raise ReportInputError(f"{path}: file not found{hint}")
    check_rows(path)
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
