"""A city node's part in horizontal federated learning: one DP-SGD round on its own rows.

The reply carries the DP model update, the number of examples, the epsilon this run has spent on the
node and, if the run asks for it, a noised training loss (itself a charged Gaussian release). Nothing
else computed on private rows leaves. The noise multiplier is calibrated once, in the node's first
round of the run, for the whole planned schedule (rounds x local steps) and kept on the node's disk.

Each round is released once. The update is kept on the node's disk with the digest of the global model it
was trained from, so when a re-launched run (the coordinator lost its SuperLink) asks for a round again
from the same global model, the node re-sends the same bytes at no charge; from another model it refuses.
"""
from __future__ import annotations

import os
import threading
import warnings
from pathlib import Path

import numpy as np
import torch
from flwr.app import Context, Message, MetricRecord, RecordDict

from clients.node import Node, keep_accountant, recall_accountant, run_key, send
from dp_accounting import Release, get_accountant
from dp_accounting.calibrate import run_noise_multiplier
from clients.dp_sgd import DPSGDConfig, dp_train, secure_normal, secure_uniform
from federation.units import steps_per_round, too_small_text
from clients.egress import EgressGuard, payload_digest
from clients.site_policy import RuleRefusal, SitePolicy
from federation import profile
from federation.errors import ConfigError
from federation.messages import DPSettings, TaskSettings, from_config
from federation.units import ROW_UNIT
from federation.model import build_model, pack, unpack
from federation.task import predict

UNIT = ROW_UNIT
LOSS_CLIP = 4.0  # per-row squared error (scaled label units) is clipped here before the noised sum


def train(msg: Message, context: Context) -> Message:
    node = Node.from_context(context)
    config = msg.content["config"]
    task, dp = from_config(TaskSettings, config), from_config(DPSettings, config)
    rnd = int(config["server-round"])
    run_id = run_key(task.run_name, context)
    guard = EgressGuard.open(node.node_dir)
    recall_accountant(context)
    with profile.span("features"):
        ex = node.training_examples(task)
    if len(ex) < dp.min_rows:
        raise ConfigError(too_small_text(node.name, len(ex), dp.min_rows, dp.sample_rate))
    q = dp.sample_rate
    steps = steps_per_round(q, dp.local_epochs)
    accountant = guard.policy.privacy.accountant
    # The run's delta is the node's own (site policy), whatever the coordinator proposed.
    delta = min(dp.delta, guard.policy.privacy.delta)
    plan = node.run_plan(run_id, lambda: {
        "noise_multiplier": planned_noise(task, dp, guard.policy),
        "sample_rate": q, "steps_per_round": steps, "rounds": dp.num_rounds,
        "target_epsilon": dp.target_epsilon, "delta": delta, "accountant": accountant,
    })
    sigma = float(plan["noise_multiplier"])
    params = {"noise_multiplier": sigma, "sample_rate": q, "rounds": dp.num_rounds}
    received = payload_digest(RecordDict({"arrays": msg.content["arrays"]}))[0]
    ledger = node.charge_ledger(task, guard)   # a dry run's own ledger, never the node's real one
    past = ledger.history(run_id=run_id)   # nothing of this run is charged until `send` below
    released = any(r.round == rnd for r in past)
    kept = _kept_reply(node.reply_path(run_id, rnd), received) if released else None
    if kept is not None:
        return send(msg, kept, guard, run_id=run_id, round=rnd, run_kind="horizontal", rows=len(ex), params=params,
                    kind="dry-run-update" if task.dry_run else "dp-model-update-resent")
    if rnd > int(plan["rounds"]) or released:
        raise RuleRefusal("planned_schedule", f"round {rnd} is not one of the {plan['rounds']} rounds, each "
                          f"released once (and re-sent only from the same global model), that run {run_id}'s "
                          "noise was calibrated for", where="rule")
    update = Release(mechanism="subsampled_gaussian", noise_multiplier=sigma, sample_rate=q, steps=steps,
                     unit=UNIT, run_id=run_id, round=rnd, kind="horizontal-update")
    charges = [update]
    if dp.loss_noise_multiplier > 0:
        charges.append(Release(mechanism="subsampled_gaussian", noise_multiplier=dp.loss_noise_multiplier,
                               sample_rate=q, steps=1, unit=UNIT, run_id=run_id, round=rnd,
                               kind="horizontal-loss"))

    model = build_model(task.model_spec())
    model.load_state_dict(unpack(msg.content["arrays"], model))
    global_params = [p.detach().clone() for p in model.parameters()]
    with warnings.catch_warnings(), profile.span("training"):
        warnings.filterwarnings("ignore", message="Full backward hook is firing")
        outcome = dp_train(model, ex, DPSGDConfig(
            noise_multiplier=sigma, max_grad_norm=dp.max_grad_norm, sample_rate=q,
            local_epochs=dp.local_epochs, lr=dp.lr, momentum=dp.momentum,
            proximal_mu=float(config.get("proximal-mu", 0.0)), block_dropout=dp.block_dropout,
        ), global_params=global_params)
    assert outcome.steps == steps and outcome.sample_rate == q

    metrics: dict[str, float | int] = {"num-examples": len(ex)}
    if dp.loss_noise_multiplier > 0:
        metrics["train-loss-dp"] = _noised_mean_loss(model, ex, q, dp.loss_noise_multiplier)
    # The run's epsilon on this node once this reply is out: computed from the ledger's history.
    history = past + charges
    with profile.span("accountant"):
        metrics["epsilon"] = get_accountant(accountant).epsilon(history, float(plan["delta"]))
    content = RecordDict({"arrays": pack(model.state_dict()), "metrics": MetricRecord(metrics)})
    _keep_reply(node.reply_path(run_id, rnd), received, model.state_dict(), metrics)
    keep_accountant(context, history)
    if task.dry_run:   # trained on the synthetic twin: logged as it leaves, charged only on the dry-run ledger
        reply = send(msg, content, guard, run_id=run_id, round=rnd, kind="dry-run-update", run_kind="horizontal",
                     rows=len(ex), params=params)
        ledger.record_many(charges)
        return reply
    return send(msg, content, guard, run_id=run_id, round=rnd, kind="dp-model-update", run_kind="horizontal",
                charges=charges, rows=len(ex), params=params)


