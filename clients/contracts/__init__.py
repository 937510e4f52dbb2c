"""Data contracts: a node's raw tables -> validated, area-level feature blocks and label.

    contract = load_contract("police", overrides=["min_population=200"])
    features = build_features(contract, node_dir=Path("data/nodes/police"))
    write_features(features, node_dir)

A contract is YAML in `configs/contract/` (no code): the raw tables, their columns and types, and the
ops that aggregate them per (area_code, period). Bad input raises one ContractError naming the file,
row and column; protected attributes and person identifiers are refused as features.
"""
from clients.contracts.builder import NodeFeatures, build_features
from clients.contracts.loading import load_contract
from clients.contracts.output import write_features
from clients.contracts.spec import Contract

__all__ = ["Contract", "NodeFeatures", "build_features", "load_contract", "write_features"]
