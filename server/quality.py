"""How good a horizontal run is: held-out R² from the nodes' noised sums, next to the pooled yardstick.

After every round the coordinator sends the global model to every node with an `evaluate` message; each
node answers with its noised, charged held-out sums (`clients.evaluation`), and R² over all nodes' held-out
areas follows from their totals. The pooled yardstick is `pulse-twin baseline`'s pooled non-private model
(`devtools/yardstick.py`, the one yardstick; its result file read through `server/report/yardstick_result.py`), scored on the same fold's areas; without a baseline file the line
says how to make one.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Message, RecordDict
from flwr.serverapp import Grid

from federation import heldout
from federation.messages import DPSettings, TaskSettings, to_config
from server.run_record import RunRecord
from server.report.yardstick_result import YardstickResult


def baseline_file(cfg: dict[str, Any]) -> Path:
    """Where `pulse-twin baseline` writes the yardstick of this federation."""
    return Path(cfg["runs_dir"]) / f"baseline-{cfg['federation']['name']}.json"


def pooled_yardstick(cfg: dict[str, Any]) -> tuple[float | None, str]:
    """The pooled model's held-out R² on the run's fold, and how it is described (or why it is missing)."""
    path, fold = baseline_file(cfg), int(cfg.get("holdout_fold", -1))
    hint = f"run `pulse-twin baseline federation={cfg['federation']['name']} seed={cfg['seed']} folds={cfg['folds']}`"
    if not path.is_file():
        return None, f"pooled yardstick: none yet ({hint})"
    try:
        result = YardstickResult.from_json(path)
    except (OSError, ValueError, KeyError) as err:
        return None, f"pooled yardstick: {path} is unreadable ({err}); {hint}"
    protocol = result.protocol
    if (protocol.get("seed"), protocol.get("folds")) != (int(cfg["seed"]), int(cfg["folds"])):
        return None, f"pooled yardstick: {path} used other folds (seed {protocol.get('seed')}); {hint}"
    scores = result.pooled_on_fold(fold)
    if scores is None:
        return None, f"pooled yardstick: {path} has no predictions per fold; {hint}"
    return scores["r2"], f"pooled yardstick (non-private) {scores['r2']:.3f} on fold {fold}'s areas"


class Evaluator:
    """Asks every node for its noised held-out sums after each round and reports R² per round and at the end."""

    def __init__(self, grid: Grid, names: dict[int, str], task: TaskSettings, dp: DPSettings,
                 cfg: dict[str, Any], record: RunRecord) -> None:
        self.grid, self.names, self.task, self.dp, self.record = grid, names, task, dp, record
        self.timeout = float(cfg["reply_timeout_s"])
        self.enabled = dp.eval_noise_multiplier > 0 and task.holdout_fold >= 0
        self.yardstick, self.yardstick_text = pooled_yardstick(cfg) if self.enabled else (None, "")
        self.history: list[dict[str, Any]] = []
        self.failed: set[str] = set()
        if not self.enabled:
            why = ("dp.eval_noise_multiplier is 0" if dp.eval_noise_multiplier <= 0
                   else "the run holds out no areas (holdout_fold=-1; set holdout_fold=K, 0 to folds-1)")
            record.say(f"held-out evaluation: off ({why})")

    def round(self, rnd: int, arrays: ArrayRecord, node_ids: list[int]) -> None:
        """Evaluate the global model after round `rnd` on every node's held-out areas."""
        if not self.enabled:
            return
        config = ConfigRecord({**to_config(self.task, self.dp), "server-round": rnd})
        messages = [Message(RecordDict({"arrays": arrays, "config": config}), dst_node_id=n, message_type="evaluate")
                    for n in node_ids]
        sums, spent = [], {}
        for reply in self.grid.send_and_receive(messages, timeout=self.timeout):
            name = self.names.get(reply.metadata.src_node_id, str(reply.metadata.src_node_id))
            if reply.has_error():
                if name not in self.failed:   # said once, not every round
                    self.record.say(f"node {name}: no held-out sums ({reply.error.reason})")
                    self.failed.add(name)
                continue
            m = reply.content["metrics"]
            sums.append(np.array([float(m[f]) for f in heldout.FIELDS]))
            spent[name] = {"epsilon": float(m["epsilon"])}
        held = heldout.combine(sums)
        self.history.append({"round": rnd, "r2_dp": held.r2, "rows_dp": held.rows, "nodes": held.nodes})

        eps = epsilon_summary(spent) if spent else "n/a"
        dry = " (DRY RUN on synthetic twins: not charged)" if self.task.dry_run else ""
        self.record.say(f"round {rnd}: {held.text()} | {self.yardstick_text} | epsilon per node after it: {eps}{dry}")

    def summary(self) -> dict[str, Any]:
        """The last round's held-out R² against the yardstick, said once at the end and kept in heldout.json."""
        if not self.enabled:
            return {}
        last = self.history[-1] if self.history else {"r2_dp": None}
        shown = "n/a" if last["r2_dp"] is None else f"{last['r2_dp']:.3f}"
        pooled = "n/a" if self.yardstick is None else f"{self.yardstick:.3f}"
        dry = "DRY RUN (synthetic twins, not comparable to the yardstick): " if self.task.dry_run else ""
        self.record.say(f"{dry}held-out R² at the end: federated (DP, noised sums) {shown} | pooled yardstick "
                        f"(non-private) {pooled} | fold {self.task.holdout_fold}'s areas")
        if self.yardstick is None:
            self.record.say(self.yardstick_text)
        out = {"holdout_fold": self.task.holdout_fold, "rounds": self.history, "final_r2_dp": last["r2_dp"],
               "pooled_yardstick_r2": self.yardstick, "eval_noise_multiplier": self.dp.eval_noise_multiplier}
        self.record.result("heldout", out)
        return out


LIST_NODES_UP_TO = 8   # beyond this many nodes a round's line summarises instead of listing


def epsilon_summary(nodes: dict[str, dict[str, Any]]) -> str:
    """Each node's epsilon after the round, in one line: listed for a few nodes; for many, min / median / max,
    the nodes at the maximum, and how many refused or failed (named when there are few)."""
    if len(nodes) <= LIST_NODES_UP_TO:
        return ", ".join(f"{k} {v['epsilon']:.2f}" if "epsilon" in v else f"{k} refused" if "refused" in v
                         else f"{k} failed" for k, v in nodes.items())
    spent = sorted((float(v["epsilon"]), k) for k, v in nodes.items() if "epsilon" in v)
    others = {kind: sorted(k for k, v in nodes.items() if kind in v) for kind in ("refused", "failed")}
    parts = []
    if spent:
        top = spent[-1][0]
        at_top = [k for e, k in spent if e >= top - 1e-9]
        parts.append(f"{len(spent)} nodes: min {spent[0][0]:.2f}, median {spent[len(spent) // 2][0]:.2f}, "
                     f"max {top:.2f} ({', '.join(at_top[:3])}{' ...' if len(at_top) > 3 else ''})")
    for kind, names in others.items():
        if names:
            parts.append(f"{len(names)} {kind}" + (f" ({', '.join(names)})" if len(names) <= 5 else ""))
    return "; ".join(parts)
