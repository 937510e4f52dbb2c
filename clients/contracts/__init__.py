"""Data contracts: a node's raw tables -> validated, area-level feature blocks and label.

    contract = load_contract("police", overrides=["min_population=200"])
    features = build_features(contract, node_dir=Path("data/nodes/police"))
    write_features(features, node_dir)

A contract is YAML in `configs/contract/` (no code): the raw tables, their columns and types, and the
ops that aggregate them per (area_code, period). Bad input raises one ContractError naming the file,
row and column; protected attributes and person identifiers are refused as features.
"""
import importlib
from typing import Any

# Where each name lives; imported when first used, so that importing a light submodule (the features
# manifest, which a node's executor reads for every run) does not load pandas into an idle node.
_MODULES = {"Contract": "spec", "NodeFeatures": "builder", "build_features": "builder", "load_contract": "loading",
            "write_features": "output"}

__all__ = ["Contract", "NodeFeatures", "build_features", "load_contract", "write_features"]


def __getattr__(name: str) -> Any:
    if name not in _MODULES:
        raise AttributeError(f"module 'clients.contracts' has no attribute '{name}'")
    return getattr(importlib.import_module(f"clients.contracts.{_MODULES[name]}"), name)
