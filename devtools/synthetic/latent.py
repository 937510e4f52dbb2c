"""The latent liveability process that drives every table of a city.

Each area has, per Leefbaarometer dimension, a static level (city shift + weighted standardised
register covariates + an area random effect) and a monthly AR(1) deviation. Liveability is the
reference level plus the sum of the five dimension scores. Every table reads the dimensions through
its own loadings (see `intensity.py`), so each partner sees a different part of the same process.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from federation.errors import ConfigError
from devtools.synthetic.areas import AreaSet

DIMENSIONS: tuple[str, ...] = (
    "housing_stock",
    "physical_environment",
    "amenities",
    "social_cohesion",
    "nuisance_unsafety",
)


@dataclass
class LatentPath:
    """Dimension scores (A, T, 5) in Leefbaarometer points and their standardised form `z`."""

    reference_level: float
    scores: np.ndarray
    z: np.ndarray

    def liveability(self) -> np.ndarray:
        """(A, T) reference level plus the sum of the five dimension scores."""
        return self.reference_level + self.scores.sum(axis=2)


def per_dimension(spec: dict, key: str, where: str) -> np.ndarray:
    """A (5,) vector from a mapping dimension -> number; every dimension must be given."""
    values = spec.get(key)
    if not isinstance(values, dict):
        raise ConfigError(f"{where}: field 'latent.{key}' must map each dimension to a number")
    unknown = set(values) - set(DIMENSIONS)
    if unknown:
        raise ConfigError(f"{where}: field 'latent.{key}' names unknown dimension '{sorted(unknown)[0]}'")
    missing = [d for d in DIMENSIONS if d not in values]
    if missing:
        raise ConfigError(f"{where}: field 'latent.{key}.{missing[0]}' is missing")
    return np.array([float(values[d]) for d in DIMENSIONS])


def loadings_vector(loadings: dict | None, where: str) -> np.ndarray:
    """(5,) loadings of one quantity on the standardised dimensions (absent dimensions are 0)."""
    loadings = loadings or {}
    unknown = set(loadings) - set(DIMENSIONS)
    if unknown:
        raise ConfigError(f"{where}: loading on unknown dimension '{sorted(unknown)[0]}'")
    return np.array([float(loadings.get(d, 0.0)) for d in DIMENSIONS])


def _standardise(columns: np.ndarray) -> np.ndarray:
    """z-scores clipped at +-2.5, so that a tiny area with an extreme rate does not dominate."""
    sd = columns.std(axis=0)
    return np.clip((columns - columns.mean(axis=0)) / np.where(sd > 0, sd, 1.0), -2.5, 2.5)


def _random_effects(rng: np.random.Generator, count: int, x: np.ndarray | None) -> np.ndarray:
    """(A, 5) area effects: independent of the covariates and of each other, with unit variance.

    A city has only some 50-70 areas, too few for sampling variation in the effects to be negligible;
    drawing normals and then whitening them (after removing the covariates) keeps the realised share
    of each dimension in the liveability variance at the profile's value, whatever the seed.
    """
    u = rng.standard_normal((count, 5))
    design = np.column_stack([np.ones(count)] + ([x] if x is not None else []))
    if count <= design.shape[1] + 5:
        return u
    u -= design @ np.linalg.lstsq(design, u, rcond=None)[0]
    q, r = np.linalg.qr(u)
    return q * np.sign(np.diag(r)) * np.sqrt(count)


def simulate(areas: AreaSet, spec: dict, months: int, rng: np.random.Generator, where: str) -> LatentPath:
    """Static levels plus stationary AR(1) deviations for `months` months."""
    covariates = list(spec.get("covariates", []))
    x = _standardise(np.column_stack([areas.static(c) for c in covariates])) if covariates else None
    weights = spec.get("static_weights", {}) or {}
    static = np.tile(per_dimension(spec, "shift", where), (areas.count, 1))
    for k, dim in enumerate(DIMENSIONS):
        w = weights.get(dim, {}) or {}
        unknown = set(w) - set(covariates)
        if unknown:
            raise ConfigError(f"{where}: field 'latent.static_weights.{dim}' uses '{sorted(unknown)[0]}', "
                              f"which is not in 'latent.covariates'")
        for j, name in enumerate(covariates):
            static[:, k] += float(w.get(name, 0.0)) * x[:, j]
    static += per_dimension(spec, "random_effect_sd", where) * _random_effects(rng, areas.count, x)

    phi = per_dimension(spec, "ar_phi", where)
    if np.any(np.abs(phi) >= 1):
        raise ConfigError(f"{where}: field 'latent.ar_phi' must lie strictly between -1 and 1")
    sd = per_dimension(spec, "ar_sd", where)
    shocks = rng.standard_normal((months, areas.count, 5))
    deviation = np.empty((months, areas.count, 5))
    deviation[0] = sd * shocks[0]
    innovation = sd * np.sqrt(1.0 - phi**2)
    for t in range(1, months):
        deviation[t] = phi * deviation[t - 1] + innovation * shocks[t]
    scores = static[:, None, :] + deviation.transpose(1, 0, 2)
    flat = scores.reshape(-1, 5)
    z = ((flat - flat.mean(axis=0)) / np.where(flat.std(axis=0) > 0, flat.std(axis=0), 1.0)).reshape(scores.shape)
    return LatentPath(float(spec.get("reference_level", 4.10)), scores, z)
