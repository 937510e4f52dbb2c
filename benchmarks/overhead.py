"""Flower's real engine against the in-process grid: wall time per round, and the part that is Flower's.

One horizontal run of three city nodes (heerlen, genk, sant_boi; 3 rounds) twice, on identical fresh
node directories: once with `pulse-twin federate ... --auto-approve` (a SuperLink and one SuperNode per
node on loopback, TLS and node authentication, a ClientApp process per message), once with the same
ServerApp and ClientApp code on the in-process grid. Both compute the same things (DP-SGD, accounting,
egress logging), so the difference per round is the engine's messaging (its 3-second polling, process
start-up per message, serialisation); the difference in total wall time adds the engine's start-up and
shut-down (certificates, node registration, SuperLink and SuperNodes).

    python -m benchmarks.overhead [--rounds 3] [--set KEY=VALUE ...]
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Sequence

from benchmarks import common
from benchmarks.common import fmt, say
from federation.config import layered
from federation.errors import PulseTwinError

CITIES: tuple[str, ...] = ("heerlen", "genk", "sant_boi")
FEDERATION: tuple[str, ...] = ("federation=cities", "~federation.nodes.piraeus")
PULSE_TWIN = Path(sys.executable).parent / "pulse-twin"


def prepare(root: Path) -> dict[str, Any]:
    """Synthetic data for the three cities, and each city node set up with `pulse-twin node init`
    (its key pair and its own site policy template)."""
    from federation.cli import main as cli

    common.cities_data(root=root, cities=CITIES)
    cfg = common.compose_cfg([*FEDERATION, f"federation.data_root={root}"])
    for name, spec in cfg["federation"]["nodes"].items():
        with contextlib.redirect_stdout(io.StringIO()):
            code = cli(["node", "init", "--partner", name, "--node-dir", str(spec["node_dir"])])
        if code != 0:
            raise PulseTwinError(f"`pulse-twin node init --partner {name}` failed (exit {code})")
    return cfg


def engine_run(root: Path, runs: Path, overrides: Sequence[str], timeout: float) -> tuple[Path, float]:
    """`pulse-twin federate` as a user runs it; its run directory and the command's wall time."""
    argv = [str(PULSE_TWIN), "federate", *FEDERATION, f"federation.data_root={root}", f"runs_dir={runs}",
            *overrides, "--auto-approve", "--run-name", "engine"]
    started = time.perf_counter()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env)
    seconds = time.perf_counter() - started
    (runs / "federate.log").write_text(out.stdout + out.stderr)
    if out.returncode != 0:
        tail = (out.stdout + out.stderr).strip()[-600:]
        raise PulseTwinError(f"`pulse-twin federate` exited {out.returncode}: {tail}")
    return runs / "engine", seconds


def inprocess_run(root: Path, runs: Path, overrides: Sequence[str]) -> tuple[Path, float]:
    """The same run on the in-process grid, on the node directories as they are (approved here)."""
    from federation.bundle import running_code_hash
    from clients.site_policy import append_approval

    all_overrides = [*FEDERATION, f"federation.data_root={root}", *overrides]
    cfg = common.compose_cfg(all_overrides)
    nodes = {}
    for node_id, (name, spec) in enumerate(cfg["federation"]["nodes"].items(), start=10):
        append_approval(Path(spec["node_dir"]), {"bundle_hash": running_code_hash(), "by": "benchmarks.overhead"})
        nodes[node_id] = common.node_config(name, spec, Path(spec["node_dir"]).resolve())
    started = time.perf_counter()
    run_dir = common.run_inprocess(all_overrides, nodes, runs / "inprocess")
    return run_dir, time.perf_counter() - started


def round_times(run_dir: Path) -> list[float]:
    """Seconds per round from `rounds.json` (round 1 counted from the run's start, so it includes
    the describe exchange before the first round)."""
    elapsed = [float(r["elapsed_s"]) for r in json.loads((run_dir / "rounds.json").read_text())]
    return [b - a for a, b in zip([0.0, *elapsed], elapsed)]


def summary(times: list[float], run_s: float, wall_s: float) -> dict[str, Any]:
    later = times[1:] or times
    return {"round_s": times, "first_round_s": times[0], "later_round_mean_s": sum(later) / len(later),
            "run_s": run_s, "wall_s": wall_s}


