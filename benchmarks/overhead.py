"""PULSE-TWIN on Flower's deployment engine, side by side with a plain Flower app on the same engine.

Each repetition runs, on this machine and minutes apart:
- PULSE-TWIN: `pulse-twin federate federation=cities ~federation.nodes.piraeus local.rounds=R --auto-approve`
  on fresh node directories of three city nodes (heerlen, genk, sant_boi): a SuperLink and three SuperNodes on
  loopback, TLS and node authentication, every message admitted, trained with DP-SGD, charged and logged;
- plain Flower: a minimal app written here (no PULSE-TWIN code: a ServerApp running Flower's FedAvg with its
  defaults, a train and an evaluate exchange per round, and a ClientApp fitting a tiny linear torch model on
  made-up rows), on a SuperLink and three SuperNodes started with Flower's own commands (loopback, free ports,
  Flower's default process isolation, one `flwr-clientapp` process per message), launched with `flwr run --stream`.

It prints, for each, round 1 (from the ServerApp's start: PULSE-TWIN's also holds its `describe` exchange), the
mean of the later rounds and the whole command (start of the engine to its stop), the medians over the
repetitions, their ratios against the goals (later rounds <= 1.2 x plain Flower's, round 1 and the whole command
<= 1.5 x) and the load average during each run. With PULSE_TWIN_PROFILE set for its runs, PULSE-TWIN's nodes,
ServerApp and command record where each message and phase went (`federation.profile`); the benchmark writes
all records to `runs/bench/overhead-profile.json` and prints their medians.

    python -m benchmarks.overhead [--rounds 3] [--repeat 3] [--timeout 900] [--set KEY=VALUE ...]
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from benchmarks import common
from benchmarks.common import fmt, say
from federation import profile
from federation.config import layered
from federation.errors import PulseTwinError
from federation.processes import BIN, Supervisor, engine_env, free_port

CITIES: tuple[str, ...] = ("heerlen", "genk", "sant_boi")
FEDERATION: tuple[str, ...] = ("federation=cities", "~federation.nodes.piraeus")
PULSE_TWIN = Path(sys.executable).parent / "pulse-twin"
GOALS = {"later_round": 1.2, "first_round": 1.5, "whole": 1.5}   # PULSE-TWIN / plain Flower, at most

# The plain Flower app: Flower's own API only. Written to a fresh directory and run with `flwr run`.
PLAIN_APP = '''"""A minimal Flower app: FedAvg over a tiny linear model on made-up rows."""
import json
import time
from pathlib import Path

import torch
from flwr.app import ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg


def model():
    return torch.nn.Linear(8, 1)


def rows(node_id):
    gen = torch.Generator().manual_seed(int(node_id) % (2 ** 31))
    x = torch.randn(400, 8, generator=gen)
    return x, x.sum(dim=1, keepdim=True) + 0.1 * torch.randn(400, 1, generator=gen)


client = ClientApp()


@client.train()
def train(msg: Message, context: Context) -> Message:
    net = model()
    net.load_state_dict(msg.content["arrays"].to_torch_state_dict())
    x, y = rows(context.node_id)
    opt = torch.optim.SGD(net.parameters(), lr=0.05)
    for _ in range(50):
        opt.zero_grad()
        loss = ((net(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
    metrics = MetricRecord({"num-examples": len(x), "train-loss": float(loss)})
    return Message(RecordDict({"arrays": ArrayRecord(net.state_dict()), "metrics": metrics}), reply_to=msg)


@client.evaluate()
def evaluate(msg: Message, context: Context) -> Message:
    net = model()
    net.load_state_dict(msg.content["arrays"].to_torch_state_dict())
    x, y = rows(context.node_id)
    with torch.no_grad():
        loss = float(((net(x) - y) ** 2).mean())
    return Message(RecordDict({"metrics": MetricRecord({"num-examples": len(x), "eval-loss": loss})}), reply_to=msg)


server = ServerApp()


@server.main()
def main(grid: Grid, context: Context) -> None:
    started, ends = time.time(), []
    out = Path(str(context.run_config["out"]))

    class Timed(FedAvg):
        def aggregate_evaluate(self, server_round, replies):
            result = super().aggregate_evaluate(server_round, replies)
            ends.append(time.time())
            return result

    nodes = int(context.run_config["nodes"])
    evaluate = 1.0 if bool(context.run_config["evaluate"]) else 0.0
    Timed(min_available_nodes=nodes, min_train_nodes=nodes, min_evaluate_nodes=nodes,
          fraction_evaluate=evaluate).start(
        grid=grid, initial_arrays=ArrayRecord(model().state_dict()), num_rounds=int(context.run_config["rounds"]))
    out.write_text(json.dumps({"started": started, "round_ends": ends, "ended": time.time()}))
'''

PLAIN_PYPROJECT = '''[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "plainflower"
version = "1.0.0"
dependencies = ["flwr==1.41.0", "torch"]

[tool.hatch.build.targets.wheel]
packages = ["."]

[tool.flwr.app]
publisher = "benchmark"

[tool.flwr.app.components]
serverapp = "plainapp:server"
clientapp = "plainapp:client"

[tool.flwr.app.config]
rounds = 3
nodes = 3
evaluate = true
out = ""
'''


# --- load average -------------------------------------------------------------------------------------

class LoadSampler:
    """The 1-minute load average, sampled every second while a run goes on."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(os.getloadavg()[0])
            self._stop.wait(1.0)

    def __enter__(self) -> "LoadSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def summary(self) -> dict[str, float]:
        s = self.samples or [os.getloadavg()[0]]
        return {"load_mean": round(statistics.fmean(s), 2), "load_max": round(max(s), 2)}


