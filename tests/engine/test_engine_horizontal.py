"""The real engine on loopback: SuperLink + 3 SuperNodes (TLS, registered node keys), 2 rounds."""
import json

import pytest

from federation.cli import main
from tests.support.federation_fixtures import city_nodes
from tests.support.processes import processes_mentioning

pytestmark = pytest.mark.engine
AWKWARD = "site data, 2026"   # a folder name with a space and a comma reaches every node as it was typed


def test_three_supernodes_two_rounds_over_tls(tmp_path, capsys):
    city_nodes(tmp_path / AWKWARD, approve=False)
    code = main(["federate", "federation=cities", "~federation.nodes.piraeus",
                 "--data-root", str(tmp_path / AWKWARD), f"runs_dir={tmp_path / 'runs'}",
                 "local.rounds=2", "local.sample_rate=0.07", "--auto-approve", "--run-name", "it"])
    captured = capsys.readouterr()
    out = captured.out + captured.err   # the result on stdout, progress (rounds, PSI, nodes) on stderr
    assert code == 0, out
    run = tmp_path / "runs" / "it"
    rounds = json.loads((run / "rounds.json").read_text())
    assert [r["round"] for r in rounds] == [1, 2]
    assert all(set(r["nodes"]) == {"heerlen", "genk", "sant_boi"} for r in rounds)
    assert "TLS, node authentication" in out and "round 2/2" in out
    for node in ("heerlen", "genk", "sant_boi"):
        report = json.loads((run / "privacy" / f"{node}.json").read_text())
        assert report["epsilon"] > 0
    # Every process the run started is gone.
    assert processes_mentioning(str(tmp_path)) == []


@pytest.mark.usefixtures("one_ray_cluster")   # one Ray cluster at a time on the machine
def test_same_apps_run_under_the_simulation_engine(tmp_path, capsys):
    """Flower's simulation engine (Ray) runs the same ServerApp and ClientApp; each virtual node finds its
    own node directory, ledger and policy through the run config."""
    city_nodes(tmp_path / AWKWARD, approve=False)
    code = main(["federate", "federation=cities", "~federation.nodes.piraeus",
                 "--data-root", str(tmp_path / AWKWARD), f"runs_dir={tmp_path / 'runs'}",
                 "local.rounds=2", "local.sample_rate=0.07", "--auto-approve", "--simulation", "--run-name", "sim",
                 "--timeout", "900"])   # a stuck engine fails this test, not the whole suite's time budget
    captured = capsys.readouterr()
    out = captured.out + captured.err   # the result on stdout, progress (rounds, PSI, nodes) on stderr
    assert code == 0, out
    assert "simulation engine" in out
    rounds = json.loads((tmp_path / "runs" / "sim" / "rounds.json").read_text())
    assert all(set(r["nodes"]) == {"heerlen", "genk", "sant_boi"} for r in rounds)
    for folder in ("municipality", "genk", "sant_boi"):   # heerlen takes part through the municipality's node
        assert (tmp_path / AWKWARD / folder / "state" / "ledger.sqlite").is_file()
    assert processes_mentioning(str(tmp_path)) == []
