"""Nodes too small for DP-SGD in a horizontal run take part through their person-level DP release.

A node whose rows fall below the run's minimum (stated in the proposal, said once at approval) does not
train. The coordinator asks it once for the same release a vertical partner makes (`clients.release`:
bounded contributions, Gaussian noise per private table, kept and re-used by later runs), with its label,
and from then on everything is post-processing: each round the coordinator trains a copy of the global
model on the released rows (held-out areas left out) and adds it to the average like a node's update,
weighted by its rows.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict
from flwr.serverapp import Grid

from federation.dataset import Examples, concat, held_out_mask, make_examples
from federation.messages import DPSettings, TaskSettings, to_config
from federation.model import build_model, pack, unpack
from federation.task import TrainConfig, train
from server.queries import ask, is_refusal
from server.run_record import RunRecord
from server.vertical import released_frames


@dataclass
class Released:
    """The released rows of the small nodes, pooled, and what trains on them each round."""

    examples: Examples | None
    task: TaskSettings
    train_cfg: TrainConfig

    @property
    def rows(self) -> int:
        return 0 if self.examples is None else len(self.examples)

    def reply(self, rnd: int, arrays: ArrayRecord, like: dict[str, float] | None) -> Message | None:
        """An update trained on the released rows from the round's global model, shaped as a node's reply
        (the same metric keys as the nodes' replies, so the strategy averages it with theirs)."""
        if not self.rows:
            return None
        model = build_model(self.task.model_spec())
        model.load_state_dict(unpack(arrays, model))
        train(model, self.examples, replace(self.train_cfg, seed=self.train_cfg.seed + rnd))
        metrics = {k: 0.0 for k in (like or {})} | {"num-examples": self.rows}
        content = RecordDict({"arrays": pack(model.state_dict()), "metrics": MetricRecord(metrics)})
        return Message(content, dst_node_id=0, message_type="train")


def collect(grid: Grid, small: dict[int, str], task: TaskSettings, dp: DPSettings, cfg: dict[str, Any],
            record: RunRecord, refusals: list[dict[str, Any]]) -> Released:
    """Ask each small node once for its person-level DP release (blocks and label); pool what arrives."""
    train_cfg = TrainConfig(epochs=max(1, round(dp.local_epochs)), batch_size=int(cfg["train"]["batch_size"]),
                            lr=float(cfg["train"]["lr"]), weight_decay=float(cfg["train"]["weight_decay"]),
                            block_dropout=dp.block_dropout, seed=int(cfg["seed"]))
    if not small:
        return Released(None, task, train_cfg)
    config = {**to_config(task), "run-kind": "horizontal", "target-epsilon": dp.target_epsilon, "delta": dp.delta,
              "want-label": True}
    replies = ask(grid, list(small), "release", RecordDict({"config": ConfigRecord(config)}),
                  float(cfg["reply_timeout_s"]))
    parts: list[Examples] = []
    for node_id, reply in replies.items():
        name = small[node_id]
        if reply.has_error():
            what = "refused" if is_refusal(reply) else "could not make"
            record.say(f"node {name} {what} its person-level DP release, so it does not take part: "
                       f"{reply.error.reason}")
            if is_refusal(reply):
                refusals.append({"round": 0, "node": name, "action": "release", "reason": reply.error.reason})
            continue
        blocks, label = released_frames(reply.content)
        if label is None or not blocks:
            record.say(f"node {name}: its release holds no label or no block of the run; it does not take part")
            continue
        ex = make_examples(blocks, task.blocks, label, task.label)
        if task.holdout_fold >= 0:
            ex = ex.subset(~held_out_mask(ex.keys["area_code"], task.folds, task.split_seed, task.holdout_fold))
        eps = float(reply.content["metrics"]["epsilon"])
        record.say(f"node {name}: person-level DP release of {len(ex)} training rows (epsilon {eps:.2f} per unit on "
                   "its ledger); the coordinator trains on them each round (post-processing)")
        parts.append(ex)
    return Released(concat(parts) if parts else None, task, train_cfg)