def summary(times: list[float], wall_s: float) -> dict[str, Any]:
    later = times[1:] or times
    return {"round_s": [round(t, 2) for t in times], "first_round_s": times[0],
            "later_round_mean_s": sum(later) / len(later), "wall_s": wall_s}


# --- PULSE-TWIN ---------------------------------------------------------------------------------------

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


def project_run(template: Path, work: Path, overrides: Sequence[str], timeout: float) -> dict[str, Any]:
    """`pulse-twin federate` as a user runs it, on a fresh copy of the prepared node directories, profiled."""
    root = work / "nodes"
    shutil.copytree(template, root)
    runs = work / "runs"
    argv = [str(PULSE_TWIN), "federate", *FEDERATION, f"federation.data_root={root}", f"runs_dir={runs}",
            *overrides, "--auto-approve", "--run-name", "engine"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", profile.ENV: "1"}
    with LoadSampler() as load:
        started = time.perf_counter()
        out = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env)
        wall = time.perf_counter() - started
    (work / "federate.log").write_text(out.stdout + out.stderr)
    if out.returncode != 0:
        raise PulseTwinError(f"`pulse-twin federate` exited {out.returncode}: {(out.stdout + out.stderr).strip()[-600:]}")
    run_dir = runs / "engine"
    records = profile.read(run_dir / profile.FILE)
    main = next((r for r in records if r.get("phase") == "run"), {})
    # rounds.json counts from the ServerApp's run record; counted here from main(), as the plain app counts
    offset = float(main.get("record_started", main.get("start", 0.0))) - float(main.get("start", 0.0))
    elapsed = [float(r["elapsed_s"]) + offset for r in json.loads((run_dir / "rounds.json").read_text())]
    times = [b - a for a, b in zip([0.0, *elapsed], elapsed)]
    nodes = {name: profile.read(p) for name, p in node_profiles(root).items()}
    return {**summary(times, wall), **load.summary(), "profile": {"run": records, "nodes": nodes}}


def node_profiles(root: Path) -> dict[str, Path]:
    cfg = common.compose_cfg([*FEDERATION, f"federation.data_root={root}"])
    return {name: Path(spec["node_dir"]) / "state" / "logs" / profile.FILE
            for name, spec in cfg["federation"]["nodes"].items()}


# --- plain Flower -------------------------------------------------------------------------------------

