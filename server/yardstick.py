"""The yardstick: the pooled non-private model and each partner's local-only model, on held-out areas.

The pooled model sees every block of every partner in one place: the upper bound that nobody may run
in production. Federated modes are measured against it. Areas are split into folds; each fold's areas
are predicted by models trained on the other folds, and R² and MAE are computed over all held-out
predictions together (steadier than one small test split of ~50 areas).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from federation.dataset import Examples, LabelSpec, area_folds, block_widths
from federation.model import ModelSpec, build_model
from federation.task import TrainConfig, fit, predict, r2_mae


POOLED = "pooled (all blocks, non-private)"


@dataclass
class YardstickResult:
    """Held-out R² and MAE per model, with the protocol that produced them."""

    federation: str
    models: dict[str, dict[str, float]] = field(default_factory=dict)
    protocol: dict[str, object] = field(default_factory=dict)
    # Out-of-fold predictions per model (area_code, period, y, pred in label units), to score any subset.
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
        rows = [f"{'model':<40} {'R²':>7} {'MAE':>7} {'rows':>7}"]
        for name, m in self.models.items():
            rows.append(f"{name:<40} {m['r2']:>7.3f} {m['mae']:>7.3f} {m['n']:>7d}")
        return "\n".join(rows)


def cross_validated(
    ex: Examples,
    blocks: Sequence[str],
    model: ModelSpec,
    train_cfg: TrainConfig,
    label: LabelSpec,
    folds: Mapping[str, int],
    seed: int,
    y_eval: np.ndarray | None = None,
) -> pd.DataFrame:
    """Out-of-fold predictions of a model on `blocks` only (rows lacking all of them are not scored).

    Trained on `ex.y`; scored against `y_eval` (aligned with `ex`, e.g. the exact label where `ex.y` is a
    DP release of it), or `ex.y` itself."""
    keep = np.ones(len(ex), bool) if y_eval is None else ~np.isnan(y_eval)
    truth = ex.y if y_eval is None else y_eval
    ex = ex.subset(keep)
    truth = truth[keep]
    sub = ex.only_blocks(blocks)
    truth = truth[ex.present[:, [i for i, b in enumerate(ex.blocks) if b in blocks]].any(axis=1)]
    fold_of = sub.keys["area_code"].map(folds).to_numpy()
    pred = np.full(len(sub), np.nan, np.float32)
    for k in sorted(set(folds.values())):
        test = fold_of == k
        if not test.any() or test.all():
            continue
        spec = model.only(blocks)
        net, _ = fit(lambda: build_model(spec, seed=seed + k), sub.subset(~test),
                     replace(train_cfg, seed=seed + k))
        pred[test] = predict(net, sub.subset(test))
    scored = ~np.isnan(pred)
    frame = sub.keys[scored].reset_index(drop=True)
    frame["fold"] = fold_of[scored]
    frame["y"] = label.unscale(truth[scored])
    frame["pred"] = label.unscale(pred[scored])
    return frame


def run_yardstick(
    federation: str,
    ex: Examples,
    groups: Mapping[str, Sequence[str]],
    model: ModelSpec,
    train_cfg: TrainConfig,
    label: LabelSpec,
    n_folds: int,
    seed: int,
    progress=print,
    folds: Mapping[str, int] | None = None,
) -> YardstickResult:
    """Pooled model on every block, then one local-only model per group of blocks (a partner). `folds`: each
    area's fold when the folds are not drawn over all areas together (a horizontal federation's nodes draw
    their own, and the yardstick must hold out the very areas they do)."""
    folds = dict(folds) if folds is not None else area_folds(ex.keys["area_code"], n_folds, seed)
    result = YardstickResult(federation, protocol={
        "split": f"{n_folds}-fold cross-validation over areas (held-out areas)",
        "areas": len(folds), "rows": len(ex), "seed": seed, "folds": n_folds,
        "label": {"center": label.center, "scale": label.scale, "shift_periods": label.shift},
        "train": train_cfg.__dict__, "model": {"embed_dim": model.embed_dim, "hidden": model.hidden},
    })
    jobs = {POOLED: list(ex.blocks)}
    jobs.update({f"{name} alone ({', '.join(b)})": list(b) for name, b in groups.items()})
    for i, (name, blocks) in enumerate(jobs.items(), 1):
        progress(f"[{i}/{len(jobs)}] {name}: {n_folds} folds ...")
        frame = cross_validated(ex, blocks, model, train_cfg, label, folds, seed)
        result.predictions[name] = frame
        result.models[name] = r2_mae(frame["y"].to_numpy(), frame["pred"].to_numpy())
    return result


def model_spec(blocks: Sequence[str], sizes: Mapping[str, int]) -> ModelSpec:
    return ModelSpec.from_widths(block_widths(blocks), **{k: int(v) for k, v in sizes.items()})
