"""Horizontal federation: the real ServerApp and ClientApp logic, in one process, without Ray."""
import json
from pathlib import Path

import pytest

from clients.app import ERROR_DETAILS, app as client_app
from dp_accounting import PrivacyLedger, ledger_path
from server.app import run
from devtools.inprocess_grid import InProcessGrid
from tests.support.federation_fixtures import city_nodes, write_policy
from federation.flower_config import encode
from federation.messages import error_text

OVERRIDES = ["federation=cities", "local.rounds=3", "local.sample_rate=0.07", "dp.target_epsilon=3", "node_wait_s=5"]


def run_cities(tmp_path, extra: tuple[str, ...] = (), approve: bool = True):
    nodes = city_nodes(tmp_path / "nodes", approve=approve)
    grid = InProcessGrid(client_app, nodes)
    record = run(grid, {"overrides": encode([*OVERRIDES, f"federation.data_root={tmp_path / 'nodes'}", *extra]),
                        "run-name": "t", "run-dir": str(tmp_path / "run")})
    return record, nodes


@pytest.mark.parametrize("strategy", ["fedavg", "fedprox", "fedadam"])
def test_horizontal_run_completes_and_reports_per_node_privacy(tmp_path, strategy):
    record, nodes = run_cities(tmp_path, (f"strategy={strategy}",))
    status = json.loads((tmp_path / "run" / "status.json").read_text())
    assert status["state"] == "completed", status
    rounds = json.loads((tmp_path / "run" / "rounds.json").read_text())
    assert [r["round"] for r in rounds] == [1, 2, 3]
    assert (tmp_path / "run" / "model.pt").is_file()
    for cfg in nodes.values():
        name = cfg["partner"]
        report = json.loads((tmp_path / "run" / "privacy" / f"{name}.json").read_text())
        ledger = PrivacyLedger(ledger_path(cfg["data-dir"]))
        releases = ledger.history()
        # Every round charged exactly one model update (and one noised loss) with one noise multiplier.
        updates = [r for r in releases if r.kind == "horizontal-update"]
        assert [r.round for r in updates] == [1, 2, 3]
        assert len({r.noise_multiplier for r in updates}) == 1
        # The epsilon the node reported in its last reply is what its ledger recomputes for the run.
        last = rounds[-1]["nodes"][name]["epsilon"]
        assert last == pytest.approx(ledger.epsilon(1e-5), rel=1e-9)
        # Calibrated once for the whole planned schedule: the update part stays under the target.
        assert report["epsilon"] == pytest.approx(ledger.epsilon(1e-5), rel=1e-9)


def test_node_refuses_release_past_its_cap_and_run_reports_it(tmp_path):
    nodes = city_nodes(tmp_path / "nodes")
    genk = next(c for c in nodes.values() if c["partner"] == "genk")
    from pathlib import Path

    write_policy(Path(genk["data-dir"]), "genk", approve=False, epsilon_per_year=1.0, epsilon_lifetime=1.0)
    grid = InProcessGrid(client_app, nodes)
    run(grid, {"overrides": encode([*OVERRIDES, f"federation.data_root={tmp_path / 'nodes'}"]),
               "run-name": "t", "run-dir": str(tmp_path / "run")})
    status = json.loads((tmp_path / "run" / "status.json").read_text())
    assert status["state"] == "completed-with-refusals"
    refused = [r for r in status["refusals"] if r["node"] == "genk"]
    # The reply names the budget rule with its fixed sentence; the numbers stay in the node's own error log.
    budget = {error_text(r) for r in ("privacy.epsilon_per_year", "privacy.epsilon_lifetime")}
    assert len(refused) == 3 and refused[0]["reason"] in budget
    details = (Path(genk["data-dir"]) / ERROR_DETAILS).read_text()
    assert "epsilon_lifetime" in details and "cap 1" in details
    assert PrivacyLedger(ledger_path(genk["data-dir"])).history() == []


def test_unapproved_bundle_is_refused_everywhere_and_the_run_is_refused(tmp_path):
    record, _ = run_cities(tmp_path, approve=False)
    status = json.loads((tmp_path / "run" / "status.json").read_text())
    assert status["state"] == "refused"   # a refusal, named, not a failure (exit 3, not 1)
    assert "approved_bundles" in status["error"] and status["refusals"][0]["action"] == "describe"


