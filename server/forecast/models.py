"""Learned forecasters on the forecast features: ridge (label history alone, the linear reference) and the
block network. Both predict the CHANGE of the label from its recent level (the anchor: a trailing mean of
released values), on standardised inputs, and add the level back.

Why the change: the level barely moves from month to month, so a model of the level spends its capacity
(and its weight decay pulls it toward a constant) re-learning "the same as now", and falls below the naive
forecast; a model of the change starts AT the naive forecast (zero output) and can only add what the
features tell beyond it. Why standardised inputs: public block scalings leave some features hundreds of
times wider than others (a city-centre crime rate), and an unscaled network fits those few rows first.
Standardising with the training rows' mean and sd is post-processing of releases (no privacy cost).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace
from typing import Sequence

import numpy as np
import pandas as pd
import torch

from federation.dataset import Examples, area_folds
from federation.model import BlockModel, ModelSpec, build_model
from federation.task import TrainConfig, predict, train
from server.forecast.features import rise_columns

RIDGE_ALPHAS: tuple[float, ...] = (0.01, 0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0)


@dataclass(frozen=True)
class Standardiser:
    """Column means and sds of training rows; a missing input becomes the mean (0 after scaling)."""

    mean: np.ndarray
    sd: np.ndarray

    @classmethod
    def fit(cls, x: np.ndarray) -> "Standardiser":
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)   # an all-missing column: mean 0, sd 1 below
            mean = np.nanmean(x, axis=0) if len(x) else np.zeros(x.shape[1])
            sd = np.nanstd(x, axis=0) if len(x) else np.ones(x.shape[1])
        mean = np.where(np.isfinite(mean), mean, 0.0)
        sd = np.where(np.isfinite(sd) & (sd > 1e-12), sd, 1.0)
        return cls(mean, sd)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        z = (x - self.mean) / self.sd
        return np.where(np.isfinite(z), z, 0.0)


@dataclass
class Ridge:
    """Linear model of the change on standardised features, penalty chosen by cross-validation over areas."""

    alphas: Sequence[float] = RIDGE_ALPHAS
    folds: int = 3
    seed: int = 0
    alpha: float = field(default=1.0, init=False)
    scaler: Standardiser | None = field(default=None, init=False)
    coef: np.ndarray | None = field(default=None, init=False)
    intercept: float = field(default=0.0, init=False)
    cv_error: float = field(default=float("inf"), init=False)   # squared error summed over the inner folds

    @staticmethod
    def _solve(z: np.ndarray, y: np.ndarray, alpha: float) -> tuple[np.ndarray, float]:
        b = float(y.mean())
        gram = z.T @ z + alpha * len(z) * np.eye(z.shape[1]) / max(z.shape[1], 1)
        return np.linalg.solve(gram, z.T @ (y - b)), b

    def fit(self, x: np.ndarray, y: np.ndarray, areas: np.ndarray) -> "Ridge":
        self.scaler = Standardiser.fit(x)
        z = self.scaler(x)
        if len(self.alphas) > 1:
            folds = area_folds(pd.Series(areas.astype(str)), self.folds, self.seed + 7919)
            fold_of = np.array([folds[str(a)] for a in areas])
            errors = []
            for alpha in self.alphas:
                err = 0.0
                for k in range(self.folds):
                    test = fold_of == k
                    if test.all() or not test.any():
                        continue
                    coef, b = self._solve(z[~test], y[~test], alpha)
                    err += float(np.sum((z[test] @ coef + b - y[test]) ** 2))
                errors.append(err)
            self.alpha = float(self.alphas[int(np.argmin(errors))])
            self.cv_error = float(np.min(errors))
        else:
            self.alpha = float(self.alphas[0])
        self.coef, self.intercept = self._solve(z, y, self.alpha)
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        assert self.scaler is not None and self.coef is not None, "fit first"
        return self.scaler(x) @ self.coef + self.intercept


@dataclass
class ForwardRidge:
    """Ridge on the label's history plus the partner inputs that earn their place, whichever of two lowers
    the squared error on held-out training areas more: (a) the few partner features whose rise
    (`features.rise`) helps, added one at a time, at most `max_added`, each while it lowers that error by at
    least `min_gain` (a share); or (b) every partner column, if it lowers it by that much more. A few hundred
    survey rows cannot carry a hundred partner columns (a ridge on all of them fits the releases' noise) but
    can carry the one or two rises that lead liveability; thousands of area-months can carry every column.
    Noisy releases that carry nothing cost nothing: with neither, the label's history alone stays."""

    widths: dict[str, int]
    seed: int = 0
    max_added: int = 3
    min_gain: float = 0.01
    chosen: tuple[int, ...] = field(default=(), init=False)   # partner columns in the model
    ridge: Ridge | None = field(default=None, init=False)
    _cols: np.ndarray | None = field(default=None, init=False)

    def fit(self, x: np.ndarray, y: np.ndarray, areas: np.ndarray) -> "ForwardRidge":
        base = list(range(next(iter(self.widths.values()), 0)))
        fit = lambda extra: Ridge(seed=self.seed).fit(x[:, base + list(extra)], y, areas)   # noqa: E731
        chosen: list[int] = []
        best = fit(chosen)
        candidates = rise_columns(self.widths)
        while len(chosen) < self.max_added and len(chosen) < len(candidates):
            trial, column = min(((fit(chosen + [c]), c) for c in candidates if c not in chosen),
                                key=lambda tc: tc[0].cv_error)
            if not trial.cv_error < best.cv_error * (1.0 - self.min_gain):
                break
            chosen, best = chosen + [column], trial
        every = list(range(len(base), x.shape[1]))
        if every and every != chosen:
            wide = fit(every)
            if wide.cv_error < best.cv_error * (1.0 - self.min_gain):
                chosen, best = every, wide
        self.chosen, self.ridge, self._cols = tuple(chosen), best, np.array(base + chosen, dtype=int)
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        assert self.ridge is not None and self._cols is not None, "fit first"
        return self.ridge.predict(x[:, self._cols])


@dataclass
class Network:
    """The fusion model: a linear part (`ForwardRidge`: the label's history and the partner rises, or every
    partner column, whichever lowers the held-out error) plus the project's block model (one encoder per
    feature group, a fusion head) on what the linear part leaves, both predicting the change from the recent
    level on standardised inputs. The block model's share (0, 1/2 or 1) is chosen on held-out training areas
    (two halves, each forecast by a network trained on the other) and must lower their error by at least
    `min_gain` (a share): the fusion model keeps the linear part's skill when the network finds nothing more
    (a network alone, fed a few hundred noisy rows, fell below a plain linear model). Trained non-privately
    at the coordinator on released features: post-processing."""

    widths: dict[str, int]
    train_cfg: TrainConfig = TrainConfig(epochs=20, batch_size=256, lr=3e-3, weight_decay=1e-2, block_dropout=0.0)
    seed: int = 0
    # Epochs are set so that a fit takes about `steps` optimiser steps, within 5 to `max_epochs` epochs:
    # 15,000 rows (LSOA-months) get 10 epochs, a few hundred (survey waves) 50 passes of ~100 steps.
    steps: int = 600
    max_epochs: int = 50
    embed_dim: int = 8
    hidden: int = 16
    shares: tuple[float, ...] = (0.0, 0.5, 1.0)
    min_gain: float = 0.01
    linear: ForwardRidge | None = field(default=None, init=False)
    model: BlockModel | None = field(default=None, init=False)
    share: float = field(default=0.0, init=False)
    scaler: Standardiser | None = field(default=None, init=False)
    y_sd: float = field(default=1.0, init=False)

    def _examples(self, x: np.ndarray, y: np.ndarray | None) -> Examples:
        assert self.scaler is not None
        z = self.scaler(x).astype(np.float32)
        keys = pd.DataFrame({"area_code": np.zeros(len(z), str), "period": np.zeros(len(z), str)})
        present = np.ones((len(z), len(self.widths)), np.float32)
        return Examples(keys, tuple(self.widths), z, present, None if y is None else (y / self.y_sd).astype(np.float32))

    def _train(self, x: np.ndarray, r: np.ndarray) -> BlockModel:
        spec = ModelSpec.from_widths(self.widths, embed_dim=self.embed_dim, hidden=self.hidden,
                                     head_hidden=self.hidden)
        with torch.random.fork_rng():
            torch.manual_seed(self.seed)
            per_epoch = max(1, -(-len(x) // self.train_cfg.batch_size))
            epochs = int(min(self.max_epochs, max(5, round(self.steps / per_epoch))))
            return train(build_model(spec, seed=self.seed), self._examples(x, r),
                         replace(self.train_cfg, seed=self.seed, epochs=epochs))

    def _net(self, model: BlockModel, x: np.ndarray) -> np.ndarray:
        return predict(model, self._examples(x, None)).astype(np.float64) * self.y_sd

    def fit(self, x: np.ndarray, y: np.ndarray, areas: np.ndarray) -> "Network":
        self.linear = ForwardRidge(self.widths, seed=self.seed).fit(x, y, areas)
        resid = y - self.linear.predict(x)
        self.scaler = Standardiser.fit(x)
        self.y_sd = float(np.std(resid)) or 1.0
        halves = area_folds(pd.Series(areas.astype(str)), 2, self.seed + 104729)
        half = np.array([halves[str(a)] for a in areas]) == 0
        self.share = 0.0
        if half.any() and (~half).any() and len(self.shares) > 1:
            guess = np.empty(len(x))   # cross-fitted: each half forecast by a network trained on the other
            for part in (half, ~half):
                guess[~part] = self._net(self._train(x[part], resid[part]), x[~part])
            errors = [float(np.mean((resid - w * guess) ** 2)) for w in self.shares]
            base = float(np.mean(resid ** 2))
            if min(errors) < base * (1.0 - self.min_gain):
                self.share = float(self.shares[int(np.argmin(errors))])
        elif len(self.shares) == 1:
            self.share = float(self.shares[0])
        self.model = self._train(x, resid) if self.share > 0 else None
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        assert self.linear is not None, "fit first"
        out = self.linear.predict(x)
        return out if self.model is None else out + self.share * self._net(self.model, x)
