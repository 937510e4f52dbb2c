"""Small node directories for federation tests: built feature blocks, a label, a site policy, an approval.

The features carry a known signal about next period's label, so a trained model can be checked.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from federation.bundle import running_code_hash
from federation.config import configs_dir
from federation.blocks import block_schema
from clients.site_policy import append_approval
from federation.flower_config import node_config


def write_node(node_dir: Path, prefix: str, blocks: tuple[str, ...], n_areas: int = 20, months: int = 12,
               seed: int = 0, with_label: bool = True, label_shift: int = 1) -> Path:
    rng = np.random.default_rng(seed)
    periods = pd.period_range("2020-01", periods=months, freq="M").astype(str)
    keys = pd.MultiIndex.from_product([[f"{prefix}{i:04d}" for i in range(n_areas)], periods],
                                      names=["area_code", "period"]).to_frame(index=False)
    latent = rng.normal(size=len(keys))
    (node_dir / "features").mkdir(parents=True, exist_ok=True)
    for name in blocks:
        cols = {f: np.exp(rng.normal(size=len(keys)) * 0.3) for f in block_schema(name).features}
        cols[next(iter(cols))] = np.exp(latent * 0.5)
        pd.concat([keys, pd.DataFrame(cols)], axis=1).to_parquet(node_dir / "features" / f"{name}.parquet")
    if with_label:
        label = keys.copy()
        label["period"] = (pd.PeriodIndex(keys["period"], freq="M") + label_shift).astype(str)
        label["label"] = 4.1 + 0.1 * latent
        # The survey covers the same months as the features: the last month's successor is unknown.
        label[label["period"] <= periods[-1]].to_parquet(node_dir / "features" / "label.parquet")
    return node_dir


def write_policy(node_dir: Path, partner: str, approve: bool = True, **privacy: float) -> None:
    policy = yaml.safe_load((configs_dir() / "site_policy" / "default.yaml").read_text())
    policy["partner"] = partner
    policy["privacy"].update(privacy)
    (node_dir / "site_policy.yaml").write_text(yaml.safe_dump(policy))
    if approve:
        append_approval(node_dir, {"bundle_hash": running_code_hash(), "by": "test", "run": "any"})


def city_nodes(root: Path, approve: bool = True) -> dict[int, dict[str, str]]:
    """Four city nodes shaped like configs/federation/cities.yaml (heerlen: the municipality's own node, which
    trains on the blocks it built itself)."""
    configs: dict[int, dict[str, str]] = {}
    write_node(root / "municipality", "BU0917", ("context", "social"), seed=1)
    write_policy(root / "municipality", "heerlen", approve)
    configs[10] = node_config("heerlen", root / "municipality")
    for node_id, (city, prefix, blocks) in enumerate([
        ("genk", "BE-GNK:", ("context", "safety", "social")),
        ("sant_boi", "ES-SBL:", ("context", "social", "care")),
        ("piraeus", "GR-PIR:", ("context", "safety")),
    ], start=11):
        write_node(root / city, prefix, blocks, seed=node_id)
        write_policy(root / city, city, approve)
        configs[node_id] = {"partner": city, "data-dir": str(root / city)}
    return configs


HEERLEN_PARTNERS = {"police": ("safety",), "municipality": ("context", "social"), "buurtteams": ("care",)}


def heerlen_partners(root: Path, extra_police_areas: int = 0, approve: bool = True) -> dict[int, dict[str, str]]:
    """Three partner nodes over the same areas (same latent), the coordinator's label, policies.

    The police node may hold extra areas no one else has: PSI must leave them out."""
    configs = {}
    for node_id, (partner, blocks) in enumerate(HEERLEN_PARTNERS.items(), start=20):
        extra = extra_police_areas if partner == "police" else 0
        write_node(root / partner, "BU0917", blocks, n_areas=20 + extra, seed=1, with_label=partner == "municipality")
        write_policy(root / partner, partner, approve)
        configs[node_id] = {"partner": partner, "data-dir": str(root / partner)}
    (root / "coordinator").mkdir(parents=True, exist_ok=True)
    label = pd.read_parquet(root / "municipality" / "features" / "label.parquet")
    label.to_parquet(root / "coordinator" / "labels.parquet")
    return configs
