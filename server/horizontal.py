"""The coordinator's horizontal run: cities train the shared model with DP-SGD; the strategy averages.

Per round it shows the noised loss and each node's epsilon, records refusals with the rule the node
named, and fails the run when no node could contribute. At the end each node's privacy report,
recomputed from its own ledger, goes into the run directory.
"""
from __future__ import annotations

import json
from typing import Any

from flwr.app import ArrayRecord, Message
from flwr.serverapp import Grid

from federation.messages import DPSettings, TaskSettings, to_config
from federation.model import build_model
from server.queries import NodeRefused, RunFailed, ask, config_content, content_or_fail, is_refusal
from server.run_record import RunRecord
from server.strategies import make_strategy, reply_metrics, wait_for_nodes


def settings(cfg: dict[str, Any], run_name: str) -> tuple[TaskSettings, DPSettings]:
    fed, model, dp, local = cfg["federation"], cfg["model"], cfg["dp"], cfg["local"]
    task = TaskSettings(
        run_name=run_name, blocks=tuple(fed["blocks"]), label_center=float(fed["label"]["center"]),
        label_scale=float(fed["label"]["scale"]), label_shift=int(fed["label"]["shift"]),
        embed_dim=int(model["embed_dim"]), hidden=int(model["hidden"]), head_hidden=int(model["head_hidden"]),
        holdout_fold=int(cfg.get("holdout_fold", -1)), folds=int(cfg["folds"]), split_seed=int(cfg["seed"]),
    )
    dps = DPSettings(
        target_epsilon=float(dp["target_epsilon"]), delta=float(dp["delta"]), num_rounds=int(local["rounds"]),
        max_grad_norm=float(dp["max_grad_norm"]), batch_size=int(local["batch_size"]),
        local_epochs=float(local["local_epochs"]), lr=float(local["lr"]), momentum=float(local["momentum"]),
        block_dropout=float(local["block_dropout"]), loss_noise_multiplier=float(dp["loss_noise_multiplier"]),
    )
    return task, dps


def run_horizontal(grid: Grid, cfg: dict[str, Any], record: RunRecord, run_name: str) -> dict[str, Any]:
    task, dp = settings(cfg, run_name)
    n_nodes = len(cfg["federation"]["nodes"])
    timeout = float(cfg["reply_timeout_s"])
    node_ids = wait_for_nodes(grid, n_nodes, float(cfg["node_wait_s"]))
    hello = config_content(**{"run-name": run_name, "blocks": ",".join(task.blocks), "run-kind": "horizontal"})
    described = content_or_fail(ask(grid, node_ids, "describe", hello, timeout), {}, "describe")
    names = {n: str(c["node"]["name"]) for n, c in described.items()}
    for n in node_ids:
        record.say(f"node {names[n]}: blocks {described[n]['node']['blocks'] or '(none)'}")
    refusals: list[dict[str, Any]] = []

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
                record.say(f"round {rnd}: node {name} FAILED (no update; not a refusal): {reply.error.reason}")
            else:
                nodes[name] = reply_metrics(reply)
                ok.append(nodes[name])
        refusals.extend(refused_now)
        for node_id, name in names.items():
            if name not in nodes:
                nodes[name] = {"failed": "no reply within the round's timeout"}
                failed_now.append(f"{name}: no reply within {timeout:.0f} s")
                record.say(f"round {rnd}: node {name} sent no reply within {timeout:.0f} s")
        if not ok:
            record.add_round({"round": rnd, "nodes": nodes})
            why = "; ".join([f"{r['node']}: {r['reason']}" for r in refused_now] + failed_now)
            if refused_now and not failed_now:
                raise NodeRefused(f"round {rnd}: every node refused ({why})", refusals)
            raise RunFailed(f"round {rnd}: no node sent an update ({why})")
        rows = sum(m["num-examples"] for m in ok)
        loss = (sum(m.get("train-loss-dp", 0.0) * m["num-examples"] for m in ok) / rows
                if all("train-loss-dp" in m for m in ok) else None)
        record.add_round({"round": rnd, "train_loss_dp": loss, "nodes": nodes})
        eps = ", ".join(f"{k} {v['epsilon']:.2f}" if "epsilon" in v else f"{k} refused" for k, v in nodes.items())
        shown = f"{loss:.4f}" if loss is not None else "n/a"
        record.say(f"round {rnd}/{dp.num_rounds}: loss (DP) {shown} | epsilon per node: {eps}")

    strategy = make_strategy(cfg["strategy"]["name"], cfg["strategy"]["params"], n_nodes, observe,
                             float(cfg["node_wait_s"]))
    model = build_model(task.model_spec(), seed=int(cfg["seed"]))
    result = strategy.start(grid=grid, initial_arrays=ArrayRecord(model.state_dict()), num_rounds=dp.num_rounds,
                            timeout=timeout, train_config=to_config(task, dp))
    record.model(result.arrays.to_torch_state_dict(), {"blocks": list(task.blocks), **cfg["model"]})
    reports = content_or_fail(ask(grid, node_ids, "privacy", hello, timeout), names, "privacy")
    for n, content in reports.items():
        record.privacy(names[n], json.loads(str(content["privacy"]["report"])))
    return {"refusals": refusals, "rounds": len(record.rounds), "nodes": sorted(names.values())}
