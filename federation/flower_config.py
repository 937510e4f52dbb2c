"""The configs Flower carries for PULSE-TWIN: the run config `flwr run` hands the ServerApp (and, under
simulation, each virtual node's ClientApp) and the node config a SuperNode hands its ClientApp.

Flower's configs hold scalars only, so structured settings (the Hydra overrides, a node's feature folders,
the simulation's virtual nodes) travel as JSON text in a string, never joined on spaces or commas: a path
or value with a space, a comma or a quote arrives as it was typed. Both are handed to Flower as TOML files
(`flwr run --run-config FILE`, `flower-supernode --node-config FILE`), so no `key="value"` quoting stands
in between either.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Mapping

from federation.errors import ConfigError

OVERRIDES = "overrides"
SIM_NODES = "sim-nodes"
FEATURE_DIRS = "feature-dirs"


def encode(value: list | dict) -> str:
    """A list or table as the JSON text a config string carries."""
    return json.dumps(value, separators=(",", ":"))


def overrides(run_config: Mapping[str, Any]) -> list[str]:
    """The run's Hydra overrides: a JSON list of strings (an absent or empty value is no override)."""
    return _strings(run_config, OVERRIDES, "KEY=VALUE strings")


def node_config(partner: str, data_dir: Path | str, feature_dirs: Iterable[Path | str] = ()) -> dict[str, str]:
    """A node's config: its partner name, its node directory and the folders it reads built blocks from
    (absolute; none: its own directory, the only one it may name: `own_feature_dirs`)."""
    config = {"partner": partner, "data-dir": str(data_dir)}
    dirs = [str(d) for d in own_feature_dirs(partner, data_dir, feature_dirs)]
    if dirs:
        config[FEATURE_DIRS] = encode(dirs)
    return config


def own_feature_dirs(partner: str, data_dir: Path | str, dirs: Iterable[Path | str]) -> tuple[Path, ...]:
    """The feature folders a node may read: its own directory only. A node trains only on features it built
    itself, so that every use of them is charged to the ledger, and checked by the site policy, of the party
    whose records they come from; another node's folder is refused, naming it (absolute paths returned)."""
    own = Path(data_dir).resolve()
    out = tuple(Path(d).resolve() for d in dirs)
    for folder in out:
        if folder != own:
            raise ConfigError(
                f"node '{partner}': feature_dirs names {folder}, which is not its own node directory {own}. A node "
                "trains only on the features it built itself, charged to its own ledger under its own site policy: "
                "let the partner that holds those records take part as its own node (its policy decides), or "
                "build the blocks from this node's own records with `pulse-twin features`")
    return out


def feature_dirs(config: Mapping[str, Any]) -> tuple[Path, ...]:
    """The folders a node config names for built blocks (empty: none named)."""
    return tuple(Path(d) for d in _strings(config, FEATURE_DIRS, "folder paths"))


def sim_nodes(run_config: Mapping[str, Any]) -> list[dict[str, str]]:
    """The simulation's virtual nodes in partition order, each the node config a SuperNode would have."""
    value = _decoded(run_config, SIM_NODES, [])
    if not isinstance(value, list) or not all(isinstance(v, dict) and "data-dir" in v for v in value):
        raise ConfigError(f"config '{SIM_NODES}': expected a JSON list of node configs, each with a data-dir")
    return value


def write_toml(path: Path, config: Mapping[str, str]) -> Path:
    """The config as the TOML file Flower reads (strings only)."""
    import tomli_w

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(tomli_w.dumps({k: str(v) for k, v in config.items()}), encoding="utf-8")
    return path


def _strings(config: Mapping[str, Any], key: str, what: str) -> list[str]:
    value = _decoded(config, key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"config '{key}': expected a JSON list of {what}, got {value!r}")
    return value


def _decoded(config: Mapping[str, Any], key: str, empty: Any) -> Any:
    text = config.get(key, "")
    if text in ("", None):
        return empty
    try:
        return json.loads(str(text))
    except ValueError as exc:
        raise ConfigError(f"config '{key}': not JSON ({exc.msg} at character {exc.pos})") from None
