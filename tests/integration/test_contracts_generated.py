"""End to end through the CLI: `pulse-twin generate` writes a small Heerlen and the three transfer cities,
`pulse-twin features` builds every node's blocks from them with the project's contracts."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from federation.cli import main
from federation.dataset import read_node_features
from federation.blocks import block_schema

NODES = {
    "police": {"safety"}, "municipality": {"context", "social"}, "buurtteams": {"care"},
    "genk": {"context", "safety", "social"}, "sant_boi": {"context", "social", "care"},
    "piraeus": {"context", "safety"},
}
LABEL = {"municipality", "genk", "sant_boi", "piraeus"}
PREFIX = {"police": "BU0917", "municipality": "BU0917", "buurtteams": "BU0917",
          "genk": "BE-GNK:71016", "sant_boi": "ES-SBL:08200", "piraeus": "GR-PIR:DK"}


@pytest.fixture(scope="module")
def nodes(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("generated")
    assert main(["generate", "--data-root", str(root), "--records", "30000", "--months", "3", "--seed", "11",
                 "--quiet"]) == 0
    for node in NODES:
        # the run's window: the three generated months (the contracts' own window is the default profile's)
        assert main(["features", "--contract", node, "--node-dir", str(root / node), "periods.end=2019-03"]) == 0
    return root


def load(root: Path, node: str) -> tuple[dict[str, pd.DataFrame], pd.DataFrame | None]:
    return read_node_features(root / node, sorted(NODES[node]), with_label=node in LABEL)


@pytest.mark.parametrize("node", list(NODES))
def test_every_node_builds_its_blocks_from_generated_records(nodes, node):
    blocks, label = load(nodes, node)
    assert set(blocks) == NODES[node]
    for name, frame in blocks.items():
        assert list(frame.columns) == ["area_code", "period", *block_schema(name).features]
        assert len(frame) > 0 and not frame.isna().any().any()
        assert frame["area_code"].str.startswith(PREFIX[node]).all()
        assert sorted(set(frame["period"])) == ["2019-01", "2019-02", "2019-03"]
    if node in LABEL:
        assert len(label) > 0 and label["label"].between(2.0, 6.0).all()


def test_heerlen_partners_cover_the_same_area_months(nodes):
    keys = {}
    for node in ("police", "municipality", "buurtteams"):
        blocks, _ = load(nodes, node)
        keys[node] = {frozenset(zip(f.area_code, f.period)) for f in blocks.values()}
    police, = keys["police"]
    assert keys["municipality"] == {police} and keys["buurtteams"] == {police}
    assert len({a for a, _ in police}) == 57 - 4          # 57 CBS buurten, four of them under 100 residents


def test_police_block_matches_a_direct_count_of_the_export(nodes):
    raw = pd.read_csv(nodes / "police" / "raw" / "incidents.csv", sep=";", encoding="cp1252", dtype=str)
    areas = pd.read_csv(nodes / "police" / "public" / "areas.csv", dtype={"area_code": str})
    month = pd.to_datetime(raw["datum_registratie"], format="%d-%m-%Y %H:%M").dt.strftime("%Y-%m")
    burglary = raw[raw["incidentsoort"] == "woninginbraak"].groupby([raw["buurtcode"], month]).size()
    (area, period), count = burglary.idxmax(), burglary.max()
    population = areas[(areas.area_code == area) & (areas.year == int(period[:4]))]["population"].iloc[0]
    blocks, _ = load(nodes, "police")
    safety = blocks["safety"]
    got = safety[(safety.area_code == area) & (safety.period == period)]["burglary_per_1000"].iloc[0]
    assert got == pytest.approx(count / population * 1000)
