"""Runs on the lab's SuperLink: propose, start, status, log, stop (`pulse-twin run ...`).

A run lives in `<runs_dir>/<run>/`: `proposal.json` (what each node approves: the code hash and the exact
privacy parameters of this run), `launch.json` (the configuration overrides it was proposed with, and once
started the SuperLink's run id), and what the ServerApp writes (`status.json`, `rounds.json`, results).
`run start` launches exactly the proposed configuration, naming the proposal's hash in the run
configuration so that every node can check it against its own approvals before anything runs.

Exit codes of `run start --wait` and `run status`: 0 completed; 1 failed or stopped; 3 completed with a
node's refusal, or refused by a node (named); 6 not finished yet (pending or running).
"""
from __future__ import annotations

import json
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from dp_accounting import noise_multiplier
from federation.blocks import block_schema, federation_local_blocks
from federation.bundle import app_dir as running_app_dir
from federation.bundle import running_code_hash
from federation.config import compose, to_container, value_override, layered
from federation.errors import ConfigError, PulseTwinError
from federation.flower_config import OVERRIDES, encode, write_toml
from federation.proposal import PrivacyPlan, RunProposal
from federation.units import RECORD_UNIT, ROW_UNIT
from server.coordinator import CONNECTION, Coordinator, CoordinatorError
from server.run_record import read_status, update_status

PROPOSAL_KEY = "proposal-sha256"
RUN_CONFIG_FILE = "run-config.toml"   # what `flwr run` was given, kept in the run directory
EXIT_COMPLETED, EXIT_FAILED, EXIT_REFUSED, EXIT_RUNNING = 0, 1, 3, 6
FLOWER_CHECK_S = 10.0   # how often `wait` asks Flower whether a run it follows has ended without its status


class RunFailed(PulseTwinError):
    """The run failed or was stopped (exit 1); the message says why and where its logs are."""

    exit_code = EXIT_FAILED


def proposed_unit(topology: str) -> str:
    """What the run's guarantee is stated per: an area-period row for DP-SGD (horizontal); one record for
    releases of raw-record aggregates, the guarantee every node gives (a node protecting persons gives more)."""
    return ROW_UNIT if topology == "horizontal" else RECORD_UNIT


def proposal_for(cfg: dict, run_name: str) -> RunProposal:
    """The run as nodes are asked to approve it: its code hash and the privacy parameters it really uses."""
    dp, local, fed = cfg["dp"], cfg["local"], cfg["federation"]
    epsilon, delta = float(dp["target_epsilon"]), float(dp["delta"])
    topology = fed["topology"]
    if topology == "horizontal":
        from server.horizontal import dry_run, schedule

        s = schedule(cfg)
        plan = PrivacyPlan(epsilon, delta, s.noise_multiplier, s.sample_rate, s.steps_per_round, int(local["rounds"]),
                           unit=proposed_unit(topology), local_epochs=float(local["local_epochs"]),
                           loss_noise_multiplier=float(dp["loss_noise_multiplier"]), min_rows=s.min_rows,
                           eval_noise_multiplier=float(dp["eval_noise_multiplier"]), dry_run=dry_run(cfg))
        note = (f"every node samples each row with probability {s.sample_rate:g} per step (its expected batch is "
                f"that times its rows); a node of fewer than {s.min_rows} rows takes part through its "
                "person-level DP release of its blocks instead")
    else:
        plan = PrivacyPlan(epsilon, delta, noise_multiplier(epsilon, delta, 1.0, 1), 1.0, 1, 1,
                           unit=proposed_unit(topology), mechanism="gaussian")
        note = "one Gaussian release per private table and node, kept and re-used by later runs"
    federation = {"name": fed["name"], "strategy": cfg["strategy"]["name"], "note": note}
    if topology == "horizontal":   # what a node needs to count its training rows at approval
        federation.update({"blocks": list(fed["blocks"]), "label": dict(fed["label"]),
                           "holdout_fold": int(cfg.get("holdout_fold", -1)), "folds": int(cfg["folds"]),
                           "seed": int(cfg["seed"])})
    return RunProposal(run_name=run_name, run_kind=topology, bundle_hash=running_code_hash(), privacy=plan,
                       federation=federation,
                       block_schemas=block_hashes(fed) if topology == "horizontal" else {})


def block_hashes(fed: dict) -> dict[str, str]:
    """The hash of every block schema a horizontal federation uses: the project's and its nodes' own."""
    local = federation_local_blocks(fed)
    return {str(b): block_schema(str(b), local).sha256 for b in fed["blocks"]}


@dataclass(frozen=True)
class RunDir:
    """One run's directory on the lab's machine."""

    path: Path

    @property
    def proposal_file(self) -> Path:
        return self.path / "proposal.json"

    @property
    def launch_file(self) -> Path:
        return self.path / "launch.json"

    def launch(self) -> dict[str, Any]:
        try:
            return json.loads(self.launch_file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{self.launch_file}: missing; no run was proposed under this name "
                              "(`pulse-twin run propose` or `run start` with overrides)") from None
        except ValueError:
            raise ConfigError(f"{self.launch_file}: not valid JSON") from None

    def write_launch(self, data: dict[str, Any]) -> None:
        self.launch_file.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def run_dir(runs_dir: Path, run_name: str) -> RunDir:
    return RunDir((Path(runs_dir) / run_name).resolve())


