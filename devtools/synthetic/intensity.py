"""Expected monthly counts per area: a base rate modulated by the latent dimensions.

factor(a, t) = exp(loadings . z(a, t) + driver loadings . D(a, t) + noise), then normalised in one of two ways:
- a CBS-calibrated base (per area, per year) is divided by the factor's mean over that area's months
  of the same calendar year, so the latent process moves counts between months but the expected
  annual count stays exactly rate x population / 1000;
- a city-level base is divided by the population-weighted mean factor of the city, so the city's
  expected rate stays the base rate while areas differ by their latent state.
"""
from __future__ import annotations

import numpy as np

from devtools.synthetic.latent import LatentPath


def factor(latent: LatentPath, loadings: dict | None, noise_sd: float, rng: np.random.Generator,
           where: str) -> np.ndarray:
    """(A, T) un-normalised modulation: loadings on dimensions and lead drivers, plus the quantity's own
    multiplicative noise."""
    log = latent.modulation(loadings, where)
    return np.exp(log + noise_sd * rng.standard_normal(log.shape))


def per_area_year(raw: np.ndarray, month_years: np.ndarray) -> np.ndarray:
    """Normalise so that each area's factor averages 1 over the months of each calendar year."""
    out = np.empty_like(raw)
    for year in np.unique(month_years):
        cols = month_years == year
        out[:, cols] = raw[:, cols] / raw[:, cols].mean(axis=1, keepdims=True)
    return out


def per_city(raw: np.ndarray, population: np.ndarray) -> np.ndarray:
    """Normalise so that the population-weighted mean factor of the city is 1."""
    return raw * (population.sum() / (population * raw).sum())


def monthly_counts(rate_per_1000_year: np.ndarray | float, population: np.ndarray, norm: np.ndarray) -> np.ndarray:
    """(A, T) expected counts per month from a yearly rate per 1,000 inhabitants."""
    return np.asarray(rate_per_1000_year) / 12.0 * population / 1000.0 * norm