def plain_run(work: Path, nodes: int, rounds: int, timeout: float, evaluate: bool = True) -> dict[str, Any]:
    """The plain app on a SuperLink and `nodes` SuperNodes started with Flower's commands; every process it
    starts is stopped by process id (with its children) before it returns, also on failure."""
    app = work / "app"
    app.mkdir(parents=True)
    (app / "plainapp.py").write_text(PLAIN_APP)
    (app / "pyproject.toml").write_text(PLAIN_PYPROJECT)
    home, out = work / "flower-home", work / "result.json"
    env = {**engine_env(home), "OMP_NUM_THREADS": "1"}
    port = free_port()
    (home / "config.toml").write_text(f'[superlink]\ndefault = "local"\n\n[superlink.local]\n'
                                      f'address = "127.0.0.1:{port}"\ninsecure = true\n')
    supervisor = Supervisor(work / "logs")
    with LoadSampler() as load:
        started = time.perf_counter()
        try:
            supervisor.start("superlink", [str(BIN / "flower-superlink"), "--insecure", "--host", "127.0.0.1", "--port",
                                           str(port), "--database", str(work / "state.db"),
                                           "--disable-runtime-dependency-installation"], env, cwd=work)
            wait_for(supervisor, "superlink", "Uvicorn running", timeout)
            for i in range(nodes):
                supervisor.start(f"supernode-{i}", [str(BIN / "flower-supernode"), "--insecure", "--superlink",
                                                    f"127.0.0.1:{port}", "--port", str(free_port())], env, cwd=work)
            for i in range(nodes):
                wait_for(supervisor, f"supernode-{i}", "SuperNode ID", timeout)
            config = f'rounds={rounds} nodes={nodes} evaluate={str(evaluate).lower()} out="{out}"'
            ran = subprocess.run([str(BIN / "flwr"), "run", str(app), "local", "--stream", "--run-config", config],
                                 capture_output=True, text=True, timeout=timeout, env=env, cwd=work)
            (work / "flwr-run.log").write_text(ran.stdout + ran.stderr)
        finally:
            supervisor.stop_all()
        wall = time.perf_counter() - started
    if not out.is_file():
        raise PulseTwinError(f"the plain Flower app wrote no result; see {work / 'flwr-run.log'} and {work / 'logs'}")
    result = json.loads(out.read_text())
    ends = [float(t) - float(result["started"]) for t in result["round_ends"]]
    return {**summary([b - a for a, b in zip([0.0, *ends], ends)], wall), **load.summary()}


