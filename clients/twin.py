"""A node's synthetic twin: rows of the same schema, keys and block presence, with made-up values.

A dry run (`federate --dry-run`, config `dry_run: true`) trains and evaluates on the twin instead of the
node's rows, so tuning a horizontal run (sample rate, rounds, learning rate, noise) costs no privacy: nothing
of the twin's values comes from the node's data, only its shape (which areas and periods have which blocks,
the public facts a run discloses anyway). The values follow a fixed linear signal plus noise, so a run can
learn something and its held-out R² moves as a real one would; the figures say nothing about the real data.
"""
from __future__ import annotations

import zlib

import numpy as np

from federation.dataset import Examples
from federation.blocks import block_widths

SIGNAL_NOISE = 0.5   # standard deviation of the twin's label around its linear signal (scaled units)


def twin(ex: Examples, name: str) -> Examples:
    """`ex` with every input and label replaced by synthetic values (the same for a node name every time)."""
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    widths = list(block_widths(ex.blocks).values())
    x = (rng.normal(size=ex.x.shape) * np.repeat(ex.present, widths, axis=1)).astype(np.float32)  # absent: 0
    weights = np.random.default_rng(0).normal(scale=0.3, size=ex.x.shape[1]).astype(np.float32)
    y = (x @ weights + rng.normal(scale=SIGNAL_NOISE, size=len(ex))).astype(np.float32)
    return Examples(ex.keys, ex.blocks, x, ex.present, y)
