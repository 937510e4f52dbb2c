"""The learning task every party shares: training steps, prediction and the two yardstick metrics.

R² and MAE are reported in label units (liveability points), after undoing the label scaling.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from federation.dataset import Examples, LabelSpec, area_folds
from federation.model import BlockModel, ModelSpec, build_model


@dataclass(frozen=True)
class TrainConfig:
    """Non-private local training: full passes over shuffled mini-batches with Adam."""

    epochs: int = 15
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 1e-2
    block_dropout: float = 0.1
    seed: int = 0
    # When given, `fit` picks the weight decay among these by cross-validation over the training areas
    # (more shrinkage pays where the inputs are noisy releases; the data decide how much).
    weight_decay_choices: tuple[float, ...] = ()
    inner_folds: int = 3

    def __post_init__(self) -> None:
        object.__setattr__(self, "weight_decay_choices", tuple(float(w) for w in self.weight_decay_choices or ()))


def tensors(ex: Examples) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    x = torch.from_numpy(ex.x)
    present = torch.from_numpy(ex.present)
    y = None if ex.y is None else torch.from_numpy(ex.y)
    return x, present, y


def drop_blocks(present: torch.Tensor, p: float, generator: torch.Generator) -> torch.Tensor:
    """Hide each present block with probability p (never all of a row's blocks), so the head learns
    to predict from any subset of blocks."""
    if p <= 0 or present.shape[1] < 2:
        return present
    keep = (torch.rand(present.shape, generator=generator) >= p).float() * present
    empty = keep.sum(dim=1) == 0
    keep[empty] = present[empty]
    return keep


def train(model: BlockModel, ex: Examples, cfg: TrainConfig) -> BlockModel:
    """Fit `model` on `ex` (non-private: the yardstick and tests only, never a node's release path)."""
    if ex.y is None or len(ex) == 0:
        raise ValueError("training needs labelled examples")
    x, present, y = tensors(ex)
    gen = torch.Generator().manual_seed(cfg.seed)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    loss_fn = nn.MSELoss()
    model.train()
    for _ in range(cfg.epochs):
        order = torch.randperm(len(ex), generator=gen)
        for start in range(0, len(ex), cfg.batch_size):
            idx = order[start : start + cfg.batch_size]
            opt.zero_grad()
            loss = loss_fn(model(x[idx], drop_blocks(present[idx], cfg.block_dropout, gen)), y[idx])
            loss.backward()
            opt.step()
    return model


def fit(make_model: Callable[[], BlockModel], ex: Examples, cfg: TrainConfig) -> tuple[BlockModel, float]:
    """Train a fresh model on `ex`, with the weight decay chosen by cross-validation over its areas.

    Without `cfg.weight_decay_choices` this is `train` with `cfg.weight_decay`. With them, each choice is
    scored by squared error on held-out areas of `ex` (`cfg.inner_folds` folds), and the best is used
    on all of `ex`. Only `ex` is read: a caller's own held-out areas stay unseen. Returns the model and
    the weight decay used.
    """
    choices = cfg.weight_decay_choices
    if len(choices) > 1 and ex.y is not None:
        areas = ex.keys["area_code"].astype(str).to_numpy()
        folds = area_folds(areas, cfg.inner_folds, cfg.seed + 7919)
        fold_of = np.array([folds[a] for a in areas])
        labelled = ~np.isnan(ex.y)
        errors = []
        for wd in choices:
            pred = np.full(len(ex), np.nan, np.float32)
            for k in range(cfg.inner_folds):
                test = fold_of == k
                if test.all() or not test.any():
                    continue
                net = train(make_model(), ex.subset(~test & labelled), replace(cfg, weight_decay=wd))
                pred[test] = predict(net, ex.subset(test))
            ok = labelled & ~np.isnan(pred)
            errors.append(float(np.mean((pred[ok] - ex.y[ok]) ** 2)) if ok.any() else np.inf)
        cfg = replace(cfg, weight_decay=choices[int(np.argmin(errors))])
    elif len(choices) == 1:
        cfg = replace(cfg, weight_decay=choices[0])
    return train(make_model(), ex, cfg), cfg.weight_decay


@torch.no_grad()
def predict(model: BlockModel, ex: Examples) -> np.ndarray:
    """Scaled predictions for every row of `ex`."""
    model.eval()
    x, present, _ = tensors(ex)
    return model(x, present).numpy()


def r2_mae(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """Coefficient of determination and mean absolute error of predictions against the truth."""
    y_true = np.asarray(y_true, np.float64)
    y_pred = np.asarray(y_pred, np.float64)
    ss_res = float(np.sum((y_true - y_pred) ** 2))
    ss_tot = float(np.sum((y_true - y_true.mean()) ** 2))
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else float("nan")
    return {"r2": r2, "mae": float(np.mean(np.abs(y_true - y_pred))), "n": int(len(y_true))}


def evaluate(model: BlockModel, ex: Examples, label: LabelSpec) -> dict[str, float]:
    """R² and MAE in label units on labelled examples."""
    assert ex.y is not None
    return r2_mae(label.unscale(ex.y), label.unscale(predict(model, ex)))


def fit_blocks(ex: Examples, blocks: Sequence[str], model: ModelSpec, train_cfg: TrainConfig, seed: int) -> BlockModel:
    """The yardstick's non-private model on `blocks` only (rows lacking all of them left out), seeded with
    `seed`: what cross-validation trains per fold, and what a benchmark with its own split trains."""
    net, _ = fit(lambda: build_model(model.only(blocks), seed=seed), ex.only_blocks(blocks),
                 replace(train_cfg, seed=seed))
    return net


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
    """Out-of-fold predictions of a model on `blocks` only (rows lacking all of them are not scored), with
    each row's fold.

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
        net = fit_blocks(sub.subset(~test), blocks, model, train_cfg, seed + k)
        pred[test] = predict(net, sub.subset(test))
    scored = ~np.isnan(pred)
    frame = sub.keys[scored].reset_index(drop=True)
    frame["y"] = label.unscale(truth[scored])
    frame["pred"] = label.unscale(pred[scored])
    frame["fold"] = fold_of[scored]  # so that two estimates can be shown to share their folds
    return frame