def wait_for(supervisor: Supervisor, name: str, text: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while text not in supervisor.output(name):
        proc = supervisor.processes[name]
        if proc.poll() is not None:
            raise PulseTwinError(f"{name} exited at start (code {proc.returncode}); see {supervisor.log(name)}")
        if time.monotonic() > deadline:
            raise PulseTwinError(f"{name} did not report '{text}' within {timeout:.0f} s; see {supervisor.log(name)}")
        time.sleep(0.2)


# --- the profile's summary ----------------------------------------------------------------------------

NODE_STEPS: tuple[tuple[str, str], ...] = (
    ("supernode_pull", "SuperNode pull (message created -> task on the node)"),
    ("claim", "executor claims the task"),
    ("pull_task_input", "message content to the executor"),
    ("imports", "ClientApp imports"),
    ("bundle_hash", "bundle hash"),
    ("admission", "admission (approval, policy, parameters)"),
    ("features", "features read"),
    ("calibration", "noise calibration"),
    ("training", "DP-SGD training"),
    ("accountant", "accountant (epsilon of the reply)"),
    ("vouch", "guard: log and ledger vouched"),
    ("ledger", "guard: ledger charge"),
    ("guard", "guard in all"),
    ("handler", "handler in all"),
    ("push", "reply to the SuperNode"),
    ("relay", "reply relayed to the ServerApp (first seen after)"),
)
COLUMNS: tuple[str, ...] = ("query.describe", "train 1", "train later", "query.privacy")


def node_rows(runs: list[dict[str, Any]]) -> dict[str, dict[str, list[float]]]:
    """Seconds per node step and message column, over every node and run."""
    table: dict[str, dict[str, list[float]]] = {}
    for run in runs:
        exchanges = [r for r in run["profile"]["run"] if r.get("exchange")]
        trains = sorted({r["start"] for r in run["profile"]["run"] if r.get("exchange") == "train"})
        for records in run["profile"]["nodes"].values():
            for r in records:
                kind = r.get("message_type", "")
                column = kind
                if kind == "train":
                    column = "train 1" if trains and r["created_at"] < (trains[1] if len(trains) > 1 else 1e18) \
                        else "train later"
                steps = dict(r.get("spans", {}))
                if r.get("pending_at") and r.get("created_at"):
                    steps["supernode_pull"] = r["pending_at"] - r["created_at"]
                    steps["claim"] = r["start"] - r["pending_at"]
                # the ServerApp's exchange this message belongs to; the first reply it saw after this node's
                exchange = next((e for e in exchanges if e["start"] <= r["start"] <= e["end"]), {})
                got = [t for t in exchange.get("replies_at", []) if t >= r["end"]]
                if got:
                    steps["relay"] = min(got) - r["end"]
                for step, value in steps.items():
                    table.setdefault(step, {}).setdefault(column, []).append(float(value))
    return table


def phase_rows(runs: list[dict[str, Any]]) -> dict[str, list[float]]:
    """Seconds per phase of the command and of the ServerApp, over runs."""
    out: dict[str, list[float]] = {}
    for run in runs:
        records = run["profile"]["run"]
        cmd = next((r for r in records if r.get("party") == "federate"), None)
        main = next((r for r in records if r.get("phase") == "run"), None)
        exchanges = [r for r in records if r.get("exchange")]
        if cmd is None or main is None:
            continue
        phases = {"command start (process -> engine starting)": cmd["start"] - (cmd.get("process_started") or cmd["start"])}
        phases.update({f"federate: {k}": v for k, v in cmd["spans"].items()})
        phases["federate: stop of every process"] = cmd["end"] - cmd.get("stopping", cmd["end"])
        if main.get("process_started"):
            phases["ServerApp: process start -> main()"] = main["start"] - main["process_started"]
        if exchanges:
            phases["ServerApp: main() -> first exchange"] = exchanges[0]["start"] - main["start"]
        for name in {r["exchange"] for r in exchanges if r["exchange"]}:
            mine = [r for r in exchanges if r["exchange"] == name]
            phases[f"ServerApp: {name}: push (median)"] = statistics.median(r["spans"].get("push", 0.0) for r in mine)
            phases[f"ServerApp: {name}: push -> last reply (median)"] = statistics.median(
                max(r.get("replies_at") or [r["end"]]) - r["start"] for r in mine)
        gaps = [b["start"] - a["end"] for a, b in zip(exchanges, exchanges[1:])]
        if gaps:
            phases["ServerApp: between exchanges (sum)"] = sum(gaps)
        phases["ServerApp: last exchange -> end"] = main["end"] - exchanges[-1]["end"] if exchanges else 0.0
        for name, value in phases.items():
            out.setdefault(name, []).append(float(value))
    return out


def profile_text(runs: list[dict[str, Any]]) -> str:
    table = node_rows(runs)
    lines = ["Where PULSE-TWIN's time goes (medians over nodes and runs, seconds; `federation.profile`):",
             f"{'node, per message':<52}" + "".join(f"{c:>15}" for c in COLUMNS)]
    for step, label in NODE_STEPS:
        if step in table:
            cells = [statistics.median(table[step][c]) if table[step].get(c) else None for c in COLUMNS]
            lines.append(f"{label:<52}" + "".join(fmt(v, 15, 2) if v is not None else f"{'-':>15}" for v in cells))
    lines.append(f"{'command and ServerApp':<52}{'median s':>15}")
    for name, values in phase_rows(runs).items():
        lines.append(f"{name[:60]:<60}{fmt(statistics.median(values), 7, 2)}")
    return "\n".join(lines)


# --- the whole benchmark ------------------------------------------------------------------------------

def median_of(runs: list[dict[str, Any]], key: str) -> float:
    return statistics.median(float(r[key]) for r in runs)


def measure(rounds: int, repeat: int, extra: Sequence[str], timeout: float, plain_evaluate: bool = True,
            show: Callable[[str], None] = say) -> dict[str, Any]:
    work = common.work_dir() / "overhead"
    template = work / "template"
    show(f"preparing {', '.join(CITIES)}: synthetic data, features, `pulse-twin node init` per node")
    prepare(template)
    overrides = layered([f"local.rounds={rounds}"], extra)
    project, plain = [], []
    for i in range(1, repeat + 1):
        show(f"[{i}/{repeat}] `pulse-twin federate {' '.join(FEDERATION)} local.rounds={rounds} --auto-approve` ...")
        project.append(project_run(template, work / f"project-{i}", overrides, timeout))
        show(line("PULSE-TWIN", project[-1]))
        exchanges = "train and evaluate" if plain_evaluate else "train only"
        show(f"[{i}/{repeat}] plain Flower app, {len(CITIES)} SuperNodes, {rounds} rounds ({exchanges}) ...")
        plain.append(plain_run(work / f"plain-{i}", len(CITIES), rounds, timeout, plain_evaluate))
        show(line("plain Flower", plain[-1]))
    medians = {side: {k: median_of(runs, k) for k in ("first_round_s", "later_round_mean_s", "wall_s")}
               for side, runs in (("project", project), ("plain", plain))}
    ratios = {"later_round": medians["project"]["later_round_mean_s"] / medians["plain"]["later_round_mean_s"],
              "first_round": medians["project"]["first_round_s"] / medians["plain"]["first_round_s"],
              "whole": medians["project"]["wall_s"] / medians["plain"]["wall_s"]}
    return {"nodes": list(CITIES), "rounds": rounds, "repeat": repeat, "overrides": overrides,
            "plain_evaluate": plain_evaluate,
            "project": project, "plain": plain, "medians": medians, "ratios": ratios, "goals": GOALS,
            "met": {k: ratios[k] <= GOALS[k] for k in GOALS}}


def line(name: str, r: dict[str, Any]) -> str:
    rounds = ", ".join(f"{t:.1f}" for t in r["round_s"])
    return (f"  {name}: rounds {rounds} s; whole command {r['wall_s']:.1f} s; load average {r['load_mean']:.1f} "
            f"(max {r['load_max']:.1f})")


def table(r: dict[str, Any]) -> str:
    m, q = r["medians"], r["ratios"]
    rows = (("round 1, s", "first_round_s", "first_round"), ("later rounds, mean s per round", "later_round_mean_s",
                                                               "later_round"),
            ("whole command, s", "wall_s", "whole"))
    plain = "train and evaluate exchanges" if r["plain_evaluate"] else "train exchanges only"
    lines = [f"PULSE-TWIN against plain Flower on Flower's deployment engine: {len(r['nodes'])} nodes, {r['rounds']} "
             f"rounds, medians of {r['repeat']} runs each (plain Flower: {plain})",
             f"{'':<32}{'PULSE-TWIN':>12}{'plain Flower':>14}{'ratio':>8}{'goal':>8}"]
    for label, key, goal in rows:
        verdict = "met" if r["met"][goal] else "NOT met"
        lines.append(f"{label:<32}{fmt(m['project'][key], 12, 1)}{fmt(m['plain'][key], 14, 1)}{fmt(q[goal], 8, 2)}"
                     f"{'<= ' + format(GOALS[goal], 'g'):>8}  {verdict}")
    loads = [x["load_mean"] for x in r["project"] + r["plain"]]
    lines.append(f"load average during the runs: {min(loads):.1f} to {max(loads):.1f} (1-minute, sampled every second)")
    return "\n".join(lines)


def strip_profiles(r: dict[str, Any]) -> dict[str, Any]:
    return {**r, "project": [{k: v for k, v in run.items() if k != "profile"} for run in r["project"]]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.overhead", description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=3, help="federation rounds of each run (default 3)")
    p.add_argument("--repeat", type=int, default=3, help="runs of each side; the medians are compared (default 3)")
    p.add_argument("--timeout", type=float, default=900, help="seconds each run may take (default 900)")
    p.add_argument("--plain-train-only", action="store_true",
                   help="the plain app without its evaluate exchange (FedAvg's fraction_evaluate=0): one exchange per "
                        "round, as PULSE-TWIN's rounds without held-out areas (default: Flower's FedAvg defaults, a train "
                        "and an evaluate exchange per round)")
    p.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE", dest="overrides",
                   help="extra Hydra overrides for PULSE-TWIN's runs, e.g. --set dp.target_epsilon=8")
    args = p.parse_args(argv)
    if args.rounds < 2:
        p.error("--rounds: at least 2 (round 1 is compared apart from the later rounds)")
    if args.repeat < 1:
        p.error("--repeat: at least 1")
    common.single_threaded()
    try:
        result = measure(args.rounds, args.repeat, args.overrides, args.timeout, not args.plain_train_only)
    except (PulseTwinError, subprocess.TimeoutExpired) as err:
        print(f"benchmarks.overhead: {err}", file=sys.stderr)
        return getattr(err, "exit_code", 1)
    say(table(result))
    say(profile_text(result["project"]))
    path = common.write_json("overhead-profile", [run["profile"] for run in result["project"]])
    say(f"written: {common.write_json('overhead', strip_profiles(result))}, {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
