"""The drivers of one area's forecast: the report's attribution (server/report/drivers.py) on the model the
run kept, for that area's row only, kept per run in memory (the model is read once)."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from federation.blocks import block_schema, federation_local_blocks
from server.ask.store import RunStore
from server.report.drivers import WORDS, attributions, load_vertical_model
from server.report.inputs import ReportInputError


@lru_cache(maxsize=4)
def _loaded(run_dir: Path, stamp: float):
    try:
        return load_vertical_model(run_dir)
    except ReportInputError:
        return None, None


def attribution_row(run_dir: Path, area: str, label_scale: float, local: Any = None) -> dict[str, Any] | None:
    """feature -> (block, points, scaled level) for one area, or None when the run kept no model."""
    model_path = Path(run_dir) / "model.pt"
    if not model_path.is_file():
        return None
    model, inputs = _loaded(Path(run_dir), model_path.stat().st_mtime)
    if model is None or inputs is None:
        return None
    mine = np.asarray(inputs.keys["area_code"].astype(str) == area)
    if not mine.any():
        return None
    ex = inputs.subset(mine)
    attr, _ = attributions(model, ex, label_scale)
    columns = [(b, f) for b in ex.blocks for f in block_schema(b, local).features]
    return {f: (b, float(attr[0][k]), float(ex.x[0, k])) for k, (b, f) in enumerate(columns)}


def area_drivers(store: RunStore, area: str, top: int) -> list[dict[str, Any]] | None:
    """The `top` features by size of their share of the area's prediction, in plain words."""
    fed = store.federation
    scale = float((fed.get("label") or {}).get("scale", 1.0))
    row = attribution_row(store.run_dir, area, scale, federation_local_blocks(fed) if fed else None)
    if row is None:
        return None
    owners = {b: p for p, spec in (fed.get("partners") or {}).items() for b in spec.get("blocks", [])}
    ranked = sorted(row.items(), key=lambda kv: -abs(kv[1][1]))[:top]
    return [{"feature": f, "words": WORDS.get(f, f.replace("_", " ")), "block": b, "owner": owners.get(b, ""),
             "value": v, "level": lvl} for f, (b, v, lvl) in ranked if abs(v) > 0]
