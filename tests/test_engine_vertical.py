"""The vertical federation on the real engine: SuperLink + police, municipality and buurtteams SuperNodes (TLS)."""
import json

import pandas as pd
import pytest

from federation.cli import main
from tests.federation_fixtures import heerlen_partners
from tests.test_engine_horizontal import processes_mentioning

pytestmark = pytest.mark.engine


def test_vertical_run_on_three_supernodes(tmp_path, capsys):
    heerlen_partners(tmp_path / "nodes", extra_police_areas=3, approve=False)
    code = main(["federate", "federation=heerlen", f"federation.data_root={tmp_path / 'nodes'}",
                 f"runs_dir={tmp_path / 'runs'}", "vertical.exchanges=2", "holdout_fold=0",
                 "--auto-approve", "--run-name", "vt"])
    out = capsys.readouterr().out
    assert code == 0, out
    run = tmp_path / "runs" / "vt"
    assert "TLS, node authentication" in out and "PSI:" in out and "round 2/2" in out
    status = json.loads((run / "status.json").read_text())
    assert status["aligned_training_rows"] == 20 * 11  # police's extra areas are not aligned
    assert len(pd.read_csv(run / "predictions.csv")) == 20
    for partner in ("police", "municipality", "buurtteams"):
        report = json.loads((run / "privacy" / f"{partner}.json").read_text())
        assert 0 < report["epsilon"] <= 3.0 * 1.0001
    assert processes_mentioning(str(tmp_path)) == []
