"""A feature whose area means follow a protected area statistic (a contract's audit column) is named as a
possible proxy by `pulse-twin features` and `pulse-twin node audit`; unrelated features and too few areas
are not."""
from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from clients.contracts.proxies import ProxyRule, describe, load_proxy_rule, proxy_correlations
from clients.egress.audit import format_audit, run_audit
from tests.integration.test_audit import make_node

RULE = ProxyRule(min_abs_correlation=0.8, min_areas=10)


def register(n: int, seed: int = 1) -> tuple[dict, np.ndarray]:
    """A public register of n areas over two years with a protected share (audit column)."""
    rng = np.random.default_rng(seed)
    share = rng.uniform(0.05, 0.6, n)
    areas = [f"BU{i:08d}" for i in range(n)]
    data = pd.DataFrame({"aandeel_migratieachtergrond": np.tile(share, 2)})
    table = SimpleNamespace(area=np.array(areas * 2, dtype=object), data=data,
                            spec=SimpleNamespace(audit_columns=("aandeel_migratieachtergrond",)))
    return {"register": table}, share


def block(areas: list[str], **features: np.ndarray) -> pd.DataFrame:
    frames = [pd.DataFrame({"area_code": areas, "period": p, **features}) for p in ("2020-01", "2020-02")]
    return pd.concat(frames, ignore_index=True)


def test_a_feature_that_follows_the_protected_share_is_named():
    tables, share = register(30)
    areas = list(tables["register"].area[:30])
    rng = np.random.default_rng(2)
    frame = block(areas, drugs_per_1000=3 + 10 * share + rng.normal(0, 0.2, 30), household_size=rng.normal(2.2, 0.2, 30))
    [found] = proxy_correlations(tables, {"safety": frame}, RULE)
    assert found["feature"] == "safety.drugs_per_1000" and found["statistic"] == "register.aandeel_migratieachtergrond"
    assert found["r"] > 0.9 and found["areas"] == 30
    assert "may act as a proxy" in describe(found)


def test_a_negative_monotone_relation_counts_too():
    tables, share = register(20)
    frame = block(list(tables["register"].area[:20]), survey_score=np.exp(-5 * share))
    [found] = proxy_correlations(tables, {"label": frame}, RULE)
    assert found["r"] == pytest.approx(-1.0)


def test_unrelated_features_and_few_areas_are_not_judged():
    tables, share = register(30)
    rng = np.random.default_rng(3)
    assert proxy_correlations(tables, {"safety": block(list(tables["register"].area[:30]),
                                                       noise=rng.normal(size=30))}, RULE) == []
    few, share = register(8)
    assert proxy_correlations(few, {"safety": block(list(few["register"].area[:8]), copy=share)}, RULE) == []


def test_the_shipped_rule_is_read_from_configs():
    rule = load_proxy_rule()
    assert 0 < rule.min_abs_correlation <= 1 and rule.min_areas >= 3


def test_node_audit_repeats_the_warning_of_the_accepted_build(tmp_path):
    node = make_node(tmp_path)
    proxy = {"feature": "social.benefit_active_per_1000", "statistic": "register.aandeel_migratieachtergrond",
             "r": 0.86, "areas": 53}
    (node / "features").mkdir()
    (node / "features" / "manifest.json").write_text(json.dumps({"stats": {"protected_proxies": [proxy]}}))
    report = run_audit(node)
    assert report["proxy_warnings"] == [proxy]
    assert ("Warning: feature social.benefit_active_per_1000 correlates with the protected statistic "
            "register.aandeel_migratieachtergrond (r = +0.86 over 53 areas)") in format_audit(report)