def planned_noise(task: TaskSettings, dp: DPSettings, policy: SitePolicy) -> float:
    """The noise multiplier this node calibrates for the run's whole schedule, at its own delta and accountant."""
    q = dp.sample_rate
    with profile.span("calibration"):
        return run_noise_multiplier(dp.target_epsilon, min(dp.delta, policy.privacy.delta), q,
                                    steps_per_round(q, dp.local_epochs), dp.num_rounds, dp.loss_noise_multiplier,
                                    dp.eval_noise_multiplier if task.holdout_fold >= 0 else 0.0,
                                    policy.privacy.accountant)


def warm_up(task: TaskSettings, dp: DPSettings, policy: SitePolicy) -> None:
    """Calibrate the run's noise in the background (the `describe` exchange comes before round 1), so that round
    1 finds it computed (`run_noise_multiplier` keeps it for the process). Nothing is decided or charged here:
    round 1 still calibrates, checks and charges as always; an error here is left for round 1 to meet."""
    def calibrate() -> None:
        try:
            planned_noise(task, dp, policy)
        except Exception:  # noqa: BLE001 - round 1 computes it again and reports what is wrong
            return

    threading.Thread(target=calibrate, name="pulse-twin-calibrate", daemon=True).start()


def _keep_reply(path: Path, received: str, state: dict, metrics: dict) -> None:
    """Keep a round's update (written before it is released, so a crash after the release still finds it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({"received": received, "state_dict": state, "metrics": metrics}, tmp)
    os.replace(tmp, path)


def _kept_reply(path: Path, received: str) -> RecordDict | None:
    """The kept update of a round if it was trained from the global model with digest `received`."""
    try:
        kept = torch.load(path, weights_only=True)
    except (FileNotFoundError, RuntimeError, OSError, EOFError):
        return None
    if kept.get("received") != received:
        return None
    return RecordDict({"arrays": pack(kept["state_dict"]), "metrics": MetricRecord(kept["metrics"])})


def _noised_mean_loss(model, ex, q: float, sigma: float) -> float:
    """Squared error on a Poisson sample (rate q) of the node's rows: the clipped sum gets Gaussian
    noise (sensitivity LOSS_CLIP for adding or removing one row) and is divided by the expected
    sample size, so the release is one subsampled Gaussian step, charged like a training step."""
    sampled = secure_uniform(len(ex)) < q
    pred = predict(model, ex.subset(sampled))
    clipped = np.minimum((pred - ex.y[sampled]) ** 2, LOSS_CLIP)
    noisy = float(clipped.sum()) + float(secure_normal(1, sigma * LOSS_CLIP)[0])
    return max(0.0, noisy) / (q * len(ex))

