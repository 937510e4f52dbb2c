"""Features that may stand in for a protected attribute: strong correlation with a protected area statistic.

A feature built from crime or benefit records is never a protected attribute by name, but if its area
means follow the share of residents with a migration background closely, a ranking on it ranks by that
share. The contract's `audit_columns` (public statistics kept for auditing only) are the yardstick. This
warns, it does not refuse: the data-protection officer decides (threshold in `configs/protected.yaml`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from federation.config import configs_dir, load_yaml
from clients.contracts.protected import PROTECTED_FILE
from clients.contracts.validation import Table
from federation.errors import ConfigError


@dataclass(frozen=True)
class ProxyRule:
    min_abs_correlation: float
    min_areas: int


def load_proxy_rule() -> ProxyRule:
    file = configs_dir() / PROTECTED_FILE
    spec = load_yaml(file).get("proxy_warning") or {}
    try:
        rule = ProxyRule(float(spec["min_abs_correlation"]), int(spec["min_areas"]))
    except (KeyError, TypeError, ValueError):
        raise ConfigError(f"{file}: proxy_warning needs min_abs_correlation (0-1) and min_areas (>= 3)") from None
    if not 0 < rule.min_abs_correlation <= 1 or rule.min_areas < 3:
        raise ConfigError(f"{file}: proxy_warning needs min_abs_correlation (0-1) and min_areas (>= 3)")
    return rule


def _audit_statistics(tables: dict[str, Table]) -> dict[str, pd.Series]:
    """Each audit column's mean per area (over the years a register holds)."""
    out = {}
    for name, table in tables.items():
        if table.area is None:
            continue
        for column in table.spec.audit_columns:
            values = pd.to_numeric(table.data[column], errors="coerce")
            frame = pd.DataFrame({"area_code": table.area, "v": values.to_numpy()}).dropna()
            if len(frame):
                out[f"{name}.{column}"] = frame.groupby("area_code")["v"].mean()
    return out


def proxy_correlations(tables: dict[str, Table], outputs: dict[str, pd.DataFrame], rule: ProxyRule) -> list[dict]:
    """Per (output feature, audit statistic) with |r| at or above the rule: both names, r and the areas."""
    stats = _audit_statistics(tables)
    found = []
    for block, frame in outputs.items():
        means = frame.drop(columns="period").groupby("area_code").mean()
        for stat_name, stat in stats.items():
            joined = means.join(stat.rename("__stat__"), how="inner")
            if len(joined) < rule.min_areas:
                continue
            for feature in means.columns:
                pair = joined[[feature, "__stat__"]].dropna()
                if len(pair) < rule.min_areas or pair[feature].std() == 0 or pair["__stat__"].std() == 0:
                    continue
                r = max((pair[feature].corr(pair["__stat__"], method=m) for m in ("pearson", "spearman")),
                        key=lambda x: abs(x) if np.isfinite(x) else -1)
                if np.isfinite(r) and abs(r) >= rule.min_abs_correlation:
                    found.append({"feature": f"{block}.{feature}", "statistic": stat_name, "r": round(float(r), 3),
                                  "areas": int(len(pair))})
    return sorted(found, key=lambda f: -abs(f["r"]))


def describe(proxy: dict) -> str:
    return (f"feature {proxy['feature']} correlates with the protected statistic {proxy['statistic']} "
            f"(r = {proxy['r']:+.2f} over {proxy['areas']} areas): it may act as a proxy for it; have the "
            "data-protection officer review it before the features are released")
