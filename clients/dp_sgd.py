"""DP-SGD on a node's own rows with Opacus: Poisson sampling, per-sample clipping, Gaussian noise.

The node, not Opacus, keeps the privacy history (its ledger); this module only runs the mechanism with
the noise multiplier the node calibrated once for the whole planned schedule, and returns exactly
what was run (steps, sample rate, noise) so the ledger can charge it.

Randomness that the guarantee rests on (which rows a step samples, the Gaussian noise) comes from the
operating system's CSPRNG (`os.urandom`), never from a seeded generator whose later outputs follow from
earlier ones: uniforms of 53 random bits, Gaussians by Box-Muller, each noise value the normalised sum of
four draws (the defence against floating-point attacks that Opacus's secure mode also uses, n = 2).

FedProx's proximal term is added to the gradient *after* clipping and noising: it does not depend on
any row, so it is post-processing, and it would otherwise be lost (Opacus builds the update from
per-sample gradients of the data loss only).
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from opacus import GradSampleModule
from opacus.optimizers import DPOptimizer
from opacus.optimizers.optimizer import _check_processed_flag, _mark_as_processed
from torch import nn

from federation.dataset import Examples
from federation.model import BlockModel
from federation.task import drop_blocks, tensors
from federation.units import expected_batch, steps_per_round


def secure_uniform(n: int) -> np.ndarray:
    """`n` independent uniforms on [0, 1) with 53 random bits each, from the OS's CSPRNG."""
    bits = np.frombuffer(os.urandom(8 * n), dtype=np.uint64) >> np.uint64(11)
    return bits.astype(np.float64) * 2.0**-53


def secure_normal(n: int, std: float) -> np.ndarray:
    """`n` independent N(0, std^2) values from the OS's CSPRNG (Box-Muller; each the sum of 4 draws / 2)."""
    u1 = 1.0 - secure_uniform(2 * n)          # (0, 1]: log is finite
    u2 = secure_uniform(2 * n)
    radius = np.sqrt(-2.0 * np.log(u1))
    draws = np.concatenate([radius * np.cos(2 * np.pi * u2), radius * np.sin(2 * np.pi * u2)])
    return draws.reshape(4, n).sum(axis=0) / 2.0 * std


class SecureNoiseDPOptimizer(DPOptimizer):
    """Opacus's DP optimizer with its Gaussian noise drawn by `secure_normal`."""

    def add_noise(self) -> None:
        std = self.noise_multiplier * self.max_grad_norm
        for p in self.params:
            _check_processed_flag(p.summed_grad)
            noise = torch.from_numpy(secure_normal(p.summed_grad.numel(), std)).to(p.summed_grad.dtype)
            p.grad = (p.summed_grad + noise.view_as(p.summed_grad)).view_as(p)
            _mark_as_processed(p.summed_grad)


@dataclass(frozen=True)
class DPSGDConfig:
    """One node's local DP-SGD schedule for one round."""

    noise_multiplier: float
    max_grad_norm: float = 1.0
    sample_rate: float = 0.05     # Poisson rate q: the expected batch is q x rows
    local_epochs: float = 1.0     # steps per round = ceil(local_epochs / q)
    lr: float = 0.05
    momentum: float = 0.9
    proximal_mu: float = 0.0
    block_dropout: float = 0.1


@dataclass(frozen=True)
class DPSGDOutcome:
    """What the mechanism actually ran: the ledger charges exactly this."""

    noise_multiplier: float
    sample_rate: float
    steps: int
    rows: int


def dp_train(
    model: BlockModel,
    ex: Examples,
    cfg: DPSGDConfig,
    global_params: list[torch.Tensor] | None = None,
) -> DPSGDOutcome:
    """Train `model` in place on `ex` with DP-SGD for one round; return the mechanism's parameters.

    Batches are Poisson samples (each row independently with probability q), including empty ones,
    which still get a noised step: the accountant's analysis assumes exactly that.
    """
    if ex.y is None or len(ex) == 0:
        raise ValueError("DP-SGD needs labelled rows")
    q = cfg.sample_rate
    steps = steps_per_round(q, cfg.local_epochs)
    x, present, y = tensors(ex)
    # Only block dropout (a training choice, no part of the guarantee) uses torch's generator.
    gen = torch.Generator().manual_seed(int.from_bytes(os.urandom(8), "little"))
    gsm = GradSampleModule(model, loss_reduction="mean")
    optimizer = SecureNoiseDPOptimizer(
        torch.optim.SGD(gsm.parameters(), lr=cfg.lr, momentum=cfg.momentum),
        noise_multiplier=cfg.noise_multiplier,
        max_grad_norm=cfg.max_grad_norm,
        expected_batch_size=max(1, round(expected_batch(len(ex), q))),
        loss_reduction="mean",
    )
    loss_fn = nn.MSELoss()
    gsm.train()
    for _ in range(steps):
        idx = torch.from_numpy(np.flatnonzero(secure_uniform(len(ex)) < q))
        optimizer.zero_grad(set_to_none=True)
        out = gsm(x[idx], drop_blocks(present[idx], cfg.block_dropout, gen))
        loss = loss_fn(out, y[idx]) if len(idx) else out.sum() * 0.0
        loss.backward()
        if not optimizer.pre_step():
            continue
        if cfg.proximal_mu > 0 and global_params is not None:
            with torch.no_grad():
                for p, g in zip(model.parameters(), global_params):
                    p.grad.add_(cfg.proximal_mu * (p.detach() - g))
        optimizer.original_optimizer.step()
    gsm._close()
    return DPSGDOutcome(cfg.noise_multiplier, q, steps, len(ex))


def warm_up() -> None:
    """A few DP-SGD steps of a throwaway model on made-up rows. The first DP-SGD of a process (Opacus's hooks,
    torch's first kernels) costs several times a later one; a node that preloads its ClientApp pays it before
    round 1 rather than in it. Nothing of the node's data is read, nothing is kept and nothing leaves."""
    import pandas as pd

    from federation.model import ModelSpec, build_model

    rows, width = 64, 4
    gen = np.random.default_rng(0)   # made-up inputs, no privacy role; the steps' noise is the secure sampler's
    ex = Examples(pd.DataFrame({"key": range(rows)}), ("warm-up",), gen.standard_normal((rows, width), np.float32),
                  np.ones((rows, 1), np.float32), gen.standard_normal(rows).astype(np.float32))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dp_train(build_model(ModelSpec(blocks=(("warm-up", width),))), ex,
                 DPSGDConfig(noise_multiplier=1.0, sample_rate=0.25, local_epochs=1.0))