def test_node_refuses_rounds_beyond_the_schedule_its_noise_was_calibrated_for(tmp_path):
    """A coordinator cannot stretch a run: round 4 of a 3-round plan, or a repeated round from another global
    model, is refused; a round asked again from the same global model (a re-launched run) gets the very same
    update re-sent, at no charge."""
    from flwr.app import ArrayRecord, ConfigRecord, Message, RecordDict

    from clients.egress import payload_digest
    from federation.messages import DPSettings, TaskSettings, to_config
    from federation.model import build_model

    nodes = city_nodes(tmp_path / "nodes")
    grid = InProcessGrid(client_app, {11: nodes[11]})
    task = TaskSettings(run_name="s", blocks=("context", "safety", "social", "care"), label_center=4.10,
                        label_scale=0.25, label_shift=1)
    config = to_config(task, DPSettings(target_epsilon=3.0, delta=1e-5, num_rounds=3, sample_rate=0.07))
    arrays = ArrayRecord(build_model(task.model_spec(), seed=0).state_dict())

    other = ArrayRecord(build_model(task.model_spec(), seed=1).state_dict())

    def round_(n, sent=arrays):
        cfg = ConfigRecord({**config, "server-round": n})
        msg = Message(RecordDict({"arrays": sent, "config": cfg}), dst_node_id=11, message_type="train")
        return grid.send_and_receive([msg])[0]

    first = round_(1)
    assert not first.has_error()
    again = round_(1)
    assert not again.has_error() and payload_digest(again.content) == payload_digest(first.content)
    log = [json.loads(line) for line in (Path(nodes[11]["data-dir"]) / "state" / "egress.jsonl").read_text().splitlines()]
    assert [(r["kind"], r["epsilon_charged"]) for r in log if r["round"] == 1] == [
        ("dp-model-update", log[-2]["epsilon_charged"]), ("dp-model-update-resent", 0.0)]
    assert log[-2]["epsilon_charged"] > 0
    repeated = round_(1, sent=other)
    assert repeated.has_error() and "planned schedule" in repeated.error.reason
    assert not round_(2).has_error() and not round_(3).has_error()
    beyond = round_(4)
    assert beyond.has_error() and "planned schedule" in beyond.error.reason
    assert [r.round for r in PrivacyLedger(ledger_path(nodes[11]["data-dir"])).history()
            if r.kind == "horizontal-update"] == [1, 2, 3]


def test_min_nodes_must_be_a_count_within_the_federation():
    from federation.errors import ConfigError
    from server.horizontal import min_nodes

    assert min_nodes({"min_nodes": 3}, 3) == 3 and min_nodes({}, 3) == 1
    for bad in (0, 4, "two", 1.5, True, None):
        with pytest.raises(ConfigError, match=r"min_nodes: .* from 1 to the federation's 3 nodes"):
            min_nodes({"min_nodes": bad}, 3)


def test_a_rounds_epsilon_line_lists_few_nodes_and_summarises_many():
    from server.quality import epsilon_summary

    few = {"genk": {"epsilon": 1.5}, "piraeus": {"refused": "rule x"}, "sant_boi": {"failed": "gone"}}
    assert epsilon_summary(few) == "genk 1.50, piraeus refused, sant_boi failed"
    many = {f"n{i:03d}": {"epsilon": 1.0 + i / 100} for i in range(300)}
    many.update({"late": {"epsilon": 9.0}, "r1": {"refused": "rule"}, "r2": {"refused": "rule"}})
    many.update({f"f{i}": {"failed": "gone"} for i in range(7)})
    line = epsilon_summary(many)
    assert line.startswith("301 nodes: min 1.00, median 2.50, max 9.00 (late)")
    assert "2 refused (r1, r2)" in line and "7 failed" in line and "f0" not in line
    assert len(line) < 200


def test_the_blocks_of_few_nodes_are_listed_and_of_many_summarised_per_set():
    from server.horizontal import blocks_summary

    assert blocks_summary({"genk": "context,safety", "piraeus": ""}) == ["node genk: blocks context,safety",
                                                                         "node piraeus: blocks (none)"]
    many = {f"r{i:03d}": "context,social" for i in range(300)}
    many.update({"odd": "context", "bare": ""})
    assert blocks_summary(many) == ["1 nodes: blocks (none) (bare)", "1 nodes: blocks context (odd)",
                                    "300 nodes: blocks context,social"]
