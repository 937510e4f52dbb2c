"""SIGTERM to `pulse-twin federate --simulation` while Flower's simulation engine runs: the command exits 130
and no process it started (SuperLink, `flwr-simulation`, Ray's daemons and workers) is left behind."""
import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from tests.engine.test_engine_faults import STOP_BOUND_S, federate_argv, kill_tree

pytestmark = pytest.mark.engine

START_BOUND_S = 240   # SuperLink, `flwr run`, Ray's start on 2 shared cores


def processes_with_env(marker: str) -> list[str]:
    """"PID command line" of every living process whose environment holds `marker` (inherited by every
    process the command starts, whatever its name; read from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker.encode() not in (entry / "environ").read_bytes():
                continue
            stat = (entry / "stat").read_text()
            if stat[stat.rindex(")") + 2] == "Z":
                continue
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        found.append(f"{entry.name} {cmdline}")
    return found


@pytest.mark.usefixtures("one_ray_cluster")   # one Ray cluster at a time on the machine
def test_sigterm_to_a_running_simulation_leaves_no_ray_or_flower_process(tmp_path):
    marker = f"PULSE_TWIN_TEST_MARK={uuid.uuid4().hex}"
    argv = federate_argv(tmp_path, ("genk", "sant_boi"), "sim-stop", "--simulation")
    env = {**os.environ, marker.split("=")[0]: marker.split("=")[1]}
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        deadline = time.monotonic() + START_BOUND_S
        while time.monotonic() < deadline and proc.poll() is None:
            if any("raylet" in line for line in processes_with_env(marker)):
                break
            time.sleep(0.5)
        running = processes_with_env(marker)
        assert any("raylet" in line for line in running), running
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=STOP_BOUND_S)
    finally:
        if proc.poll() is None:
            kill_tree(proc.pid)
    assert proc.returncode == 130, out
    assert "every process this run started has been stopped" in out
    time.sleep(1)
    assert processes_with_env(marker) == []
