"""Drivers per area: which inputs move its forecast, in words a city official reads.

One measure, computed once: how the model's expectation for an area moves if one driver were at the city
median, all else unchanged (`server.forecast.sensitivity.median_shifts`). A vertical run's forecast writes it
for every area and driver at the configured horizon, with a jackknife interval, to RUN_DIR/forecast/drivers.csv;
a run of before forecast/ that kept `model.pt` and `prediction_inputs.parquet` gets the same measure from that
model (each feature to its median over the areas; no interval). `run_drivers` reads either; the report, the
twin's what-if, the feedback pages and the twin colleague all read it. A driver's share of an area's forecast
is minus its shift: what its own value adds against the city median, in label points. An association in the
model, not the effect of a policy.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd
import torch

from federation.blocks import block_schema, block_widths, federation_local_blocks, schemas_from_json
from federation.dataset import Examples
from federation.model import BlockModel, ModelSpec, build_model
from server.forecast.artefacts import forecast_dir
from server.forecast.sensitivity import DRIVER_COLUMNS, DRIVERS_FILE, median_shifts
from server.report.inputs import ReportInputError, check_rows
from server.run_record import INPUTS_FILE, read_examples

# Plain words for the features of the Heerlen blocks; any other feature is named by its own name.
WORDS: dict[str, str] = {
    "log_population": "number of residents",
    "share_0_15": "share of children under 15",
    "share_65_plus": "share of residents over 65",
    "household_size": "household size",
    "share_social_housing": "share of social housing",
    "income_per_resident_k": "income per resident",
    "share_low_income": "share of low-income households",
    "benefits_per_1000": "welfare benefits (register)",
    "burglary_per_1000": "burglaries registered by the police",
    "vandalism_per_1000": "vandalism registered by the police",
    "violence_per_1000": "violent incidents registered by the police",
    "drugs_per_1000": "drug incidents registered by the police",
    "nuisance_per_1000": "nuisance reports to the police",
    "theft_other_per_1000": "other thefts registered by the police",
    "benefit_active_per_1000": "people on welfare benefits",
    "benefit_new_per_1000": "new welfare benefits",
    "debt_assistance_per_1000": "people in debt assistance",
    "public_space_reports_per_1000": "reports about public space",
    "youth_nuisance_reports_per_1000": "reports of youth nuisance",
    "youth_care_pct": "young people in youth care",
    "wmo_per_1000": "residents with Wmo support",
    "open_debt_per_1000": "open buurtteam cases about debt",
    "open_housing_per_1000": "open buurtteam cases about housing",
    "open_parenting_per_1000": "open buurtteam cases about parenting",
    "open_mental_health_per_1000": "open buurtteam cases about mental health",
    "open_domestic_violence_per_1000": "open buurtteam cases about domestic violence",
    "open_youth_per_1000": "open buurtteam cases about young people",
    "new_intakes_per_1000": "new buurtteam intakes",
    "mean_contact_hours": "buurtteam contact hours per case",
    "own_level": "its own released level (recent values and means)",
    "own_trend": "its own released trend",
    "reports_waste_per_1000": "residents' reports about waste",
    "reports_public_space_per_1000": "residents' reports about public space",
    "reports_green_per_1000": "residents' reports about green space",
    "reports_nuisance_per_1000": "residents' reports about nuisance",
    "in_norm_waste_per_1000": "waste reports handled within the norm",
    "in_norm_public_space_per_1000": "public-space reports handled within the norm",
    "in_norm_green_per_1000": "green-space reports handled within the norm",
    "in_norm_nuisance_per_1000": "nuisance reports handled within the norm",
    "satisfied_per_1000": "satisfied reporters",
    "unsatisfied_per_1000": "unsatisfied reporters",
    "frontliner_waste_per_1000": "frontliners' signals about waste",
    "frontliner_public_space_per_1000": "frontliners' signals about public space",
    "frontliner_green_per_1000": "frontliners' signals about green space",
    "frontliner_nuisance_per_1000": "frontliners' signals about nuisance",
}


@dataclass(frozen=True)
class Driver:
    """One driver's share of an area's forecast, against the city median."""

    block: str
    feature: str
    value: float          # label points this driver's own value adds (+) or takes away (-) against the median
    level: float          # the area's value minus the city median: > 0 above it, < 0 below

    def words(self, owner: str | None) -> str:
        name = WORDS.get(self.feature, self.feature.replace("_", " "))
        level = "higher" if self.level >= 0 else "lower"
        effect = "raises" if self.value >= 0 else "lowers"
        source = f"{self.block} data of {owner}" if owner else f"{self.block} data"
        return (f"{name} {level} than the city median ({source}): in the model it {effect} the expected "
                f"liveability by {abs(self.value):.3f}")


def load_model(path: Path) -> BlockModel:
    """The model a run kept (`model.pt`: state dict and spec), rebuilt with the project's block model."""
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        spec = saved["spec"]
        local = schemas_from_json(str(spec.get("block_schemas", "")), f"{path} (block_schemas)")
        widths = block_widths(spec["blocks"], local)
        model = build_model(ModelSpec.from_widths(widths, embed_dim=int(spec["embed_dim"]), hidden=int(spec["hidden"]),
                                                  head_hidden=int(spec["head_hidden"])))
        model.load_state_dict(saved["state_dict"])
    except (OSError, RuntimeError, KeyError, TypeError, ValueError, EOFError) as err:
        raise ReportInputError(f"{path}: not a model this project wrote ({str(err).splitlines()[0]})") from None
    model.eval()
    return model


