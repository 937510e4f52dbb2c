"""Smoke test of the federation benchmarks: each one's core on a tiny setting prints well-formed figures.

Tiny: synthetic cities of 4 months, two city nodes, 2 rounds, one epsilon, one held-out fold; the
engine-overhead benchmark with its engine half replaced by a second in-process run (the real engine
has its own test, tests/test_engine_horizontal.py)."""
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
    monkeypatch.setattr(overhead, "engine_run",
                        lambda root, runs, extra, timeout: overhead.inprocess_run(root, runs, extra))
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

    # Overhead: per-round times and their difference, from the run records. The nodes keep the site
    # policies `pulse-twin node init` gave them (sample rate at most 0.1).
    assert overhead.main(["--rounds", "2", "--set", "local.sample_rate=0.05"]) == 0
    out = capsys.readouterr().out
    later = next(line for line in out.splitlines() if line.startswith("later rounds"))
    engine_s, inproc_s, diff = numbers(later)
    assert engine_s > 0 and inproc_s > 0 and diff == pytest.approx(engine_s - inproc_s, abs=0.11)
