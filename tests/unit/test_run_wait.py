"""Following a run reads its own status file at every poll and asks Flower (`flwr ls`, a process of its own) only
now and then, for a ServerApp that died without writing its outcome."""
from __future__ import annotations

import json
from types import SimpleNamespace

from server.runs import EXIT_COMPLETED, EXIT_FAILED, RunDir, wait


class FakeCoordinator:
    def __init__(self, flower_status: str) -> None:
        self.flower_status, self.asked = flower_status, 0

    def flwr(self, args, timeout):
        self.asked += 1
        return SimpleNamespace(stdout=json.dumps({"runs": [{"status": self.flower_status}]}), stderr="", returncode=0)


def run_dir(tmp_path, state: str) -> RunDir:
    rd = RunDir(tmp_path / "run")
    rd.path.mkdir()
    rd.write_launch({"overrides": [], "proposal_sha256": "x", "flower_run_id": 7})
    (rd.path / "status.json").write_text(json.dumps({"state": state}))
    (rd.path / "progress.log").write_text("round 1/1: done\n")
    return rd


def test_a_run_that_wrote_its_outcome_ends_the_wait_without_asking_flower(tmp_path):
    coordinator, shown = FakeCoordinator("running"), []
    now = wait(coordinator, run_dir(tmp_path, "completed"), timeout=5, show=shown.append, poll_s=0.01)
    assert now["exit_code"] == EXIT_COMPLETED and coordinator.asked == 0
    assert shown == ["round 1/1: done"]


def test_a_serverapp_gone_without_its_outcome_is_found_by_asking_flower_now_and_then(tmp_path):
    coordinator = FakeCoordinator("finished:failed")
    now = wait(coordinator, run_dir(tmp_path, "running"), timeout=5, show=lambda _: None, poll_s=0.01,
               flower_every_s=0.2)
    assert now["exit_code"] == EXIT_FAILED and now["state"] == "failed"
    assert coordinator.asked == 1     # not at each of the ~20 polls before it
