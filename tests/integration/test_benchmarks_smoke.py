"""Smoke test of the federation benchmarks: each one's core on a tiny setting prints well-formed figures.

Tiny: synthetic cities of 4 months, two city nodes, 2 rounds, one epsilon, one held-out fold; the
engine-overhead benchmark with its runs on the engine replaced by made-up ones (the real engine has its own
tests in tests/engine; the benchmark's own runs are `python -m benchmarks.overhead`)."""
from __future__ import annotations

import functools
import json
import logging
import math
import re

import pytest
import torch

from benchmarks import common, horizontal, overhead, vertical

NUMBER = r"-?\d+\.\d+"


def numbers(line: str) -> list[float]:
    return [float(x) for x in re.findall(NUMBER, line)]


@pytest.fixture()
def tiny(tmp_path, monkeypatch):
    """Benchmarks write into tmp_path and build small synthetic data (4 months, few records); the
    process-wide settings they change (threads, Flower's log level) are restored afterwards."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    flwr_logger = logging.getLogger("flwr")
    monkeypatch.setattr(flwr_logger, "level", flwr_logger.level)
    threads = torch.get_num_threads()
    monkeypatch.setattr(common, "_WORK", [tmp_path / "work"])
    monkeypatch.setattr(common, "RESULTS_DIR", tmp_path / "results")
    small = functools.partial(common.cities_data, records=40_000, months=4)
    monkeypatch.setattr(common, "cities_data", small)
    monkeypatch.setitem(horizontal.DATASETS, "cities",
                        horizontal.Dataset("cities", small, horizontal.DATASETS["cities"].overrides))
    monkeypatch.setitem(vertical.DATASETS, "heerlen", ("heerlen", small))
    yield tmp_path
    torch.set_num_threads(threads)


def test_each_benchmark_prints_finite_figures(tiny, capsys):
    # Horizontal: two city nodes, federated and each alone at epsilon 8, pooled yardstick, throughput.
    two_cities = ["local.rounds=2", "~federation.nodes.sant_boi", "~federation.nodes.piraeus"]
    assert horizontal.main(["--datasets", "cities", "--epsilons", "8", "--folds", "0", "--set", *two_cities]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: numbers(line) for line in out.splitlines() if line.startswith(("heerlen ", "genk "))}
    assert set(rows) == {"heerlen", "genk"}
    for values in rows.values():  # pooled, federated and local-only R²
        assert len(values) == 3 and all(math.isfinite(v) and v <= 1.0 for v in values)
    reached = re.search(rf"target 8 -> ({NUMBER})", out)
    assert reached and 0 < float(reached.group(1)) <= 8.05
    rate = re.search(r"DP-SGD throughput: ([\d,]+) examples/s .* vs ([\d,]+) examples/s non-private", out)
    assert rate and all(int(g.replace(",", "")) > 0 for g in rate.groups())
    saved = json.loads((tiny / "results" / "horizontal-quick.json").read_text())
    assert saved["cities"]["nodes"]["heerlen"]["federated"]["8"]["r2"] == pytest.approx(rows["heerlen"][1], abs=5e-4)

    # Vertical: Heerlen's three partners' DP releases at epsilon 8 per unit beside the exact yardstick.
    assert vertical.main(["--datasets", "heerlen", "--epsilons", "8", "--folds", "2", "--draws", "1"]) == 0
    out = capsys.readouterr().out
    fed = numbers(next(line for line in out.splitlines() if line.startswith("federated DP (all partners)")))
    assert len(fed) == 2 and all(math.isfinite(v) and v <= 1.0 for v in fed)   # epsilon 8, then exact pooled
    saved = json.loads((tiny / "results" / "vertical.json").read_text())
    assert saved[0]["dp"]["8"]["federated"]["r2"] == pytest.approx(fed[0], abs=5e-4)

    # Overhead: medians over the runs, their ratios and the goals' verdicts, and the profile's medians.
    compile(overhead.PLAIN_APP, "plainapp.py", "exec")   # the plain Flower app the benchmark writes is Python
    project = iter([([9.0, 5.0, 5.0], 60.0), ([12.0, 4.0, 4.0], 50.0), ([10.0, 6.0, 6.0], 70.0)])
    plain = iter([([8.0, 4.0, 4.0], 40.0), ([6.0, 3.0, 3.0], 30.0), ([7.0, 5.0, 5.0], 50.0)])

    def made_up(runs, **extra):
        times, wall = next(runs)
        return {**overhead.summary(times, wall), "load_mean": 2.0, "load_max": 3.0, **extra}

    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setattr(overhead, "project_run", lambda *a: made_up(project, profile=fake_profile()))
    monkeypatch.setattr(overhead, "plain_run", lambda *a: made_up(plain))
    try:
        assert overhead.main(["--rounds", "3", "--repeat", "3"]) == 0
    finally:
        monkeypatch.undo()
    out = capsys.readouterr().out
    rows = {name: numbers(line) for line in out.splitlines()
            for name in ("round 1", "later rounds", "whole command") if line.startswith(name)}
    # medians: round 1 10 against 7, later rounds 5 against 4, whole command 60 against 40
    assert rows["round 1"][:3] == pytest.approx([10.0, 7.0, 1.43], abs=0.01)
    assert rows["later rounds"][:3] == pytest.approx([5.0, 4.0, 1.25], abs=0.01)
    assert rows["whole command"][:3] == pytest.approx([60.0, 40.0, 1.5], abs=0.01)
    assert out.count("NOT met") == 1                      # later rounds: 1.25 > 1.2
    relay = next(line for line in out.splitlines() if line.startswith("reply relayed"))
    assert numbers(relay) == pytest.approx([0.5, 0.5])   # describe and train 1, from the made-up profile


def fake_profile() -> dict:
    """One describe and one train exchange as the ServerApp, the command and one node would record them."""
    t = 1000.0
    run = [{"party": "federate", "process_started": t, "start": t + 1, "end": t + 40, "stopping": t + 38,
            "spans": {"propose": 2.0}},
           {"party": "serverapp", "phase": "run", "process_started": t + 5, "start": t + 8, "end": t + 30,
            "spans": {}},
           {"party": "serverapp", "exchange": "query.describe", "messages": 1, "start": t + 10, "end": t + 13,
            "spans": {"push": 0.1}, "replies_at": [t + 12.5]},
           {"party": "serverapp", "exchange": "train", "messages": 1, "start": t + 13, "end": t + 20,
            "spans": {"push": 0.2}, "replies_at": [t + 19.5]}]
    node = [{"message_type": "query.describe", "created_at": t + 10, "pending_at": t + 11, "start": t + 11.5,
             "end": t + 12, "spans": {"handler": 0.1}},
            {"message_type": "train", "created_at": t + 13, "pending_at": t + 15, "start": t + 15.5, "end": t + 19,
             "spans": {"handler": 3.0, "training": 2.0}}]
    return {"run": run, "nodes": {"genk": node}}
