"""The coordinator's horizontal run: cities train the shared model with DP-SGD; the strategy averages.

Per round it shows the noised loss and each node's epsilon, records refusals with the rule the node
named, and names a node that crashed or went offline (Flower reports it after its heartbeats stop, about
a minute); the run goes on while `min_nodes` nodes contribute and fails naming the nodes otherwise. At the
end each reachable node's privacy report, recomputed from its own ledger, goes into the run directory.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from flwr.app import ArrayRecord, ConfigRecord, Message, RecordDict
from flwr.serverapp import Grid

from dp_accounting.calibrate import run_noise_multiplier
from federation.blocks import federation_local_blocks, schemas_json
from federation.units import min_rows_for_dp_sgd, steps_per_round, too_small_text
from federation.errors import ConfigError
from federation.messages import DPSettings, TaskSettings, to_config
from federation.model import build_model, pack, unpack
from server.quality import LIST_NODES_UP_TO, Evaluator, epsilon_summary
from server.queries import NodeRefused, RunFailed, ask, content_or_fail, is_refusal
from server.run_record import RunRecord
from server.small_nodes import collect as collect_released
from server.strategies import NodesView, make_strategy, reply_metrics, wait_for_nodes


@dataclass(frozen=True)
class Schedule:
    """The DP-SGD schedule a horizontal run proposes: the same sample rate and noise on every node."""

    sample_rate: float
    steps_per_round: int
    noise_multiplier: float
    min_rows: int


def schedule(cfg: dict[str, Any]) -> Schedule:
    """Sample rate, steps and noise from the run's configuration, and the fewest rows DP-SGD needs at them
    (`local.min_signal_to_noise` rows of expected batch per unit of noise multiplier)."""
    dp, local = cfg["dp"], cfg["local"]
    q = float(local["sample_rate"])
    if not 0 < q < 1:
        raise ConfigError(f"local.sample_rate: {q!r} is not a Poisson sampling rate in (0, 1)")
    steps = steps_per_round(q, float(local["local_epochs"]))
    rounds = int(local["rounds"])
    held_out = float(dp["eval_noise_multiplier"]) if int(cfg.get("holdout_fold", -1)) >= 0 else 0.0
    # the target covers the whole run: its updates, its noised losses and its held-out sums
    sigma = run_noise_multiplier(float(dp["target_epsilon"]), float(dp["delta"]), q, steps, rounds,
                                 float(dp["loss_noise_multiplier"]), held_out)
    return Schedule(q, steps, sigma, min_rows_for_dp_sgd(q, sigma, float(local["min_signal_to_noise"])))


def dry_run(cfg: dict[str, Any]) -> bool:
    """Whether the run is a dry run on the nodes' synthetic twins (horizontal runs only)."""
    value = cfg.get("dry_run", False)
    if not isinstance(value, bool):
        raise ConfigError(f"dry_run: {value!r} is not true or false")
    if value and cfg["federation"]["topology"] != "horizontal":
        raise ConfigError(f"dry_run: only a horizontal run has a dry run; federation '{cfg['federation']['name']}' "
                          f"is {cfg['federation']['topology']}")
    return value


def settings(cfg: dict[str, Any], run_name: str) -> tuple[TaskSettings, DPSettings]:
    fed, model, dp, local = cfg["federation"], cfg["model"], cfg["dp"], cfg["local"]
    plan = schedule(cfg)
    task = TaskSettings.from_config(
        run_name, tuple(fed["blocks"]), fed["label"], model, holdout_fold=int(cfg.get("holdout_fold", -1)),
        folds=int(cfg["folds"]), split_seed=int(cfg["seed"]),
        block_schemas=schemas_json(federation_local_blocks(fed)), dry_run=dry_run(cfg),
    )
    dps = DPSettings(
        target_epsilon=float(dp["target_epsilon"]), delta=float(dp["delta"]), num_rounds=int(local["rounds"]),
        max_grad_norm=float(dp["max_grad_norm"]), sample_rate=plan.sample_rate, min_rows=plan.min_rows,
        eval_noise_multiplier=float(dp["eval_noise_multiplier"]),
        local_epochs=float(local["local_epochs"]), lr=float(local["lr"]), momentum=float(local["momentum"]),
        block_dropout=float(local["block_dropout"]), loss_noise_multiplier=float(dp["loss_noise_multiplier"]),
    )
    return task, dps


