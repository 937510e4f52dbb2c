"""Held-out quality of a horizontal run, privately: noised sums from each node, R² at the coordinator.

A node scores the global model on its held-out areas and releases four sums over those rows (rows, labels,
squared labels, squared errors), each row's terms clipped, with one Gaussian draw per sum: one Gaussian
release whose unit is the area-period row. The coordinator adds the nodes' sums and computes R² from the
totals (post-processing). Both ends share this module so the bounds and the charge agree by construction.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dp_accounting import Release
from federation.units import ROW_UNIT

Y_CLIP = 2.0      # |label| in scaled units (public centre and scale) is clipped here
ERR_CLIP = 4.0    # each row's squared error (scaled units) is clipped here
# Bounds of one row's contribution to (rows, sum y, sum y², sum squared error): each sum is divided by its
# bound before the noise, so every scaled sum has sensitivity 1 and the vector has L2 sensitivity 2.
BOUNDS = np.array([1.0, Y_CLIP, Y_CLIP**2, ERR_CLIP])
SENSITIVITY = float(np.sqrt(len(BOUNDS)))
KIND = "horizontal-eval"
FIELDS = ("rows", "sum-y", "sum-y2", "sse")


def sums(pred: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The exact clipped sums of one node's held-out rows (never sent as they are)."""
    yc = np.clip(y, -Y_CLIP, Y_CLIP)
    err = np.minimum((pred - yc) ** 2, ERR_CLIP)
    return np.array([float(len(y)), float(yc.sum()), float((yc**2).sum()), float(err.sum())])


def noised(exact: np.ndarray, noise: np.ndarray, sigma: float) -> np.ndarray:
    """`exact` plus standard normal `noise` scaled to noise multiplier `sigma` of the L2 sensitivity."""
    return exact + noise * sigma * SENSITIVITY * BOUNDS


def release(sigma: float, run_id: str, rnd: int) -> Release:
    """The ledger's record of one node's held-out release in round `rnd`."""
    return Release(mechanism="gaussian", noise_multiplier=sigma, sample_rate=1.0, steps=1, unit=ROW_UNIT,
                   run_id=run_id, round=rnd, kind=KIND, sensitivity=SENSITIVITY)


@dataclass(frozen=True)
class HeldOut:
    """R² of the global model over every node's held-out rows, from the nodes' noised sums."""

    r2: float | None
    rows: float
    nodes: int

    def text(self) -> str:
        if self.r2 is None:
            return f"held-out R² (DP): n/a (noised totals too small; {self.nodes} nodes)"
        return f"held-out R² (DP) {self.r2:.3f} on about {max(self.rows, 0):.0f} rows of {self.nodes} nodes"


def combine(per_node: list[np.ndarray]) -> HeldOut:
    """Add the nodes' noised sums and compute R² = 1 - SSE / SST (SST from the sums of y and y²)."""
    if not per_node:
        return HeldOut(None, 0.0, 0)
    n, sy, syy, sse = np.sum(per_node, axis=0)
    sst = syy - sy * sy / n if n > 1 else 0.0
    r2 = 1.0 - sse / sst if sst > 0 else None
    return HeldOut(None if r2 is None else float(r2), float(n), len(per_node))
