"""Vertical federation on person-level DP releases, through the real ServerApp/ClientApp code, no Ray."""
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from clients.app import app as client_app
from dp_accounting import PrivacyLedger, ledger_path
from federation.dataset import area_folds
from federation.cli import main
from devtools.synthetic.generator import generate
from server.app import run
from devtools.inprocess_grid import InProcessGrid
from tests.support.federation_fixtures import write_policy
from federation.flower_config import encode
from tests.support.contract_fixtures import generated_window

PARTNERS = ("police", "municipality", "buurtteams")


# The coordinator's forecast is not what these tests check (the demo and benchmarks.skill measure it): two
# horizons and the fewest test origins that hold a survey month (waves are quarterly).
QUICK = ["federation.label.horizons=[1,3]", "forecast.test_origins=3", "forecast.min_history=4"]


def heerlen_raw_nodes(root: Path) -> dict[int, dict[str, str]]:
    """Small synthetic raw records for the three partners, each node set up and its features built."""
    generate(out=root, cities=["heerlen"], seed=7, records=50_000, months=15)
    nodes = {}
    for i, partner in enumerate(PARTNERS, 1):
        assert main(["node", "init", "--partner", partner, "--node-dir", str(root / partner)]) == 0
        window = generated_window(root / partner, months=15)   # the run's window: the 15 generated months
        assert main(["features", "--contract", partner, "--node-dir", str(root / partner), *window]) == 0
        write_policy(root / partner, partner)
        nodes[i] = {"partner": partner, "data-dir": str(root / partner)}
    return nodes


@pytest.fixture(scope="module")
def nodes(tmp_path_factory):
    return heerlen_raw_nodes(tmp_path_factory.mktemp("vertical") / "nodes")


def run_once(nodes, run_dir: Path) -> dict:
    root = Path(nodes[1]["data-dir"]).parent
    grid = InProcessGrid(client_app, nodes)
    run(grid, {"overrides": encode(["federation=heerlen", f"federation.data_root={root}", "node_wait_s=5", *QUICK]),
               "run-name": run_dir.name, "run-dir": str(run_dir)})
    return json.loads((run_dir / "status.json").read_text())


def test_vertical_run_releases_once_per_table_trains_and_predicts_then_reuses(nodes, tmp_path):
    status = run_once(nodes, tmp_path / "first")
    assert status["state"] == "completed", status
    predictions = pd.read_csv(tmp_path / "first" / "predictions.csv")
    assert len(predictions) == status["predicted_areas"] > 40
    assert predictions["predicted_liveability"].between(2, 6).all()
    # Held out by area at the scored origins: every predicted area held out once, in the fold the yardstick's
    # split gives it; the fusion model and each partner alone on its own release, for the same rows.
    held = pd.read_csv(tmp_path / "first" / "holdout_predictions.csv", dtype={"area_code": str})
    assert {"pred", "y_dp", "fold", "pred_alone_police", "pred_alone_municipality", "pred_alone_buurtteams"} <= set(held.columns)
    assert held[["pred", "pred_alone_police"]].notna().all().all()
    assert not np.allclose(held["pred"], held["pred_alone_police"])
    assert set(held["area_code"]) == set(predictions["area_code"].astype(str))
    assert held.groupby("area_code")["fold"].nunique().max() == 1
    expected = area_folds(held["area_code"], 5, 0)
    assert (held["fold"] == held["area_code"].map(expected)).all() and held["fold"].nunique() == 5
    tables = {}
    for cfg in nodes.values():
        with PrivacyLedger(ledger_path(cfg["data-dir"])) as ledger:
            history = ledger.history()
        assert all(r.mechanism == "gaussian" and r.sample_rate == 1.0 and r.kind == "dp-aggregate" for r in history)
        tables[cfg["partner"]] = sorted(r.table for r in history)
    # One release per private table; the public register is never charged.
    assert tables == {"police": ["incidents"], "municipality": ["enquete", "meldingen", "uitkeringen"],
                      "buurtteams": ["casussen"]}
    # A second run on the same window re-uses every kept release and is charged nothing, its cross-validation
    # (post-processing) included; it scores the same rows, in the same folds.
    status = run_once(nodes, tmp_path / "second")
    assert status["state"] == "completed", status
    again = pd.read_csv(tmp_path / "second" / "holdout_predictions.csv", dtype={"area_code": str})
    assert again[["area_code", "period", "fold"]].equals(held[["area_code", "period", "fold"]])
    for cfg in nodes.values():
        with PrivacyLedger(ledger_path(cfg["data-dir"])) as ledger:
            assert sorted(r.table for r in ledger.history()) == tables[cfg["partner"]]
    log = [json.loads(line) for line in (Path(nodes[1]["data-dir"]) / "state" / "egress.jsonl").read_text().splitlines()]
    assert [r["kind"] for r in log if r["kind"].startswith("dp-aggregate")] == ["dp-aggregate", "dp-aggregate-reused"]


