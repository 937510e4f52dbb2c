"""Faults on the real engine, each within a bounded time: SIGTERM to `pulse-twin federate` mid-run exits 130
and leaves no process behind; a node killed mid-run is named and the run completes with the rest (or fails
naming it when every node is needed); the SuperLink killed mid-run fails the run cleanly and a re-launch
with --resume continues after the last completed round. After each, every node's ledger holds exactly what
its egress log says left (each round charged once, whatever was retried)."""
import json
import os
import signal
import subprocess
import sys
import time
from typing import Callable

import pytest

from dp_accounting import PrivacyLedger, ledger_path
from federation.cli import main
from federation.config import layered
from federation.processes import descendants
from tests.support.federation_fixtures import city_nodes
from tests.support.processes import processes_mentioning

pytestmark = pytest.mark.engine

STOP_BOUND_S = 60   # the engine's stop: SIGTERM, 10 s grace per command, the node's task grace, then SIGKILL
# Flower marks a SuperNode offline after two missed 30 s heartbeats; then one round with the rest, the
# privacy reports and the engine's stop.
LOSS_BOUND_S = 300
CITIES = ("heerlen", "genk", "sant_boi", "piraeus")


def federate_argv(tmp_path, nodes: tuple[str, ...], run_name: str, *extra: str) -> list[str]:
    """`pulse-twin federate` over `nodes` of the city fixture (made here), 3 rounds unless `extra` says otherwise."""
    if not (tmp_path / "nodes").exists():
        city_nodes(tmp_path / "nodes", approve=False)
    return [sys.executable, "-m", "federation.cli", "federate", "federation=cities",
            *(f"~federation.nodes.{n}" for n in CITIES if n not in nodes),
            *layered([f"federation.data_root={tmp_path / 'nodes'}", f"runs_dir={tmp_path / 'runs'}", "local.rounds=3",
                      "local.sample_rate=0.07"], extra), "--auto-approve", "--run-name", run_name]


def fault_after_round_1(argv: list[str], fault: Callable[[subprocess.Popen], None], bound_s: float) -> tuple[int, str]:
    """Run `argv`, cause `fault` once round 1 is reported, and wait at most `bound_s` s for the exit code."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if "round 1/" in line:
                break
        assert lines and "round 1/" in lines[-1], "".join(lines)
        fault(proc)
        code = proc.wait(timeout=bound_s)
    finally:
        if proc.poll() is None:
            kill_tree(proc.pid)     # a failed test leaves nothing behind either
    return code, "".join(lines) + (proc.stdout.read() if proc.stdout else "")


def kill_tree(pid: int) -> None:
    """SIGKILL a process and everything under it, as a crash would: no chance to clean up."""
    for p in (pid, *descendants(pid)):
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass


def pid_of(*needles: str) -> int:
    """The one process whose command line holds every needle."""
    lines = processes_mentioning(needles[0])
    pids = [int(line.split()[0]) for line in lines if all(n in line for n in needles)]
    assert len(pids) == 1, (needles, lines)
    return pids[0]


def assert_ledgers_match_egress_logs(tmp_path, nodes: tuple[str, ...]) -> None:
    """Nothing left running, and each node's audit (ledger against egress log, signed head) passes."""
    time.sleep(1)
    assert processes_mentioning(str(tmp_path)) == []
    for node in nodes:
        assert main(["node", "audit", "--node-dir", str(tmp_path / "nodes" / node)]) == 0, node


def released_rounds(tmp_path, node: str) -> set[int]:
    """Rounds whose model update the node's egress log shows released."""
    path = tmp_path / "nodes" / node / "state" / "egress.jsonl"
    rounds = set()
    for line in path.read_text().splitlines() if path.is_file() else []:
        try:
            record = json.loads(line)
        except ValueError:
            continue    # a line being written right now
        if record["kind"] == "dp-model-update" and record["status"] == "released":
            rounds.add(record["round"])
    return rounds


def horizontal_charges(tmp_path, node: str) -> list[int]:
    with PrivacyLedger(ledger_path(tmp_path / "nodes" / node), create=False) as ledger:
        return [r.round for r in ledger.history() if r.kind == "horizontal-update"]


