"""The report of a horizontal run is built from the run's own records only (its released model, the nodes'
noised held-out sums, their privacy reports): it reads no node directory, shows no node's exact label, runs no
membership audit on training rows the coordinator does not hold, and the gate says so (in-process run, no Ray)."""
import shutil

import pandas as pd

from clients.app import app as client_app
from federation.cli import main
from server.app import run
from devtools.inprocess_grid import InProcessGrid
from server.report.build import outside_the_run
from server.report.gate import gate_checks
from server.report.reading import read_run
from tests.support.federation_fixtures import city_nodes
from federation.flower_config import encode


def test_horizontal_report_reads_only_the_runs_records_and_the_gate_names_what_it_lacks(tmp_path, capsys):
    nodes = city_nodes(tmp_path / "nodes")
    run(InProcessGrid(client_app, nodes), {
        "overrides": encode(["federation=cities", "local.rounds=1", "local.sample_rate=0.07", "dp.target_epsilon=3",
                             "dp.eval_noise_multiplier=2", "node_wait_s=5", "holdout_fold=0",
                             f"federation.data_root={tmp_path / 'nodes'}"]),
        "run-name": "h", "run-dir": str(tmp_path / "h")})
    label = pd.read_parquet(tmp_path / "nodes" / "municipality" / "features" / "label.parquet")
    shutil.rmtree(tmp_path / "nodes")   # the coordinator holds no node's data: the report must not need it
    capsys.readouterr()
    assert main(["report", str(tmp_path / "h"), "mia.require=true"]) == 3
    out = capsys.readouterr().out
    assert "NOT RELEASABLE" in out and "threshold mia.require exceeded" in out
    assert "inputs.released_only" not in out.split("NOT RELEASABLE", 1)[1]   # every input was the run's own
    page = (tmp_path / "h" / "report" / "report.html").read_text()
    assert "coordinator holds no training rows" in page and "noised held-out sums" in page
    assert "BE-GNK:0000" not in page and "GR-PIR:0000" not in page   # no per-area row of any node's data
    assert not any(f"{v:.4f}" in page for v in label["label"].head(20))   # no node's exact label
    outputs = read_run(tmp_path / "h")
    assert outputs.members is None and outputs.holdout.empty and outside_the_run(outputs) == []


def test_control_a_report_that_read_node_data_is_refused_by_the_gate(tmp_path):
    """As the horizontal reader was: it read each node's built features and exact label from the node dirs."""
    settings = {"min_r2": 0.0, "intervals": {"max_coverage_gap": 0.05},
                "fairness": {"require": False, "min_areas_per_group": 2}, "mia": {"max_auc": 0.6, "require": False}}
    checks = gate_checks(settings, True, 0.9, None, None, None, True, outside=[str(tmp_path / "genk" / "features")])
    [check] = [c for c in checks if c.name == "inputs.released_only"]
    assert not check.passed and "genk/features" in check.text
    assert [c for c in gate_checks(settings, True, 0.9, None, None, None, True) if c.name == "inputs.released_only"][0].passed
