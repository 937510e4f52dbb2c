"""The yardstick's result file: what `pulse-twin baseline` writes and the report's verdict reads.

The yardstick itself (pooled and partner-alone models on exact data) is a development tool
(devtools/yardstick.py); the coordinator's report only reads its figures.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from federation.output import table
from federation.task import r2_mae

POOLED = "pooled (all blocks, non-private)"


@dataclass
class YardstickResult:
    """Held-out R² and MAE per model, with the protocol that produced them."""

    federation: str
    models: dict[str, dict[str, float]] = field(default_factory=dict)
    protocol: dict[str, object] = field(default_factory=dict)
    # Out-of-fold predictions per model (area_code, period, y, pred in label units, fold), to score any subset.
    predictions: dict[str, pd.DataFrame] = field(default_factory=dict)

    def score_on(self, areas: set[str]) -> dict[str, dict[str, float]]:
        """R² and MAE of every model on the rows of `areas` only (e.g. a federated run's held-out areas)."""
        out = {}
        for name, frame in self.predictions.items():
            rows = frame[frame["area_code"].isin(areas)]
            out[name] = r2_mae(rows["y"].to_numpy(), rows["pred"].to_numpy())
        return out

    def pooled_on_fold(self, fold: int) -> dict[str, float] | None:
        """R² and MAE of the pooled model on the areas of one fold (a horizontal run's held-out areas)."""
        frame = self.predictions.get(POOLED)
        if frame is None or "fold" not in frame.columns:
            return None
        rows = frame[frame["fold"] == fold]
        return r2_mae(rows["y"].to_numpy(), rows["pred"].to_numpy()) if len(rows) > 1 else None

    def to_json(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"federation": self.federation, "models": self.models,
                                    "protocol": self.protocol}, indent=2))
        if self.predictions:
            frames = [f.assign(model=name) for name, f in self.predictions.items()]
            pd.concat(frames).to_csv(path.with_suffix(".predictions.csv"), index=False)

    @classmethod
    def from_json(cls, path: Path) -> "YardstickResult":
        """What `to_json` wrote (the out-of-fold predictions too, when their CSV is beside it)."""
        data = json.loads(Path(path).read_text())
        result = cls(str(data["federation"]), dict(data["models"]), dict(data.get("protocol", {})))
        oof = Path(path).with_suffix(".predictions.csv")
        if oof.is_file():
            frame = pd.read_csv(oof, dtype={"area_code": str, "period": str})
            result.predictions = {str(name): f.drop(columns="model").reset_index(drop=True)
                                  for name, f in frame.groupby("model", sort=False)}
        return result

    def table(self) -> str:
        return table(["model", "R²", "MAE", "rows"],
                     [[name, float(m["r2"]), float(m["mae"]), int(m["n"])] for name, m in self.models.items()])
