"""A city node's held-out evaluation of the global model in a horizontal run: noised sums, charged.

The node predicts its held-out areas (the run's `holdout_fold`, never trained on) and releases the four
clipped sums of `federation.heldout` with Gaussian noise from the secure sampler, through its egress guard,
which charges the release to the node's ledger. Nothing un-noised about its rows leaves. The reply also
carries the run's epsilon on this node, recomputed by the accountant from the ledger's history.
"""
from __future__ import annotations

from flwr.app import Context, Message, MetricRecord, RecordDict

from clients.node import Node, run_key, send
from dp_accounting import get_accountant
from federation import heldout
from clients.dp_sgd import secure_normal
from clients.egress import EgressGuard
from federation.errors import ConfigError
from federation.messages import DPSettings, TaskSettings, from_config
from federation.model import build_model, unpack
from federation.task import predict


def evaluate(msg: Message, context: Context) -> Message:
    node = Node.from_context(context)
    config = msg.content["config"]
    task, dp = from_config(TaskSettings, config), from_config(DPSettings, config)
    if dp.eval_noise_multiplier <= 0:
        raise ConfigError("the run asks for no held-out evaluation (eval-noise-multiplier is 0)")
    rnd = int(config["server-round"])
    run_id = run_key(task.run_name, context)
    guard = EgressGuard.open(node.node_dir)
    ex = node.heldout_examples(task)
    model = build_model(task.model_spec())
    model.load_state_dict(unpack(msg.content["arrays"], model))
    exact = heldout.sums(predict(model, ex), ex.y) if len(ex) else heldout.sums(ex.y[:0], ex.y[:0])
    sigma = dp.eval_noise_multiplier
    noisy = heldout.noised(exact, secure_normal(len(exact), 1.0), sigma)
    charge = heldout.release(sigma, run_id, rnd)
    p = guard.policy.privacy
    delta = min(dp.delta, p.delta)
    ledger = node.charge_ledger(task, guard)   # a dry run's own ledger, never the node's real one
    epsilon = get_accountant(p.accountant).epsilon(ledger.history(run_id=run_id) + [charge], delta)
    metrics = {name: float(v) for name, v in zip(heldout.FIELDS, noisy)}
    metrics["epsilon"] = epsilon
    content = RecordDict({"metrics": MetricRecord(metrics)})
    if task.dry_run:   # sums of the synthetic twin: logged as they leave, charged only on the dry-run ledger
        reply = send(msg, content, guard, run_id=run_id, round=rnd, kind="dry-run-heldout-sums",
                     run_kind="horizontal", rows=len(ex), params={"noise_multiplier": sigma})
        ledger.record_many([charge])
        return reply
    return send(msg, content, guard, run_id=run_id, round=rnd, kind="dp-heldout-sums", run_kind="horizontal",
                charges=[charge], rows=len(ex), params={"noise_multiplier": sigma})

