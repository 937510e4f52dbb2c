"""The ops a contract may name. Small and explicit on purpose: adding an op is a reviewed code change,
adding a city is a YAML file. Partner ops are imported only when a contract names them."""
from __future__ import annotations

import importlib
from functools import lru_cache

from clients.contracts.ops import Op

OPS: dict[str, str] = {
    # generic
    "count": "clients.contracts.ops:Count",
    "mean": "clients.contracts.ops:Mean",
    "area_value": "clients.contracts.ops:AreaValue",
    "expr": "clients.contracts.ops:Expr",
    "count_within": "clients.contracts.durations:CountWithin",
    # partner-specific
    "open_cases_by_domain": "clients.buurtteams.features:OpenCasesByDomain",
    "liveability": "clients.municipality.features:Liveability",
}


@lru_cache(maxsize=None)
def get_op(name: str) -> Op | None:
    """The op registered as `name`, or None if there is none."""
    target = OPS.get(name)
    if target is None:
        return None
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)()
