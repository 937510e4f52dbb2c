"""What-if, honestly labelled: how the run's kept model (model.pt, on prediction_inputs.parquet) moves its
expectation for an area when one of its inputs is set to the city median, all else unchanged.

This is the model's sensitivity, an association learned from released data, not the effect of a policy:
the page says so beside every number, and puts the area's own forecast interval next to it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np

from federation.blocks import block_schema, federation_local_blocks
from server.report.drivers import load_vertical_model


def sensitivities(run_dir: Path, config: Mapping[str, Any], top: int = 3) -> dict[str, list[list]]:
    """{area: [[feature, shift in label units], ...]} for the `top` inputs whose city median moves the model's
    expectation most; {} for a run that kept no model and inputs."""
    import torch

    model, ex = load_vertical_model(Path(run_dir))
    if model is None or ex is None or not len(ex.keys):
        return {}
    fed = config.get("federation", {})
    scale = float((fed.get("label") or {}).get("scale", 1.0))
    try:
        local = federation_local_blocks(fed)
    except (KeyError, TypeError, ValueError):
        local = None
    columns = [f for b in ex.blocks for f in block_schema(b, local).features]
    x = torch.as_tensor(ex.x, dtype=torch.float32)
    present = torch.as_tensor(ex.present, dtype=torch.float32)
    with torch.no_grad():
        base = model(x, present).reshape(-1).numpy()
        shifts = np.zeros((len(base), len(columns)))
        medians = np.median(ex.x, axis=0)
        for k in range(len(columns)):
            moved = x.clone()
            moved[:, k] = float(medians[k])
            shifts[:, k] = (model(moved, present).reshape(-1).numpy() - base) * scale
    out: dict[str, list[list]] = {}
    for i, area in enumerate(ex.keys["area_code"].astype(str)):
        order = np.argsort(-np.abs(shifts[i]))[:top]
        out[area] = [[columns[k], round(float(shifts[i, k]), 4)] for k in order if abs(shifts[i, k]) > 1e-6]
    return out
