"""The vertical federation on the real engine: SuperLink + police, municipality and buurtteams SuperNodes (TLS)."""
import json

import pandas as pd
import pytest

from federation.cli import main
from devtools.synthetic.generator import generate
from tests.support.processes import processes_mentioning
from tests.support.contract_fixtures import generated_window

pytestmark = pytest.mark.engine


def test_vertical_run_on_three_supernodes(tmp_path, capsys):
    root = tmp_path / "nodes"
    generate(out=root, cities=["heerlen"], seed=7, records=50_000, months=15)
    for partner in ("police", "municipality", "buurtteams"):
        assert main(["node", "init", "--partner", partner, "--node-dir", str(root / partner)]) == 0
        window = generated_window(root / partner, months=15)   # the run's window: the 15 generated months
        assert main(["features", "--contract", partner, "--node-dir", str(root / partner), *window]) == 0
    code = main(["federate", "federation=heerlen", f"federation.data_root={root}", f"runs_dir={tmp_path / 'runs'}",
                 # the engine is tested here, not the forecast: two horizons, the fewest origins with a survey month
                 "federation.label.horizons=[1,3]", "forecast.test_origins=3", "forecast.min_history=4",
                 "--auto-approve", "--run-name", "vt"])
    captured = capsys.readouterr()
    out = captured.out + captured.err   # the result on stdout, progress (rounds, PSI, nodes) on stderr
    assert code == 0, out
    run = tmp_path / "runs" / "vt"
    assert "TLS, node authentication" in out and "PSI:" in out and "label: DP release" in out
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "completed" and status["aligned_training_rows"] > 0
    assert len(pd.read_csv(run / "predictions.csv")) == status["predicted_areas"] > 40
    skill = json.loads((run / "forecast" / "skill.json").read_text())
    assert skill["configured_horizon"] == 3 and isinstance(skill["gate"]["releasable"], bool)
    for partner in ("police", "buurtteams"):  # one table each, released at epsilon 3 per unit
        report = json.loads((run / "privacy" / f"{partner}.json").read_text())
        assert 2.9 < report["epsilon"] <= 3.0 * 1.0001
    assert processes_mentioning(str(tmp_path)) == []
