"""A partner's part in a vertical run: PSI, aligned keys, and one person-level DP release of its blocks.

The partner releases its blocks (and the label, if it holds the federation's DP label) once per window:
`clients.release.DpRelease` bounds each unit's contribution on the raw records and adds Gaussian noise per
private table, for the run's target epsilon per unit. The coordinator receives the released blocks for
the aligned keys only, through the egress guard, and does everything else (joins, training for as many
epochs as it likes, predictions) as post-processing. A later run on the same window re-uses the kept
release and is charged nothing; only new periods cost budget.
"""
from __future__ import annotations

import json
from pathlib import Path

from flwr.app import ConfigRecord, Context, Message, MetricRecord, RecordDict

from clients.node import Node, run_key, send
from clients.release import DpRelease
from federation.alignment import accept_aligned
from clients.contracts import build_features, load_contract
from clients.egress import EgressGuard
from federation.errors import ConfigError
from federation.messages import TaskSettings, from_config, to_parquet
from federation.psi import decode_key, encode_key, partner_reply

CONTRACT_FILE = "contract.yaml"


def run_dir(node: Node, run_id: str) -> Path:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in run_id)
    path = node.node_dir / "state" / "runs" / safe
    path.mkdir(parents=True, exist_ok=True)
    return path


def run_id_of(config: ConfigRecord, context: Context) -> str:
    return run_key(config["run-name"], context)


def own_blocks(node: Node, task: TaskSettings) -> tuple[str, ...]:
    return node.available_blocks(task.blocks)


def own_keys(node: Node, task: TaskSettings) -> list[tuple[str, str]]:
    """Every (area, period) this partner has any block for."""
    keys: set[tuple[str, str]] = set()
    for frame in node.blocks(own_blocks(node, task)).values():
        keys.update(zip(frame["area_code"].astype(str), frame["period"].astype(str)))
    return sorted(keys)


def psi(msg: Message, context: Context) -> Message:
    """PSI server side: reply to the coordinator's request with a fresh key; the set size is disclosed."""
    node = Node.from_context(context)
    config = msg.content["config"]
    task = from_config(TaskSettings, config)
    reply = partner_reply(own_keys(node, task), bytes(config["request"]), int(config["set-size"]), float(config["fpr"]),
                          source=f"node {node.name}")
    content = RecordDict({"psi": ConfigRecord({"setup": reply.setup, "response": reply.response})})
    return send(msg, content, EgressGuard.open(node.node_dir), run_id=run_id_of(config, context), round=0,
                kind="psi", run_kind="vertical", facts={"psi_revealed_set_size": reply.revealed_set_size})


def align(msg: Message, context: Context) -> Message:
    """Keep the aligned keys (all of them this node's own) for the run; acknowledge with their count."""
    node = Node.from_context(context)
    config = msg.content["config"]
    task = from_config(TaskSettings, config)
    mine = own_keys(node, task)
    rows = {}
    for part in ("train", "predict"):
        keys = [decode_key(k) for k in str(config[f"{part}-keys"]).split("\n") if k]
        rows[part] = [encode_key(k) for k in accept_aligned(keys, mine, source=f"node {node.name}")] if keys else []
    (run_dir(node, run_id_of(config, context)) / "aligned.json").write_text(json.dumps(rows))
    content = RecordDict({"aligned": ConfigRecord({"train-rows": len(rows["train"]),
                                                    "predict-rows": len(rows["predict"])})})
    return send(msg, content, EgressGuard.open(node.node_dir), run_id=run_id_of(config, context), round=0,
                kind="public-fact", run_kind="vertical")


def node_contract(node: Node):
    """The node's own data contract (`<node-dir>/contract.yaml`): the node decides what it releases."""
    path = node.node_dir / CONTRACT_FILE
    if not path.is_file():
        raise ConfigError(f"node {node.name}: no data contract at {path} (set the node up with `pulse-twin node init`)")
    return load_contract(path)


RELEASE_STATS = "release-stats.json"


def keep_release_stats(folder: Path, dp: DpRelease) -> Path:
    """The node-internal statistics of a release (`<run state>/release-stats.json`), for the node's operator."""
    path = folder / RELEASE_STATS
    path.write_text(json.dumps({"records": dp.records, "tables": dp.report}, indent=2, default=float))
    return path


def release(msg: Message, context: Context) -> Message:
    """Release this node's blocks (and the label, when asked and held) for the aligned keys, with DP."""
    node = Node.from_context(context)
    config = msg.content["config"]
    task = from_config(TaskSettings, config)
    rid = run_id_of(config, context)
    guard = EgressGuard.open(node.node_dir)
    p = guard.policy.privacy
    delta = min(float(config["delta"]), p.delta)
    dp = DpRelease(node.node_dir, float(config["target-epsilon"]), delta, rid, accountant=p.accountant)
    built = build_features(node_contract(node), node.node_dir, release=dp)
    want_label = bool(config.get("want-label", False))
    # also a horizontal run's node too small for DP-SGD, which takes part through this release
    run_kind = str(config.get("run-kind", "vertical"))
    aligned_file = run_dir(node, rid) / "aligned.json"
    keys = None
    if aligned_file.is_file():
        aligned = json.loads(aligned_file.read_text())
        keys = {decode_key(k) for part in ("train", "predict") for k in aligned[part]}
    payload: dict[str, bytes | str] = {}
    rows = 0
    for name in own_blocks(node, task):
        frame = built.blocks.get(name)
        if frame is None:
            raise ConfigError(f"node {node.name}: its contract no longer produces block '{name}'")
        mask = None
        if keys is not None:
            mask = [k in keys for k in zip(frame["area_code"].astype(str), frame["period"].astype(str))]
            frame = frame[mask]
        payload[f"block:{name}"] = to_parquet(frame.reset_index(drop=True))
        rows += len(frame)
        if built.noise and name in built.noise:
            # each feature's noise sd per cell: data-independent (bounds, epsilon, public populations), so
            # the coordinator can shrink the noisy means by it (`federation.shrinkage`)
            noise = built.noise[name] if mask is None else built.noise[name][mask]
            payload[f"noise:{name}"] = to_parquet(noise.reset_index(drop=True))
    if want_label:
        if built.label is None:
            raise ConfigError(f"node {node.name}: asked for the label, but its contract declares none")
        payload["label"] = to_parquet(built.label.reset_index(drop=True))
        rows += len(built.label)
    epsilon = guard.ledger.projected_epsilon(dp.charges, delta, accountant=p.accountant)
    content = RecordDict({"release": ConfigRecord(payload),
                          "metrics": MetricRecord({"rows": rows, "new-releases": len(dp.charges), "epsilon": epsilon})})
    # Exact statistics of the release (raw records per table, units and shares the bounds cut) are the node's
    # own: kept beside the run's state for its operator, never in the reply (`REPLY_FIELDS`).
    keep_release_stats(run_dir(node, rid), dp)
    if dp.charges:
        reply = send(msg, content, guard, run_id=rid, round=1, kind="dp-aggregate", run_kind=run_kind,
                     charges=dp.charges, rows=rows,
                     params={"noise_multiplier": min(r.noise_multiplier for r in dp.charges)})
    else:  # every table re-used: the same release again, already charged when it first left
        reply = send(msg, content, guard, run_id=rid, round=1, kind="dp-aggregate-reused", run_kind=run_kind,
                     rows=rows, params={"reused_tables": ",".join(dp.reused)})
    dp.commit()
    return reply
