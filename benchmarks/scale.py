"""Scale on Flower's simulation engine: many small regional nodes, 3 rounds, wall time and peak memory.

Writes N regional node directories (one per regional authority, one period, blocks `context` and `social`
with a known signal, about 104 areas per region as 32,844 areas over 317 authorities; the benchmark site
policy), then runs `pulse-twin federate federation=regions ... --simulation --auto-approve` in a child
process and reports its wall time, when each round ended and the time after the last round (the nodes'
privacy reports), both by the ServerApp's own clock (`rounds.json`, `status.json`), and the peak resident
memory of the whole process tree (sampled from /proc). `--idle-supernode` measures instead the resident
memory of one idle `pulse-twin node start` process tree on the real engine (SuperLink on loopback, insecure).

    python -m benchmarks.scale [--nodes 10 50 150 317] [--rounds 3] [--timeout 900] [--idle-supernode]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.common import work_dir, write_bench_policy, write_json
from federation.config import layered
from federation.blocks import block_schema
from federation.processes import descendants

BLOCKS: tuple[str, ...] = ("context", "social")
MEAN_AREAS = 32_844 / 317
ROUND_LINE = re.compile(r"^round (\d+)/(\d+): ")


def regional_nodes(root: Path, n: int, seed: int = 0) -> dict[str, Path]:
    """`n` node directories `r001`... with built blocks and a label over their own areas (one period)."""
    rng = np.random.default_rng(seed)
    schemas = {b: block_schema(b) for b in BLOCKS}
    nodes = {}
    for i in range(n):
        name = f"r{i + 1:03d}"
        areas = int(np.clip(rng.lognormal(np.log(MEAN_AREAS), 0.6), 8, 800))
        keys = pd.DataFrame({"area_code": [f"RG{i + 1:03d}{a:04d}" for a in range(areas)], "period": "2021-01"})
        latent = rng.normal(size=areas)
        features = root / name / "features"
        features.mkdir(parents=True, exist_ok=True)
        for block, schema in schemas.items():
            z = rng.normal(scale=0.5, size=(areas, len(schema.features)))
            z[:, 0] += latent
            values = schema.center + z * schema.scale
            values = np.where(schema.log1p, np.expm1(np.maximum(values, 0.0)), values)
            frame = pd.concat([keys, pd.DataFrame(values, columns=list(schema.features))], axis=1)
            frame.to_parquet(features / f"{block}.parquet", index=False)
        label = keys.assign(label=4.1 + 0.1 * latent + rng.normal(scale=0.05, size=areas))
        label.to_parquet(features / "label.parquet", index=False)
        write_bench_policy(root / name, name)
        nodes[name] = root / name
    return nodes


def own_rss_kb(pid: int) -> int:
    """Resident memory (kB) of one process, now (0 once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_rss_kb(pid: int) -> int:
    """Resident memory (kB) of `pid` and every descendant, now."""
    return sum(own_rss_kb(p) for p in [pid, *descendants(pid)])


@dataclass
class Sampler:
    """Samples the resident memory of a process tree until stopped; keeps the peak."""

    pid: int
    every_s: float = 0.5
    peak_kb: int = 0
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        while not self.stop.wait(self.every_s):
            self.peak_kb = max(self.peak_kb, tree_rss_kb(self.pid))


def run_scale(n: int, rounds: int, timeout: float, extra: list[str]) -> dict:
    """One simulation run of `n` regional nodes: wall time, per-round times, tail, peak memory."""
    root = work_dir() / f"scale-{n}"
    nodes = regional_nodes(root / "nodes", n)
    spec = "{" + ",".join(f"{name}:{{node_dir:'{path}'}}" for name, path in nodes.items()) + "}"
    argv = [sys.executable, "-m", "federation.cli", "federate", "federation=regions",
            f"federation.data_root={root / 'nodes'}", "~federation.nodes", f"+federation.nodes={spec}", f"runs_dir={root / 'runs'}",
            *layered([f"local.rounds={rounds}"], extra), "--simulation", "--auto-approve", "--run-name", f"scale-{n}",
            "--timeout", f"{timeout:g}"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    started = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    sampler = Sampler(proc.pid)
    thread = threading.Thread(target=sampler.run, daemon=True)
    thread.start()
    marks: dict[int, float] = {}
    tail: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            now = time.monotonic() - started
            match = ROUND_LINE.match(line)
            if match:
                marks[int(match.group(1))] = now
                print(f"  [{now:6.1f} s] {line.rstrip()}", flush=True)
            tail = (tail + [line.rstrip()])[-15:]
        code = proc.wait()
    finally:
        if proc.poll() is None:   # interrupted: the command stops everything it started on SIGTERM
            proc.terminate()
            proc.wait(60)
        sampler.stop.set()
        thread.join()
    wall = time.monotonic() - started
    if code != 0:
        print(f"{n} nodes: `pulse-twin federate` exited {code}:\n" + "\n".join(tail), flush=True)
    # The ServerApp's own clock (rounds.json, status.json): the printed lines lag by the command's polling.
    run_dir = root / "runs" / f"scale-{n}"
    ends = [float(r["elapsed_s"]) for r in _json(run_dir / "rounds.json", [])]
    total = _json(run_dir / "status.json", {}).get("elapsed_s")
    per_round = [b - a for a, b in zip(ends, ends[1:])]
    return {"nodes": n, "rounds": rounds, "exit_code": code, "wall_s": wall, "round_end_s": ends, "round_s": per_round,
            "until_round_1_s": ends[0] if ends else None,
            "after_last_round_s": float(total) - ends[-1] if ends and total is not None else None,
            "peak_rss_mb": sampler.peak_kb / 1024}


def _json(path: Path, default: object) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return default


def idle_supernode(settle_s: float = 20.0) -> dict:
    """Resident memory of one idle `pulse-twin node start` process tree (real engine, SuperLink on loopback)."""
    from devtools.launcher import LocalEngine, NodeLaunch

    root = work_dir() / "idle"
    name, path = next(iter(regional_nodes(root / "nodes", 1).items()))
    with LocalEngine(root / "engine", [NodeLaunch(name, path, {})], insecure=True, say=lambda _: None) as engine:
        time.sleep(settle_s)
        proc = engine.supervisor.processes[f"node-{name}"]
        tree = [proc.pid, *descendants(proc.pid)]
        per = {p: own_rss_kb(p) for p in tree}
        names = {p: Path(f"/proc/{p}/cmdline").read_bytes().split(b"\0")[:4] for p in tree}
    return {"processes": [{"pid": p, "argv": " ".join(a.decode() for a in names[p] if a), "rss_mb": kb / 1024}
                          for p, kb in per.items()], "total_rss_mb": sum(per.values()) / 1024}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.scale", description=__doc__.split("\n\n")[0])
    p.add_argument("--nodes", type=int, nargs="+", default=[10, 50, 150, 317], help="federation sizes to run")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--timeout", type=float, default=900, help="seconds one run may take (default 900)")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="Hydra overrides for every run")
    p.add_argument("--idle-supernode", action="store_true",
                   help="measure the memory of one idle SuperNode on the real engine instead")
    args = p.parse_args(argv)
    if args.idle_supernode:
        idle = idle_supernode()
        for proc in idle["processes"]:
            print(f"{proc['rss_mb']:8.0f} MB  {proc['argv']}")
        print(f"{idle['total_rss_mb']:8.0f} MB  one idle `pulse-twin node start` process tree")
        write_json("scale-idle-supernode", idle)
        return 0
    rows = []
    for n in args.nodes:
        print(f"== {n} nodes, {args.rounds} rounds (simulation engine)", flush=True)
        rows.append(run_scale(n, args.rounds, args.timeout, list(args.set)))
    print(f"\n{'nodes':>6}{'wall s':>9}{'round 1 ends':>14}{'later rounds s':>16}{'after last s':>14}"
          f"{'peak MB':>9}  outcome")
    for r in rows:
        rounds = ", ".join(f"{s:.0f}" for s in r["round_s"]) or "-"
        print(f"{r['nodes']:>6}{r['wall_s']:>9.0f}{r['until_round_1_s'] or 0:>14.0f}{rounds:>16}"
              f"{r['after_last_round_s'] or 0:>14.0f}{r['peak_rss_mb']:>9.0f}  "
              + ("completed" if r["exit_code"] == 0 else f"exit {r['exit_code']}"))
    write_json("scale", rows)
    return 0 if all(r["exit_code"] == 0 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
