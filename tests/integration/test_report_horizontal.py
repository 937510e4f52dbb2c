"""The report of a horizontal run: its released model evaluated on the nodes' features, the membership
audit in the gate, and the ranked table where no boundaries ship (in-process run, no Ray)."""
from clients.app import app as client_app
from federation.cli import main
from server.app import run
from devtools.inprocess_grid import InProcessGrid
from tests.support.federation_fixtures import city_nodes
from federation.flower_config import encode


def test_horizontal_report_audits_membership_and_the_gate_names_it(tmp_path, capsys):
    nodes = city_nodes(tmp_path / "nodes")
    run(InProcessGrid(client_app, nodes), {
        "overrides": encode(["federation=cities", "local.rounds=1", "local.sample_rate=0.07", "dp.target_epsilon=3",
                             "node_wait_s=5", "holdout_fold=0", f"federation.data_root={tmp_path / 'nodes'}"]),
        "run-name": "h", "run-dir": str(tmp_path / "h")})
    capsys.readouterr()
    assert main(["report", str(tmp_path / "h"), "mia.max_auc=0.0"]) == 3
    out = capsys.readouterr().out
    assert "membership attack AUC" in out and "NOT RELEASABLE: threshold mia.max_auc exceeded" in out
    assert main(["report", str(tmp_path / "h"), "mia.max_auc=1.0"]) == 3   # no CBS statistics: fairness.require
    out = capsys.readouterr().out
    assert "mia.max_auc" not in out and "threshold fairness.require exceeded" in out
    page = (tmp_path / "h" / "report" / "report.html").read_text()
    assert "BE-GNK:0000" in page and "GR-PIR:0000" in page and page.count("<tr>") > 80   # the ranked table
    assert "Membership audit" in page
