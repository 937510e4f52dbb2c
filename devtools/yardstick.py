"""The yardstick: the pooled non-private model and each partner's local-only model, on held-out areas.

The pooled model sees every block of every partner in one place: the upper bound that nobody may run
in production. Federated modes are measured against it. Areas are split into folds; each fold's areas
are predicted by models trained on the other folds, and R² and MAE are computed over all held-out
predictions together (steadier than one small test split of ~50 areas).
"""
from __future__ import annotations

from typing import Mapping, Sequence

from federation.dataset import Examples, LabelSpec, area_folds
from federation.blocks import block_widths
from federation.model import ModelSpec
from federation.task import TrainConfig, cross_validated, r2_mae
from server.report.yardstick_result import POOLED, YardstickResult
from federation.output import progress


def run_yardstick(
    federation: str,
    ex: Examples,
    groups: Mapping[str, Sequence[str]],
    model: ModelSpec,
    train_cfg: TrainConfig,
    label: LabelSpec,
    n_folds: int,
    seed: int,
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