def compose_run(overrides: list[str], run_name: str | None) -> tuple[RunDir, dict]:
    """The run's configuration and its directory (named `<federation>-<time>` unless `run_name` says)."""
    cfg = to_container(compose("config", overrides))
    fed = cfg["federation"]
    name = run_name or f"{fed['name']}-{time.strftime('%Y%m%d-%H%M%S')}"
    return run_dir(Path(cfg["runs_dir"]), name), cfg


def propose(overrides: list[str], run_name: str | None,
            composed: tuple[RunDir, dict] | None = None) -> tuple[RunDir, RunProposal, dict]:
    """Compose the configuration (unless `composed` by `compose_run` from the same overrides), write the run's
    proposal and launch file; an existing proposal of the same name must be for the same configuration (a changed
    run needs a new name and a new approval)."""
    rd, cfg = composed or compose_run(overrides, run_name)
    fed, name = cfg["federation"], rd.path.name
    rd.path.mkdir(parents=True, exist_ok=True)
    proposal = proposal_for(cfg, name)
    absolute = [value_override("federation.data_root", Path(fed["data_root"]).resolve()),
                value_override("runs_dir", Path(cfg["runs_dir"]).resolve())]
    if rd.proposal_file.is_file():
        earlier = RunProposal.load(rd.proposal_file)
        if earlier.sha256() != proposal.sha256():
            raise ConfigError(f"{rd.proposal_file}: run '{name}' was proposed with other code or privacy parameters; "
                              "a changed run needs a new --run-name (and the nodes' approval of its proposal)")
    else:
        proposal.save(rd.proposal_file)
    if not rd.launch_file.is_file():
        rd.write_launch({"overrides": layered(overrides, absolute), "proposal_sha256": proposal.sha256()})
    return rd, proposal, cfg