def test_split_learning_is_gone():
    import clients.vertical as partner

    assert not hasattr(partner, "embed") and not hasattr(partner, "PartnerEncoder")
    from federation.config import configs_dir

    text = (configs_dir() / "vertical" / "default.yaml").read_text()
    assert "exchanges" not in text and "embed_dim" not in text and "clip" not in text


def test_a_vertical_run_with_a_holdout_fold_is_refused_before_anything_is_asked(tmp_path):
    """Vertical runs are scored over every fold; a single held-out fold would leave the predicting model's
    training areas ambiguous, so it is refused before any node is asked (nothing released)."""
    grid = InProcessGrid(client_app, {})
    run(grid, {"overrides": encode(["federation=heerlen", f"federation.data_root={tmp_path}", "node_wait_s=1",
                            "holdout_fold=0"]),
               "run-name": "refused", "run-dir": str(tmp_path / "refused")})
    status = json.loads((tmp_path / "refused" / "status.json").read_text())
    assert status["state"] == "failed" and "holdout_fold applies to horizontal runs only" in status["error"]
    assert grid.sent_by_nodes == []


def test_node_audit_lists_the_fields_that_left_and_none_is_exact(nodes, tmp_path, capsys):
    """`pulse-twin node audit` lists, per message kind, the fields that left; on a vertical run they are all on
    their kind's allow-list, none an exact count, and no text that left names a node path."""
    from federation.messages import REPLY_FIELDS, fields_outside

    status = run_once(nodes, tmp_path / "audited")
    assert status["state"] == "completed", status
    for cfg in nodes.values():
        capsys.readouterr()
        assert main(["node", "audit", "--node-dir", cfg["data-dir"], "--json"]) == 0
        listed = json.loads(capsys.readouterr().out)["fields_by_kind"]
        assert {"psi", "public-fact"} <= set(listed) and {"dp-aggregate", "dp-aggregate-reused"} & set(listed)
        for kind, fields in listed.items():
            assert fields and fields_outside(kind, fields) == [], (kind, fields)
            assert not any(w in f for f in fields for w in ("records", "units_cut", "share_cut", "summary"))
        assert "release.block:" + {"police": "safety", "municipality": "social", "buurtteams": "care"}[cfg["partner"]] \
            in listed.get("dp-aggregate", listed.get("dp-aggregate-reused"))
        assert main(["node", "audit", "--node-dir", cfg["data-dir"]]) == 0
        text = capsys.readouterr().out
        assert "Fields that left the node, per message kind" in text and "psi: psi.response, psi.setup" in text
        # The privacy report is the only free text that left: it names no path of the node.
        report = (tmp_path / "audited" / "privacy" / f"{cfg['partner']}.json").read_text()
        assert cfg["data-dir"] not in report and str(Path(cfg["data-dir"]).parent) not in report
        assert json.loads(report)["bounds"] == []   # what the bounds cut is the node's own report's only
    assert set(REPLY_FIELDS) >= set(listed)


def test_too_little_history_for_the_gates_horizon_is_refused_before_the_partners_release(nodes, tmp_path):
    """A forecast that cannot be scored at the configured horizon cannot be released: the run is refused once
    the label's periods are known, before the other partners release (or are charged for) a block, and says what
    is needed and which horizons could be scored."""
    def history() -> dict[str, list[str]]:
        out = {}
        for cfg in nodes.values():
            with PrivacyLedger(ledger_path(cfg["data-dir"])) as ledger:
                out[cfg["partner"]] = [r.table for r in ledger.history()]
        return out

    before = history()
    root = Path(nodes[1]["data-dir"]).parent
    short = [o for o in QUICK if not o.startswith("forecast.min_history")] + ["forecast.min_history=10"]
    run(InProcessGrid(client_app, nodes), {
        "overrides": encode(["federation=heerlen", f"federation.data_root={root}", "node_wait_s=5", *short]),
        "run-name": "short", "run-dir": str(tmp_path / "short")})
    status = json.loads((tmp_path / "short" / "status.json").read_text())
    assert status["state"] == "failed", status
    # the label's waves of the 15 months span 2019-01 .. 2020-01, 13 periods: horizon 3 needs 10 + 2 x 3 + 1 =
    # 17 periods; horizon 1 needs 13
    assert "13 periods are too few to score horizon 3" in status["error"]
    assert "at least 17 periods (horizon(s) 1 could be scored)" in status["error"]
    assert "before the other partners released anything" in status["error"]
    after = history()
    assert after["police"] == before["police"] and after["buurtteams"] == before["buurtteams"]
    # the label partner released with its label (kept: a run on the same window re-uses it, uncharged)
    assert set(after["municipality"][len(before["municipality"]):]) <= {"enquete", "meldingen", "uitkeringen"}
    assert not (tmp_path / "short" / "forecast").exists()
