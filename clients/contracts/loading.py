"""Loading a data contract: Hydra compose (so command-line overrides work), parse, check.

`load_contract("police")` reads `configs/contract/police.yaml`; a path to a YAML file works too (a
transfer city may keep its contract next to its data, with its own block schemas in `blocks/` beside it).
Overrides are Hydra's: `min_population=200`, `periods.start=2019-06`, `+key=value` to add a key.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Sequence

import yaml

from federation.blocks import local_blocks
from federation.config import compose, configs_dir, to_container
from clients.contracts.checks import check_contract
from clients.contracts.parsing import parse_contract
from clients.contracts.spec import Contract
from federation.errors import ConfigError

CONTRACT_GROUP = "contract"


def _is_path(ref: str | Path) -> bool:
    text = str(ref)
    return isinstance(ref, Path) or text.endswith((".yaml", ".yml")) or "/" in text or "\\" in text


def _display(path: Path) -> Path:
    """`configs/contract/x.yaml` for the project's own contracts, the given path otherwise."""
    try:
        return path.relative_to(configs_dir().parent)
    except ValueError:
        return path


def _refuse_shape(path: Path, shown: Path) -> None:
    """An empty file, or one whose top level is a list or a single value, in words: Hydra would compose an
    empty file into an empty mapping (and the parser then names the first missing key) and refuse a list as
    "primary config must be a DictConfig". A syntax error is left to the compose, which names line and column."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError, OSError):
        return
    if data is None:
        raise ConfigError(f"{shown}: the contract is empty (see docs/contract-reference.md for what it declares)")
    if not isinstance(data, dict):
        raise ConfigError(f"{shown}: a contract must be a mapping of keys (name:, privacy_unit:, tables:, ...); "
                          f"this file is {'a list' if isinstance(data, list) else 'a single value'}")


def load_contract(contract: str | Path, overrides: Sequence[str] = ()) -> Contract:
    """The checked contract `contract` (a name in configs/contract/ or a path) with Hydra-style overrides."""
    if _is_path(contract):
        path = Path(contract).resolve()
        if path.is_dir():
            raise ConfigError(f"{contract}: is a directory, not a contract file; name the YAML file itself")
        if not path.is_file():
            raise ConfigError(f"{contract}: contract file not found")
        _refuse_shape(path, Path(contract))
        cfg = compose(path.stem, overrides, group=str(path.parent), new_keys=True)  # absolute group: that directory
        shown = Path(contract)
    else:
        shown = _display(configs_dir() / CONTRACT_GROUP / f"{contract}.yaml")
        if (configs_dir() / CONTRACT_GROUP / f"{contract}.yaml").is_file():
            _refuse_shape(configs_dir() / CONTRACT_GROUP / f"{contract}.yaml", shown)
        cfg = compose(str(contract), overrides, group=CONTRACT_GROUP, new_keys=True)
    data = to_container(cfg)
    if not isinstance(data, dict):
        raise ConfigError(f"{shown}: a contract must be a mapping")
    parsed = parse_contract(data, shown, default_name=Path(str(contract)).stem)
    if _is_path(contract):
        parsed = dataclasses.replace(parsed, local_blocks=local_blocks(Path(contract).resolve().parent))
    return check_contract(parsed)
