"""The latent process: reference level plus five dimensions, persistent AR(1) months, exact effect sizes."""
from __future__ import annotations

import numpy as np
import pytest

from federation.errors import ConfigError
from devtools.synthetic.areas import ATTRIBUTES, AreaSet
from devtools.synthetic.intensity import per_area_year, per_city
from devtools.synthetic.latent import DIMENSIONS, simulate


def _areas(count: int = 60) -> AreaSet:
    rng = np.random.default_rng(0)
    attributes = {name: rng.random((count, 1)) for name in ATTRIBUTES}
    return AreaSet("X:", [f"A{i}" for i in range(count)], [f"a{i}" for i in range(count)], [2019],
                   np.full((count, 1), 1000), attributes)


SPEC = {
    "reference_level": 4.10,
    "covariates": ["income_k"],
    "shift": {d: 0.0 for d in DIMENSIONS},
    "static_weights": {"housing_stock": {"income_k": 0.05}},
    "random_effect_sd": dict(zip(DIMENSIONS, [0.03, 0.04, 0.05, 0.06, 0.07])),
    "ar_phi": {d: 0.85 for d in DIMENSIONS},
    "ar_sd": {d: 0.02 for d in DIMENSIONS},
}


def test_liveability_is_reference_plus_dimensions_and_months_persist() -> None:
    path = simulate(_areas(), SPEC, 240, np.random.default_rng(1), "test")
    assert path.scores.shape == (60, 240, 5)
    assert np.allclose(path.liveability(), 4.10 + path.scores.sum(axis=2))
    deviation = path.scores - path.scores.mean(axis=1, keepdims=True)
    lag1 = np.mean([np.corrcoef(deviation[a, 1:, k], deviation[a, :-1, k])[0, 1] for a in range(60) for k in range(5)])
    assert 0.75 < lag1 < 0.9
    static = path.scores.mean(axis=1) - path.scores.mean(axis=(0, 1))
    x = _areas().static("income_k")
    # the covariate reaches only the dimension that weights it
    assert abs(np.corrcoef(static[:, 0], x)[0, 1]) > 0.6
    assert abs(np.corrcoef(static[:, 4], x)[0, 1]) < 0.3


def test_area_effects_have_the_profile_spread_whatever_the_seed() -> None:
    spec = dict(SPEC, static_weights={}, ar_sd={d: 1e-9 for d in DIMENSIONS})
    for seed in (1, 2, 3):
        path = simulate(_areas(), spec, 3, np.random.default_rng(seed), "test")
        assert np.allclose(path.scores[:, 0].std(axis=0), [0.03, 0.04, 0.05, 0.06, 0.07], rtol=1e-3)


def test_normalisations_keep_the_expectation() -> None:
    rng = np.random.default_rng(4)
    raw = np.exp(rng.normal(size=(5, 24)))
    years = np.repeat([2019, 2020], 12)
    norm = per_area_year(raw, years)
    assert np.allclose(norm[:, :12].mean(axis=1), 1) and np.allclose(norm[:, 12:].mean(axis=1), 1)
    pop = rng.integers(100, 5000, size=(5, 24)).astype(float)
    assert np.isclose((per_city(raw, pop) * pop).sum(), pop.sum())


def test_bad_latent_section_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="field 'latent.ar_phi' must lie strictly between -1 and 1"):
        simulate(_areas(), dict(SPEC, ar_phi={d: 1.0 for d in DIMENSIONS}), 3, np.random.default_rng(0), "test")
    with pytest.raises(ConfigError, match="field 'latent.random_effect_sd.nuisance_unsafety' is missing"):
        spec = dict(SPEC, random_effect_sd={d: 0.1 for d in DIMENSIONS[:4]})
        simulate(_areas(), spec, 3, np.random.default_rng(0), "test")
