"""The run config reaches the ServerApp as it was given: through the TOML file `flwr run` reads, parsed by
Flower's own parser, overrides with spaces, quotes, commas and non-ASCII characters arrive unchanged."""
from __future__ import annotations

import pytest
from flwr.common.config import parse_config_args

from federation.config import compose, value_override
from federation.errors import ConfigError
from federation.flower_config import encode, feature_dirs, node_config, overrides, sim_nodes, write_toml

AWKWARD = ["federation=heerlen", "federation.data_root=/srv/my nodes/Sant Boi, Llobregat", 'run_note="a \\"b\\""',
           "federation.blocks=[safety,care]", "report.title=Leefbaarheid – Heerlen Noord", "x=1 y=2"]


def test_overrides_survive_flowers_run_config_file(tmp_path):
    nodes = [{"partner": "genk", "data-dir": "/srv/a b", "feature-dirs": "/f,1"}]
    path = write_toml(tmp_path / "run-config.toml", {"overrides": encode(AWKWARD), "run-name": "r 1",
                                                      "sim-nodes": encode(nodes)})
    parsed = parse_config_args([str(path)])
    assert overrides(parsed) == AWKWARD
    assert sim_nodes(parsed) == nodes and parsed["run-name"] == "r 1"


def test_no_overrides_is_an_empty_list():
    assert overrides({}) == [] and overrides({"overrides": ""}) == [] and sim_nodes({}) == []


@pytest.mark.parametrize("value", ["federation=cities dp.target_epsilon=3", "[1, 2]", '{"a": 1}', "[\"a\""])
def test_anything_but_a_json_list_of_strings_is_refused_naming_the_key(value):
    with pytest.raises(ConfigError, match="config 'overrides'"):
        overrides({"overrides": value})


def test_a_virtual_node_without_a_data_dir_is_refused():
    with pytest.raises(ConfigError, match="sim-nodes"):
        sim_nodes({"sim-nodes": encode([{"partner": "genk"}])})


@pytest.mark.parametrize("path", ["/srv/site data, 2026", "/srv/o'brien\\x", "/srv/${HOME}/a=b", "/srv/[a,b]",
                                  "/srv/ü é", "/srv/x\\", "/srv/a\\${b}", ""])
def test_a_path_given_as_an_option_is_one_plain_string_for_hydra(path):
    """--data-root and --runs-dir become overrides: a comma is not a sweep, brackets not a list, `${` not an
    interpolation, a quote or backslash not an escape."""
    assert compose("config", ["federation=cities", value_override("federation.data_root", path)]).federation.data_root \
        == path


def test_a_node_config_carries_feature_folders_with_commas_and_spaces(tmp_path):
    own = tmp_path / "site data, 2026" / "c d"   # the node's own folder: the only one it may name
    own.mkdir(parents=True)
    config = node_config("heerlen", own, [own])
    assert feature_dirs(parse_config_args([str(write_toml(tmp_path / "node.toml", config))])) == (own,)
    assert feature_dirs(node_config("genk", tmp_path)) == ()