def load_vertical_model(run_dir: Path) -> tuple[BlockModel | None, Examples | None]:
    """The fusion model and its inputs for the predicted rows; (None, None) for a run that kept neither."""
    model_path, inputs_path = run_dir / "model.pt", run_dir / INPUTS_FILE
    if not (model_path.is_file() and inputs_path.is_file()):
        return None, None
    try:
        inputs = read_examples(inputs_path)
    except (OSError, ValueError, KeyError) as err:
        raise ReportInputError(f"{inputs_path}: unreadable ({str(err).splitlines()[0]})") from None
    return load_model(model_path), inputs


def run_drivers(run_dir: Path, config: Mapping[str, Any] | None = None) -> pd.DataFrame | None:
    """The run's drivers (DRIVER_COLUMNS) per area: forecast/drivers.csv, else computed from a kept model.pt
    and prediction_inputs.parquet (`config`: the run's, for the label scale and local blocks); None when the
    run kept neither."""
    run_dir = Path(run_dir)
    path = forecast_dir(run_dir) / DRIVERS_FILE
    if path.is_file():
        check_rows(path)   # a file cut off mid-row is refused naming the line
        try:
            frame = pd.read_csv(path, dtype={"area_code": str, "partner": str, "block": str, "driver": str})
        except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as err:
            raise ReportInputError(f"{path}: not a readable CSV ({str(err).splitlines()[0]})") from None
        for column in DRIVER_COLUMNS:
            if column not in frame.columns:
                raise ReportInputError(f"{path}: column '{column}' is missing")
        for column in ("value", "city_median", "shift", "shift_lo", "shift_hi"):
            values = pd.to_numeric(frame[column], errors="coerce")
            bad = values.isna() & frame[column].notna()
            if bad.any():
                raise ReportInputError(f"{path}: line {int(bad.to_numpy().argmax()) + 2}, column '{column}': "
                                       "not a number")
            frame[column] = values
        _every_driver(path, frame)
        return frame
    model, ex = load_vertical_model(run_dir)
    if model is None or ex is None or not len(ex.keys):
        return None
    fed = (config or {}).get("federation") or {}
    scale = float((fed.get("label") or {}).get("scale", 1.0))
    try:
        local = federation_local_blocks(fed)
    except (KeyError, TypeError, ValueError):
        local = None
    columns = [(b, f) for b in ex.blocks for f in block_schema(b, local).features]
    present = torch.as_tensor(ex.present, dtype=torch.float32)

    def predict(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model(torch.as_tensor(x, dtype=torch.float32), present).reshape(-1).numpy() * scale

    shifts = median_shifts(predict, ex.x, [[k] for k in range(len(columns))])
    median = np.median(ex.x, axis=0)
    owners = {b: p for p, spec in (fed.get("partners") or {}).items() for b in spec.get("blocks", [])}
    rows = [(area, period, "", np.nan, owners.get(b, ""), b, f, float(ex.x[i, k]), float(median[k]),
             float(shifts[i, k]), np.nan, np.nan)
            for i, (area, period) in enumerate(zip(ex.keys["area_code"].astype(str), ex.keys["period"].astype(str)))
            for k, (b, f) in enumerate(columns)]
    return pd.DataFrame(rows, columns=DRIVER_COLUMNS)


def _every_driver(path: Path, frame: pd.DataFrame) -> None:
    """The forecast writes every driver for every area: an area lacking some (a file cut off at a row boundary)
    is refused naming it, rather than shown with fewer drivers than it has."""
    pairs = frame["block"].astype(str) + ":" + frame["driver"].astype(str)
    every = set(pairs)
    for area, own in pairs.groupby(frame["area_code"].astype(str), sort=True):
        lacking = sorted(every - set(own))
        if lacking:
            raise ReportInputError(f"{path}: area {area} lacks {len(lacking)} of the {len(every)} drivers the file "
                                   f"names ({', '.join(lacking[:3])}{', ...' if len(lacking) > 3 else ''}); the "
                                   "file is incomplete (cut off?)")


def area_rows(frame: pd.DataFrame, area: str) -> list[Driver]:
    """One area's drivers, largest share first (zero shares left out: the model does not use that driver)."""
    mine = frame[frame["area_code"].astype(str) == str(area)]
    out = [Driver(str(r["block"]), str(r["driver"]), -float(r["shift"]), float(r["value"]) - float(r["city_median"]))
           for r in mine.to_dict("records") if np.isfinite(r["shift"]) and abs(r["shift"]) > 1e-9]
    return sorted(out, key=lambda d: -abs(d.value))


def drivers_per_area(frame: pd.DataFrame | None, owners: Mapping[str, str], top: int = 3) -> dict[str, dict[str, Any]]:
    """For each area: its blocks' shares and its `top` drivers, in points and in words."""
    out: dict[str, dict[str, Any]] = {}
    for area in sorted(set(frame["area_code"].astype(str))) if frame is not None else []:
        found = area_rows(frame, area)
        blocks: dict[str, float] = {}
        for d in found:
            blocks[d.block] = blocks.get(d.block, 0.0) + d.value
        out[area] = {"blocks": {b: round(v, 4) for b, v in blocks.items()},
                     "words": [d.words(owners.get(d.block)) for d in found[:top]]}
    return out
