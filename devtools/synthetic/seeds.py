"""Random generators keyed by (seed, city, purpose), so that a table never depends on generation order.

Each table gets its own `PCG64` stream from a `SeedSequence` whose spawn key is derived from the city
and table names: adding a city or a table, or generating in another order, leaves the others unchanged.
"""
from __future__ import annotations

import zlib

import numpy as np


def rng_for(seed: int, city: str, purpose: str) -> np.random.Generator:
    """The generator for one purpose (a table, the latent process, ...) of one city."""
    key = (zlib.crc32(city.encode("utf-8")), zlib.crc32(purpose.encode("utf-8")))
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(entropy=seed, spawn_key=key)))