def run_horizontal(grid: Grid, cfg: dict[str, Any], record: RunRecord, run_name: str,
                   resume: bool = False) -> dict[str, Any]:
    """Run the rounds (after the run's checkpoint if `resume`), then collect each node's privacy report."""
    task, dp = settings(cfg, run_name)
    n_nodes = len(cfg["federation"]["nodes"])
    need = min_nodes(cfg, n_nodes)
    timeout = float(cfg["reply_timeout_s"])
    node_ids = wait_for_nodes(grid, n_nodes, float(cfg["node_wait_s"]))
    hello = RecordDict({"config": ConfigRecord({**to_config(task, dp), "run-kind": "horizontal"})})
    described = content_or_fail(ask(grid, node_ids, "describe", hello, timeout), {}, "describe")
    names = {n: str(c["node"]["name"]) for n, c in described.items()}
    if task.dry_run:
        record.say(f"{DRY_RUN}: every node trains and evaluates on a synthetic twin of its rows (same schema, keys and "
                   "row count, made-up values); nothing is charged on any node's real ledger, and the epsilons shown "
                   "are what the run would spend (from each node's dry-run ledger)")
    small = {n: names[n] for n in node_ids if described[n]["node"].get("role") == "release"}
    for line in blocks_summary({names[n]: str(described[n]["node"]["blocks"]) for n in node_ids}):
        record.say(line)
    for n, name in small.items():   # said once here, never per round
        record.say(too_small_text(name, int(described[n]["node"]["rows"]), dp.min_rows, dp.sample_rate))
    trainers = [n for n in node_ids if n not in small]
    if not trainers:
        raise RunFailed(f"no node has the {dp.min_rows} rows DP-SGD needs at this run's privacy (sample rate "
                        f"{dp.sample_rate:g}); lower local.min_signal_to_noise, raise the sample rate or epsilon, or "
                        "run the federation as analytics on the nodes' releases")
    need = min(need, len(trainers))
    refusals: list[dict[str, Any]] = []
    lost: dict[str, str] = {}
    if task.dry_run and small:   # a release is of the node's real records: never made in a dry run
        record.say(f"{DRY_RUN}: {', '.join(small.values())} would take part through a person-level DP release; "
                   "skipped (it would be charged)")
    released = collect_released(grid, {} if task.dry_run else small, task, dp, cfg, record, refusals)
    evaluator = Evaluator(grid, names, task, dp, cfg, record)

    def observe(rnd: int, replies: list[Message]) -> None:
        nodes, ok, refused_now, failed_now = {}, [], [], []
        for reply in replies:
            name = names.get(reply.metadata.src_node_id, str(reply.metadata.src_node_id))
            if is_refusal(reply):
                nodes[name] = {"refused": reply.error.reason}
                refused_now.append({"round": rnd, "node": name, "reason": reply.error.reason})
                record.say(f"round {rnd}: node {name} REFUSED: {reply.error.reason}")
            elif reply.has_error():
                nodes[name] = {"failed": reply.error.reason}
                failed_now.append(f"{name}: {reply.error.reason}")
                lost.setdefault(name, f"round {rnd}: {reply.error.reason}")
                record.say(f"round {rnd}: node {name} FAILED (no update; not a refusal): {reply.error.reason}")
            else:
                nodes[name] = reply_metrics(reply)
                ok.append(nodes[name])
                lost.pop(name, None)    # back after a failure
        refusals.extend(refused_now)
        for node_id, name in names.items():
            if node_id in trainers and name not in nodes and name not in lost:
                nodes[name] = {"failed": "no reply within the round's timeout"}
                failed_now.append(f"{name}: no reply within {timeout:.0f} s")
                lost[name] = f"round {rnd}: no reply within {timeout:.0f} s"
                record.say(f"round {rnd}: node {name} sent no reply within {timeout:.0f} s")
        if len(ok) < need:
            record.add_round({"round": rnd, "nodes": nodes})
            why = "; ".join([f"{r['node']}: {r['reason']}" for r in refused_now] + failed_now)
            if refused_now and not failed_now and not ok:
                raise NodeRefused(f"round {rnd}: every node refused ({why})", refusals)
            raise RunFailed(f"round {rnd}: {len(ok)} of {n_nodes} nodes sent an update, the run needs {need} "
                            f"(min_nodes) ({why})")
        rows = sum(m["num-examples"] for m in ok)
        loss = (sum(m.get("train-loss-dp", 0.0) * m["num-examples"] for m in ok) / rows
                if all("train-loss-dp" in m for m in ok) else None)
        record.add_round({"round": rnd, "train_loss_dp": loss, "nodes": nodes})
        eps = epsilon_summary(nodes)
        shown = f"{loss:.4f}" if loss is not None else "n/a"
        record.say(f"round {rnd}/{dp.num_rounds}: loss (DP) {shown} | epsilon per node: {eps}"
                   + (f" ({DRY_RUN}: not charged)" if task.dry_run else ""))

    strategy = make_strategy(cfg["strategy"]["name"], cfg["strategy"]["params"], need, observe,
                             float(cfg["node_wait_s"]))

    def round_done(rnd: int, arrays: ArrayRecord) -> None:
        record.checkpoint(rnd, unpack(arrays, model))
        online = set(grid.get_node_ids())
        evaluator.round(rnd, arrays, [n for n in node_ids if n in online and names[n] not in lost])

    strategy.round_done = round_done
    strategy.extra_reply = released.reply
    model = build_model(task.model_spec(), seed=int(cfg["seed"]))
    state = model.state_dict()
    done = 0
    if resume:
        kept = record.resume()
        if kept is None:
            record.say("no completed round to resume from: starting at round 1")
        else:
            done, state = kept
            record.say(f"resuming after round {done} of {dp.num_rounds} (the run's checkpoint)")
    strategy.round_offset = done
    if done < dp.num_rounds:
        result = strategy.start(grid=NodesView(grid, trainers), initial_arrays=pack(state),
                                num_rounds=dp.num_rounds - done,
                                timeout=timeout, train_config=to_config(task, dp))
        state = unpack(result.arrays, model)
    record.model(state, {"blocks": list(task.blocks), "block_schemas": task.block_schemas, **cfg["model"]})
    quality = evaluator.summary()
    if task.dry_run:
        record.say(f"{DRY_RUN}: trained on synthetic twins; nothing was charged on any node's real ledger")
    online = set(grid.get_node_ids())
    reachable = [n for n in node_ids if n in online and names[n] not in lost]
    reports = content_or_fail(ask(grid, reachable, "privacy", hello, timeout), names, "privacy")
    for n, content in reports.items():
        record.privacy(names[n], json.loads(str(content["privacy"]["report"])))
    for name, when in lost.items():
        record.say(f"node {name} was lost ({when}); its privacy report is in its own `pulse-twin node audit`")
    return {"refusals": refusals, "rounds": len(record.rounds), "nodes": sorted(names.values()), "lost_nodes": lost,
            "released_nodes": sorted(small.values()), "heldout_r2_dp": quality.get("final_r2_dp"),
            "pooled_yardstick_r2": quality.get("pooled_yardstick_r2"), "dry_run": task.dry_run}


DRY_RUN = "DRY RUN"


def blocks_summary(blocks: dict[str, str]) -> list[str]:
    """Which blocks each node has: a line per node for a few nodes; for many, a line per set of blocks with
    how many nodes hold it (named when there are few)."""
    blocks = {name: have or "(none)" for name, have in blocks.items()}
    if len(blocks) <= LIST_NODES_UP_TO:
        return [f"node {name}: blocks {have}" for name, have in blocks.items()]
    lines = []
    for have in sorted(set(blocks.values())):
        holders = sorted(name for name, b in blocks.items() if b == have)
        lines.append(f"{len(holders)} nodes: blocks {have}" + (f" ({', '.join(holders)})" if len(holders) <= 5 else ""))
    return lines


def min_nodes(cfg: dict[str, Any], n_nodes: int) -> int:
    """How many nodes must send an update for a round to count (`min_nodes`, at most the federation's size)."""
    value = cfg.get("min_nodes", 1)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= n_nodes:
        raise ConfigError(f"min_nodes: {value!r} is not a whole number from 1 to the federation's {n_nodes} nodes")
    return value