def start(coordinator: Coordinator, rd: RunDir, timeout: float = 120, extra: dict[str, str] | None = None,
          app_dir: Path | None = None, resume: bool = False) -> int:
    """Submit the proposed run to the SuperLink (the app bundle built from `app_dir`, by default the app this
    process runs: the checkout, or a copy laid out from the installed wheel); returns Flower's run
    id (kept in launch.json). `resume`: start the same approved run again after it failed or was stopped; a
    horizontal run continues after its last completed round."""
    launch = rd.launch()
    if launch.get("flower_run_id"):
        if not resume:
            raise ConfigError(f"run '{rd.path.name}' was already started (SuperLink run {launch['flower_run_id']}); "
                              "see `pulse-twin run status`, or continue a failed or stopped run with --resume")
        state = read_status(rd.path).get("state", "missing")
        if state in ("running", "completed", "completed-with-refusals"):
            raise ConfigError(f"run '{rd.path.name}' is {state} (its status.json); only a failed or stopped run is "
                              "resumed")
        update_status(rd.path, state="pending", error=None)   # not the failed attempt's outcome
    config = {OVERRIDES: encode(launch["overrides"]), "run-name": rd.path.name, "run-dir": str(rd.path),
              PROPOSAL_KEY: launch["proposal_sha256"], **({"resume": "true"} if resume else {}), **(extra or {})}
    run_config = write_toml(rd.path / RUN_CONFIG_FILE, config)
    with running_app_dir() if app_dir is None else nullcontext(app_dir) as app_root:
        out = coordinator.flwr(["run", str(app_root), CONNECTION, "--run-config", str(run_config), "--format", "json"],
                               timeout)
    try:
        answer = json.loads(out.stdout)
        run_id = int(answer["run-id"])
    except (ValueError, KeyError, TypeError):
        raise CoordinatorError(f"`flwr run` did not start the run: {(out.stdout + out.stderr).strip()[-600:]}") from None
    earlier = [*launch.get("earlier_flower_run_ids", []), launch["flower_run_id"]] if launch.get("flower_run_id") else []
    rd.write_launch({**launch, "flower_run_id": run_id, "earlier_flower_run_ids": earlier,
                     "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    return run_id


def flower_status(coordinator: Coordinator, run_id: int, timeout: float = 60) -> str:
    """Flower's status of the run ("running", "finished:completed", "finished:failed", ...), or "unknown"."""
    out = coordinator.flwr(["ls", CONNECTION, "--run-id", str(run_id), "--format", "json"], timeout)
    try:
        runs = json.loads(out.stdout).get("runs", [])
        return str(runs[0]["status"]) if runs else "unknown"
    except (ValueError, KeyError, TypeError, AttributeError):
        return "unknown"


def status(coordinator: Coordinator | None, rd: RunDir) -> dict[str, Any]:
    """The run's state from its own status file and from Flower, and the exit code it means."""
    launch = rd.launch()
    run_id = launch.get("flower_run_id")
    # Flower first: once it says finished, the ServerApp has written its last status.
    flower = flower_status(coordinator, int(run_id)) if coordinator is not None and run_id else "unknown"
    own = read_status(rd.path)
    state = own.get("state", "missing")
    if state in ("running", "missing", "pending") and flower.startswith("finished"):
        # The ServerApp was stopped or killed before it could write its outcome.
        state = "stopped" if "stopped" in flower else "failed"
        own = {**own, "error": own.get("error") or f"Flower reports the run {flower} without a status from the ServerApp"}
    elif state == "missing" and run_id:
        state = "pending"
    code = {"completed": EXIT_COMPLETED, "completed-with-refusals": EXIT_REFUSED, "refused": EXIT_REFUSED,
            "running": EXIT_RUNNING, "pending": EXIT_RUNNING}.get(state, EXIT_FAILED)
    return {"run": rd.path.name, "run_dir": str(rd.path), "state": state, "flower_run_id": run_id,
            "flower_status": flower, "exit_code": code, "error": own.get("error"), "refusals": own.get("refusals", []),
            "lost_nodes": own.get("lost_nodes", {}),
            "elapsed_s": own.get("elapsed_s"), "proposal_sha256": launch.get("proposal_sha256")}


def outcome_lines(now: dict[str, Any]) -> list[str]:
    """The refusals and lost nodes of a run's status, one line each, for the operator."""
    return ([f"  round {r['round']}: node {r['node']} refused: {r['reason']}" for r in now.get("refusals", [])]
            + [f"  node {name} lost in {when}; the run went on without it"
               for name, when in (now.get("lost_nodes") or {}).items()])


def wait(coordinator: Coordinator, rd: RunDir, timeout: float, show: Callable[[str], None],
         poll_s: float = 0.5, superlink_lost: Callable[[], str | None] | None = None,
         flower_every_s: float = FLOWER_CHECK_S) -> dict[str, Any]:
    """Follow the run's progress lines until it is no longer running; RunFailed after `timeout` seconds, or
    as soon as `superlink_lost` says why the SuperLink is gone (the run is then marked failed, resumable).

    The run's own status file is read every `poll_s`: the ServerApp writes its outcome there last. Flower is asked
    (`flwr ls`, a process of about a CPU second) only every `flower_every_s`, for a ServerApp that died without
    writing one; asking every poll took a core of a 2-core machine away from the run it watched."""
    deadline = time.monotonic() + timeout
    asked = time.monotonic()
    shown = 0
    while True:
        why = superlink_lost() if superlink_lost is not None else None
        if why:
            raise RunFailed(mark_lost(rd, why))
        ask = time.monotonic() - asked >= flower_every_s
        now = status(coordinator if ask else None, rd)
        if ask:
            asked = time.monotonic()
        lines = progress_lines(rd)
        for line in lines[shown:]:
            show(line)
        shown = len(lines)
        if now["exit_code"] != EXIT_RUNNING:
            return now
        if time.monotonic() > deadline:
            raise RunFailed(f"run '{rd.path.name}' did not finish within {timeout:.0f} s (it may still be running: "
                            f"`pulse-twin run stop {rd.path.name}`)")
        time.sleep(poll_s)


def mark_lost(rd: RunDir, why: str) -> str:
    """Record in the run's status that the SuperLink went away mid-run; returns what to tell the operator."""
    rounds = rd.path / "rounds.json"
    done = len(json.loads(rounds.read_text())) if rounds.is_file() else 0
    error = (f"{why}: the run stopped after {done} completed round(s). Start it again with --resume to continue "
             f"from round {done + 1} (nodes re-send, at no charge, an update they already released)")
    update_status(rd.path, state="failed", error=error)
    return error


def progress_lines(rd: RunDir) -> list[str]:
    """The run's progress as the ServerApp reported it (`progress.log` in the run directory)."""
    path = rd.path / "progress.log"
    return path.read_text(encoding="utf-8", errors="replace").splitlines() if path.is_file() else []


def stop(coordinator: Coordinator, rd: RunDir, timeout: float = 60) -> str:
    run_id = rd.launch().get("flower_run_id")
    if not run_id:
        raise ConfigError(f"run '{rd.path.name}' was never started; nothing to stop")
    out = coordinator.flwr(["stop", str(run_id), CONNECTION, "--format", "json"], timeout)
    if out.returncode != 0:
        raise CoordinatorError(f"`flwr stop {run_id}` failed: {(out.stdout + out.stderr).strip()[-400:]}")
    return out.stdout.strip()


def logs(coordinator: Coordinator, rd: RunDir, follow: bool, timeout: float) -> str:
    """Flower's log of the run (the ServerApp's output), once or until it ends."""
    run_id = rd.launch().get("flower_run_id")
    if not run_id:
        raise ConfigError(f"run '{rd.path.name}' was never started; it has no log")
    out = coordinator.flwr(["log", str(run_id), CONNECTION, "--stream" if follow else "--show"], timeout)
    return out.stdout + out.stderr
