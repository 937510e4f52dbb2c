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


LEAD = {"ar_phi": 0.9, "lag_months": 4, "effect": {"nuisance_unsafety": -0.05}, "basis": "test"}


def _lead_corr(path, lag: int) -> float:
    """Correlation of the driver partners read at t with liveability at t + lag, over areas and months."""
    live = path.liveability()
    seen = path.drivers[:, :, 0]
    return float(np.corrcoef(seen[:, :-lag].ravel(), live[:, lag:].ravel())[0, 1])


def test_a_lead_driver_moves_liveability_lag_months_after_partners_see_it() -> None:
    spec = dict(SPEC, static_weights={}, random_effect_sd={d: 1e-6 for d in DIMENSIONS},
                ar_sd={d: 0.002 for d in DIMENSIONS}, leads={"strain": LEAD})
    path = simulate(_areas(), spec, 60, np.random.default_rng(2), "test")
    assert path.driver_names == ("strain",) and path.drivers.shape == (60, 60, 1)
    assert _lead_corr(path, 4) < -0.9    # the driver seen now is liveability 4 months on
    assert _lead_corr(path, 4) < _lead_corr(path, 1) < 0  # and less so sooner
    null = simulate(_areas(), dict(spec, leads_visible=False, partners_read="level"), 60, np.random.default_rng(2), "test")
    assert np.array_equal(null.scores, path.scores)  # the same liveability in both worlds
    assert abs(_lead_corr(null, 4)) < 0.1           # but partners' driver says nothing about it
    assert np.allclose(null.z, null.z[:, :1])        # and partners read only the static level
    # a table's loadings reach the driver by name; an unknown name is one clear error
    assert np.allclose(path.modulation({"strain": 0.5}, "t"), 0.5 * path.drivers[:, :, 0])
    with pytest.raises(ConfigError, match="unknown dimension or lead driver 'stress'"):
        path.modulation({"stress": 0.5}, "t")


@pytest.mark.parametrize("lead, message", [
    ({k: v for k, v in LEAD.items() if k != "basis"}, "field 'latent.leads.strain.basis' is missing"),
    (dict(LEAD, basis=" "), "must say where the values come from"),
    (dict(LEAD, lag_months=-1), "lag_months' must be a whole number of months in 0..36"),
    (dict(LEAD, ar_phi=1.0), "ar_phi' must lie strictly between -1 and 1"),
    (dict(LEAD, effect={"cohesion": -0.1}), "loading on unknown dimension or lead driver 'cohesion'"),
    (dict(LEAD, episodes={"per_year": 0.3, "size": 0.5}), r"episodes' must be \{per_year: 0..12, size: >= 1\}"),
])
def test_bad_lead_is_a_config_error(lead: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        simulate(_areas(), dict(SPEC, leads={"strain": lead}), 3, np.random.default_rng(0), "test")


def test_real_levels_are_the_areas_leefbaarometer_scores(tmp_path) -> None:
    rows = [f"A{i},{2014 + 4 * y},{0.01 * i},{-0.01 * i},0,0,{0.001 * y}" for i in range(60) for y in range(2)]
    (tmp_path / "lbm.csv").write_text("bu_code,jaar,won,fys,vrz,soc,onv\n" + "\n".join(rows) + "\n")
    spec = dict(SPEC, levels={"file": "lbm.csv"}, ar_sd={d: 1e-9 for d in DIMENSIONS})
    path = simulate(_areas(), spec, 2, np.random.default_rng(0), "test", tmp_path)
    assert np.allclose(path.scores[7, 0], [0.07, -0.07, 0, 0, 0.0005], atol=1e-6)
    (tmp_path / "lbm.csv").write_text("bu_code,jaar,won,fys,vrz,soc,onv\n" + "\n".join(rows[:-2]) + "\n")
    with pytest.raises(ConfigError, match="no Leefbaarometer dimensions for area 'A59'"):
        simulate(_areas(), spec, 2, np.random.default_rng(0), "test", tmp_path)


def test_episodes_keep_the_drivers_variance_but_make_trouble_break_out_in_places() -> None:
    spec = dict(SPEC, leads={"strain": dict(LEAD, ar_phi=0.0)})   # no persistence: the shocks themselves
    calm = simulate(_areas(), spec, 600, np.random.default_rng(3), "test").drivers.ravel()
    spec["leads"]["strain"]["episodes"] = {"per_year": 0.3, "size": 5}
    wild = simulate(_areas(), spec, 600, np.random.default_rng(3), "test").drivers.ravel()
    assert abs(calm.var() - 1) < 0.02 and abs(wild.var() - 1) < 0.05
    kurtosis = lambda x: float(((x - x.mean()) ** 4).mean() / x.var() ** 2)  # noqa: E731
    assert kurtosis(calm) < 3.2 and kurtosis(wild) > 6   # rare, large shocks