def test_sigterm_to_federate_mid_round_stops_everything_and_keeps_ledgers_consistent(tmp_path):
    argv = federate_argv(tmp_path, ("genk", "sant_boi"), "cut", "local.rounds=5")
    code, out = fault_after_round_1(argv, lambda proc: proc.send_signal(signal.SIGTERM), STOP_BOUND_S)
    assert code == 130, out
    assert "every process this run started has been stopped" in out
    assert_ledgers_match_egress_logs(tmp_path, ("genk", "sant_boi"))


def test_a_node_killed_mid_run_is_named_and_the_run_completes_with_the_rest(tmp_path):
    nodes = ("genk", "sant_boi", "piraeus")
    victim = f"--node-dir {tmp_path / 'nodes' / 'piraeus'} "
    code, out = fault_after_round_1(federate_argv(tmp_path, nodes, "loss", "reply_timeout_s=120"),
                                    lambda _: kill_tree(pid_of(" node start ", victim)), LOSS_BOUND_S)
    assert code == 0, out
    assert "node piraeus lost in round 2" in out, out
    rounds = json.loads((tmp_path / "runs" / "loss" / "rounds.json").read_text())
    assert [r["round"] for r in rounds] == [1, 2, 3]
    assert all("epsilon" in rounds[-1]["nodes"][n] for n in ("genk", "sant_boi")), rounds[-1]
    assert "epsilon" not in rounds[-1]["nodes"].get("piraeus", {})
    assert {p.stem for p in (tmp_path / "runs" / "loss" / "privacy").glob("*.json")} == {"genk", "sant_boi"}
    assert_ledgers_match_egress_logs(tmp_path, nodes)
    assert horizontal_charges(tmp_path, "piraeus") in ([1], [1, 2])   # round 2 only if it left before the kill


def test_a_lost_node_fails_the_run_naming_it_when_every_node_is_needed(tmp_path):
    nodes = ("genk", "sant_boi")
    victim = f"--node-dir {tmp_path / 'nodes' / 'sant_boi'} "
    code, out = fault_after_round_1(federate_argv(tmp_path, nodes, "loss", "min_nodes=2", "reply_timeout_s=120"),
                                    lambda _: kill_tree(pid_of(" node start ", victim)), LOSS_BOUND_S)
    assert code == 1, out
    assert "the run needs 2 (min_nodes)" in out and "sant_boi:" in out and "Traceback" not in out, out
    assert_ledgers_match_egress_logs(tmp_path, nodes)


def test_superlink_lost_mid_run_fails_cleanly_and_a_relaunch_continues_without_double_charges(tmp_path):
    nodes = ("genk", "sant_boi")
    argv = federate_argv(tmp_path, nodes, "relaunch")

    def kill_superlink(_: subprocess.Popen) -> None:
        # Once every node has released round 2, before the coordinator could aggregate it: the re-launch then
        # asks for round 2 again, and each node must re-send its update rather than release (and pay) twice.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not all(2 in released_rounds(tmp_path, n) for n in nodes):
            time.sleep(0.05)
        kill_tree(pid_of("flower-superlink", str(tmp_path)))

    code, first = fault_after_round_1(argv, kill_superlink, LOSS_BOUND_S)
    assert code == 1, first
    assert "the SuperLink stopped" in first and "--resume" in first and "Traceback" not in first, first
    assert json.loads((tmp_path / "runs" / "relaunch" / "status.json").read_text())["state"] == "failed"
    assert_ledgers_match_egress_logs(tmp_path, nodes)

    again = subprocess.run([*argv, "--resume"], capture_output=True, text=True, timeout=LOSS_BOUND_S)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "resuming after round 1 of 3" in again.stderr, again.stdout + again.stderr   # progress, on stderr
    rounds = json.loads((tmp_path / "runs" / "relaunch" / "rounds.json").read_text())
    assert [r["round"] for r in rounds] == [1, 2, 3]
    assert_ledgers_match_egress_logs(tmp_path, nodes)
    for node in nodes:   # each round charged once on each node, whatever the re-launch asked again
        assert horizontal_charges(tmp_path, node) == [1, 2, 3], node
        log = [json.loads(line) for line in (tmp_path / "nodes" / node / "state" / "egress.jsonl").read_text().splitlines()]
        resent = [r for r in log if r["kind"] == "dp-model-update-resent"]
        assert [(r["round"], r["epsilon_charged"]) for r in resent] == [(2, 0.0)], node
        first = next(r for r in log if r["kind"] == "dp-model-update" and r["round"] == 2)
        assert resent[0]["payload_sha256"] == first["payload_sha256"]
