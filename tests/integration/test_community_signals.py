"""Synthetic community reports for Heerlen: Signalen-shaped, read by the community contract, tied to the
latent liveability, with planted under-reporting buurten that the under-reporting indicator finds (and, in
a control world without the bias, does not)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from clients.contracts import build_features, load_contract
from devtools.synthetic import profile
from devtools.synthetic.city import City
from devtools.synthetic.defaults import DEFAULT_CBS, DEFAULT_PROFILES
from devtools.synthetic.latent import DIMENSIONS
from devtools.synthetic.signals import PROFILE, generate_community, load_profile
from devtools.synthetic.timeline import Window
from server.feedback.underreporting import underreporting

PLANTED = set(load_profile()["under_reporting"]["areas"])


def _yearly(features, prefix: str) -> pd.Series:
    frame = features.blocks["community"]
    means = frame.groupby("area_code").mean(numeric_only=True) * 12
    return means[[c for c in means if c.startswith(prefix)]].sum(axis=1)


def _world(root: Path, factor: float | None = None):
    """Generate the community node (optionally with another bias factor) and build its block exactly."""
    community = PROFILE
    if factor is not None:
        spec = load_profile()
        spec["under_reporting"]["factor"] = factor
        community = root / "community_profile.yaml"
        community.write_text(yaml.safe_dump(spec))
    summary = generate_community(root / "nodes", seed=7, community=community)
    return summary, build_features(load_contract("community"), root / "nodes" / "community")


def _indicator(features):
    observed = _yearly(features, "reports_")
    frontline = _yearly(features, "frontliner_").rename("frontliner_signals_per_1000")
    return underreporting(observed, frontline.to_frame())


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    return _world(tmp_path_factory.mktemp("planted"))


def test_the_export_is_read_by_the_contract_and_bounds_cut_heavy_reporters(planted):
    summary, features = planted
    assert summary.rows == summary.residents + summary.frontliners
    stats = features.stats["tables"]
    assert stats["meldingen"]["units_cut"] > 0 and 0 < stats["meldingen"]["share_cut"] < 0.3
    assert stats["signalen"]["records"] == summary.frontliners
    raw = pd.read_csv(summary.path, dtype=str, keep_default_na=False)
    assert (raw["buurtcode"] == "").mean() > 0.3 and (raw.loc[raw["buurtcode"] == "", "locatie"] != "").all()


def test_yearly_volume_follows_the_profile(planted):
    summary, _ = planted
    spec = load_profile()
    city = City(profile.load(DEFAULT_PROFILES, "heerlen"), Window.parse("2019-01", 36), 7, DEFAULT_CBS)
    population = city.ctx.population            # (A, T)
    planted_mask = np.isin(city.ctx.areas.codes, list(PLANTED))
    rate = sum(c["per_1000_year"] for c in spec["categories"].values())
    factor = spec["under_reporting"]["factor"]
    expected = rate / 12 / 1000 * (population.sum() - (1 - factor) * population[planted_mask].sum())
    assert summary.residents == pytest.approx(expected, rel=0.15)


def test_reports_move_with_the_latent_liveability(planted):
    _, features = planted
    observed = _yearly(features, "reports_")
    city = City(profile.load(DEFAULT_PROFILES, "heerlen"), Window.parse("2019-01", 36), 7, DEFAULT_CBS)
    z = pd.Series(city.ctx.latent.z[:, :, DIMENSIONS.index("physical_environment")].mean(axis=1),
                  index=city.ctx.areas.codes)
    keep = [a for a in observed.index if a not in PLANTED]
    # worse physical environment (lower score): more reports
    assert np.corrcoef(np.log(observed[keep]), z[keep])[0, 1] < -0.3


def test_the_indicator_flags_the_planted_under_reporting_buurten(planted):
    _, features = planted
    flagged = set(_indicator(features).flagged())
    assert PLANTED <= flagged
    assert len(flagged - PLANTED) <= 2


def test_control_without_the_bias_the_planted_buurten_are_not_flagged(tmp_path):
    _, features = _world(tmp_path, factor=1.0)
    flagged = set(_indicator(features).flagged())
    assert len(flagged & PLANTED) <= 1
    assert len(flagged) <= 3
