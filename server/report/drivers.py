"""Drivers per area: which blocks and features move its prediction, in words a city official reads.

Attribution is captum's Integrated Gradients on the model the run kept (the vertical fusion model or the
released horizontal model), from a typical area to the area itself. The typical area is the all-zero
input: every feature at its block's public centre (`configs/block/*.yaml`), with the area's own blocks
present. Attributions add up (within captum's reported convergence error) to the area's prediction
minus the typical area's, in liveability points.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from federation.blocks import BlockSchema, block_schema, block_widths, schemas_from_json
from federation.dataset import Examples
from federation.model import BlockModel, ModelSpec, build_model
from server.report.inputs import ReportInputError
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
}


@dataclass(frozen=True)
class Driver:
    """One feature's share of an area's prediction, against a typical area."""

    block: str
    feature: str
    value: float          # liveability points this feature adds (+) or takes away (-)
    level: float          # the area's scaled input: > 0 above the public centre, < 0 below

    def words(self, owner: str | None) -> str:
        name = WORDS.get(self.feature, self.feature.replace("_", " "))
        level = "higher" if self.level >= 0 else "lower"
        effect = "raises" if self.value >= 0 else "lowers"
        source = f"{self.block} data of {owner}" if owner else f"{self.block} data"
        return (f"{name} {level} than in a typical area ({source}): {effect} the predicted liveability "
                f"by {abs(self.value):.3f}")


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


def attributions(model: BlockModel, ex: Examples, label_scale: float) -> tuple[np.ndarray, float]:
    """Integrated Gradients per row and input column, in liveability points, and the largest
    convergence error (how far the attributions' sum is from the prediction's difference)."""
    from captum.attr import IntegratedGradients

    x = torch.as_tensor(ex.x, dtype=torch.float32)
    present = torch.as_tensor(ex.present, dtype=torch.float32)
    ig = IntegratedGradients(lambda inp, pres: model(inp, pres))
    attr, delta = ig.attribute(x, baselines=torch.zeros_like(x), additional_forward_args=(present,),
                               n_steps=64, return_convergence_delta=True)
    return attr.detach().numpy() * label_scale, float(delta.abs().max()) * label_scale


def drivers_per_area(model: BlockModel, ex: Examples, label_scale: float, owners: Mapping[str, str], top: int = 3,
                     local: Mapping[str, BlockSchema] | None = None) -> tuple[dict[str, dict[str, Any]], float]:
    """For each area: its blocks' shares and its `top` features, in points and in words (`local`: the run's
    node-local block schemas)."""
    attr, error = attributions(model, ex, label_scale)
    columns = [(b, f) for b in ex.blocks for f in block_schema(b, local).features]
    out: dict[str, dict[str, Any]] = {}
    for i, area in enumerate(ex.keys["area_code"].astype(str)):
        row = attr[i]
        by_block = {b: float(sum(v for (bb, _), v in zip(columns, row) if bb == b))
                    for j, b in enumerate(ex.blocks) if ex.present[i, j] > 0}
        order = np.argsort(-np.abs(row))[:top]
        drivers = [Driver(columns[k][0], columns[k][1], float(row[k]), float(ex.x[i, k]))
                   for k in order if abs(row[k]) > 0]
        out[area] = {"blocks": {b: round(v, 4) for b, v in by_block.items()},
                     "words": [d.words(owners.get(d.block)) for d in drivers]}
    return out, error