def measure(rounds: int, extra: Sequence[str], timeout: float) -> dict[str, Any]:
    work = common.work_dir() / "overhead"
    engine_root, inproc_root = work / "engine" / "nodes", work / "inprocess" / "nodes"
    say(f"preparing {', '.join(CITIES)}: synthetic data, features, `pulse-twin node init` per node")
    prepare(engine_root)
    shutil.rmtree(inproc_root.parent, ignore_errors=True)
    shutil.copytree(engine_root, inproc_root)  # identical, fresh nodes for the second run
    overrides = layered([f"local.rounds={rounds}"], extra)
    say(f"running `pulse-twin federate {' '.join(FEDERATION)} local.rounds={rounds} --auto-approve` (real engine) ...")
    engine_dir, engine_wall = engine_run(engine_root, work / "engine" / "runs", overrides, timeout)
    say("running the same federation on the in-process grid ...")
    inproc_dir, inproc_wall = inprocess_run(inproc_root, work / "inprocess" / "runs", overrides)
    status = {name: json.loads((d / "status.json").read_text()) for name, d in (("engine", engine_dir),
                                                                               ("inprocess", inproc_dir))}
    engine = summary(round_times(engine_dir), float(status["engine"]["elapsed_s"]), engine_wall)
    inproc = summary(round_times(inproc_dir), float(status["inprocess"]["elapsed_s"]), inproc_wall)
    return {"nodes": list(CITIES), "rounds": rounds, "overrides": overrides, "engine": engine, "inprocess": inproc,
            "overhead_per_round_s": engine["later_round_mean_s"] - inproc["later_round_mean_s"],
            "overhead_first_round_s": engine["first_round_s"] - inproc["first_round_s"],
            "overhead_total_s": engine_wall - inproc_wall}


def table(r: dict[str, Any]) -> str:
    e, i = r["engine"], r["inprocess"]
    rounds = ", ".join(f"{t:.1f}" for t in e["round_s"])
    lines = [
        f"Flower engine overhead: {len(r['nodes'])} nodes ({', '.join(r['nodes'])}), {r['rounds']} rounds, "
        f"same run on both",
        f"{'':<38} {'real engine':>12} {'in-process':>12} {'overhead':>10}",
        f"{'round 1 (with the describe exchange), s':<38} {fmt(e['first_round_s'], 12, 1)} "
        f"{fmt(i['first_round_s'], 12, 1)} {fmt(r['overhead_first_round_s'], 10, 1)}",
        f"{'later rounds, mean s per round':<38} {fmt(e['later_round_mean_s'], 12, 1)} "
        f"{fmt(i['later_round_mean_s'], 12, 1)} {fmt(r['overhead_per_round_s'], 10, 1)}",
        f"{'ServerApp run (status.json), s':<38} {fmt(e['run_s'], 12, 1)} {fmt(i['run_s'], 12, 1)} "
        f"{fmt(e['run_s'] - i['run_s'], 10, 1)}",
        f"{'whole command (with start-up), s':<38} {fmt(e['wall_s'], 12, 1)} {fmt(i['wall_s'], 12, 1)} "
        f"{fmt(r['overhead_total_s'], 10, 1)}",
        f"real engine, seconds per round: {rounds}",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.overhead", description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=3, help="federation rounds of each run (default 3)")
    p.add_argument("--timeout", type=float, default=900, help="seconds the engine run may take (default 900)")
    p.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE", dest="overrides",
                   help="extra Hydra overrides for both runs, e.g. --set dp.target_epsilon=8")
    args = p.parse_args(argv)
    if args.rounds < 2:
        p.error("--rounds: at least 2 (round 1 also holds the describe exchange)")
    common.single_threaded()
    try:
        result = measure(args.rounds, args.overrides, args.timeout)
    except (PulseTwinError, subprocess.TimeoutExpired) as err:
        print(f"benchmarks.overhead: {err}", file=sys.stderr)
        return getattr(err, "exit_code", 1)
    say(table(result))
    say(f"written: {common.write_json('overhead', result)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
