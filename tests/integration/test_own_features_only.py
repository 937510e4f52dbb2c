"""A node trains only on the features it built itself: a configuration that has one node read another's
feature folder (and so train on its exact features under the reader's ledger and policy) is refused, by the
lab's launcher and again by the node, with a message naming the folder."""
from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from clients.node import Node
from federation.commands.federate import node_launches
from federation.config import compose
from federation.errors import ConfigError
from federation.flower_config import FEATURE_DIRS, encode, node_config
from tests.support.federation_fixtures import write_node, write_policy

PARTNERS = {"police": ("safety",), "municipality": ("context", "social"), "buurtteams": ("care",)}


@pytest.fixture
def heerlen(tmp_path: Path) -> Path:
    for partner, blocks in PARTNERS.items():
        write_node(tmp_path / partner, "BU0917", blocks, seed=1)
        write_policy(tmp_path / partner, partner)
    (tmp_path / "heerlen").mkdir()
    write_policy(tmp_path / "heerlen", "heerlen")
    return tmp_path


def test_the_cities_federation_launches_every_node_on_its_own_features(heerlen: Path):
    fed = OmegaConf.to_container(compose("config", ["federation=cities", f"federation.data_root={heerlen}",
                                                    "~federation.nodes.genk", "~federation.nodes.sant_boi",
                                                    "~federation.nodes.piraeus"]), resolve=True)["federation"]
    [launch] = node_launches(fed)
    node = Node.from_config(launch.node_config)
    assert node.feature_dirs == (launch.node_dir,) and launch.node_dir == (heerlen / "municipality").resolve()
    assert set(node.available_blocks(("context", "safety", "social", "care"))) == {"context", "social"}


def test_control_a_city_node_reading_its_partners_feature_folders_is_refused(heerlen: Path):
    """The cities federation as it was: Heerlen's node read the three partners' folders."""
    fed = OmegaConf.to_container(compose("config", ["federation=cities", f"federation.data_root={heerlen}",
                                                    "~federation.nodes.genk", "~federation.nodes.sant_boi",
                                                    "~federation.nodes.piraeus"]), resolve=True)
    fed["federation"]["nodes"]["heerlen"] = {"node_dir": str(heerlen / "heerlen"),
                                             "feature_dirs": [str(heerlen / p) for p in PARTNERS]}
    with pytest.raises(ConfigError, match=r"node 'heerlen': feature_dirs names .*police, which is not its own node "
                                          r"directory .*features it built itself"):
        node_launches(fed["federation"])


def test_the_node_itself_refuses_a_node_config_naming_another_nodes_folder(heerlen: Path):
    """Also a SuperNode's own --node-config (written by hand, or by an older launcher) cannot widen what it reads."""
    config = {"partner": "heerlen", "data-dir": str(heerlen / "heerlen"),
              FEATURE_DIRS: encode([str(heerlen / "buurtteams")])}
    with pytest.raises(ConfigError, match="buurtteams, which is not its own node directory"):
        Node.from_config(config)
    own = Node.from_config(node_config("municipality", heerlen / "municipality", [heerlen / "municipality"]))
    assert own.feature_dirs == ((heerlen / "municipality").resolve(),)


def test_node_start_refuses_another_nodes_feature_folder_before_anything_starts(heerlen: Path, capsys):
    from federation.cli import main

    code = main(["node", "start", "--node-dir", str(heerlen / "heerlen"), "--superlink", "127.0.0.1:1",
                 "--insecure", "--feature-dir", str(heerlen / "police")])
    err = capsys.readouterr().err
    assert code == 2 and "police, which is not its own node directory" in err and "starting its SuperNode" not in err
