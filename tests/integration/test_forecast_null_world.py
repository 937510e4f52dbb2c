"""The null world (partners' records carry nothing about liveability's changes) through the coordinator's
forecasting on DP releases: the gate refuses the federated model and the warning list is withheld.

Small: 60,000 records over the profile's first 24 months, one release at epsilon 3, horizon 3, two test
origins x 5 folds of buurten. The full measurement is `python -m benchmarks.skill --dataset heerlen_null`."""
from __future__ import annotations

import numpy as np
import pytest

from benchmarks import common
from benchmarks.skill import panels
from benchmarks.vertical import partner_releases
from server.forecast.run import MODEL, ForecastConfig, forecast


@pytest.fixture(scope="module")
def null_world(tmp_path_factory):
    root = common.cities_data(tmp_path_factory.mktemp("null") / "data", records=60_000, months=24,
                              cities=("heerlen",), world="null")
    return common.compose_cfg(["federation=heerlen", f"federation.data_root={root}"])["federation"]


def test_the_gate_refuses_a_model_in_a_world_without_leads(null_world, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    exact_blocks, exact_label, _ = partner_releases(null_world, None, "exact")
    truth, _ = panels(null_world, exact_blocks, exact_label, {}, released=False)
    waves = [p for p, seen in zip(truth.periods, np.isfinite(truth.values).any(axis=0)) if seen]
    blocks, label, noise = partner_releases(null_world, 3.0, "null-world")
    released, partners = panels(null_world, blocks, label, noise, released=True, truth=truth)
    result = forecast(released.only_periods(waves), partners,
                      ForecastConfig(horizons=(3,), configured_horizon=3, test_origins=2), truth=truth)
    g = result.skill["gate"]
    assert g["releasable"] is False and g["skill_lo"] <= 0
    assert "NIET VRIJGEGEVEN" in g["verdict_nl"] and "NOT RELEASABLE" in g["verdict_en"]
    assert result.warnings["model_rank"].isna().all() and result.warnings["naive_rank"].notna().any()
    assert any(r["model"] == MODEL and r["horizon"] == 3 for r in result.skill["rows"])
