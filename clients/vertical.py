"""A partner's part in vertical (split) learning: PSI, aligned rows, and noised embeddings.

The partner's block encoders never leave its node (they live in `state/runs/<run>/`). Per exchange
it applies the gradients the coordinator returned for its previous embeddings, then releases the
embeddings of the aligned rows the coordinator asked for, each row's vector clipped to L2 norm C
with Gaussian noise of standard deviation sigma x C added.

Accounting, honestly: the coordinator names the rows of every batch (it must, to pair them with its
labels), so no amplification by subsampling is claimed. Each row is released at most once per
exchange (the node refuses a request that repeats a row), so an exchange is one Gaussian mechanism
per row, charged as a subsampled-Gaussian release with sample rate 1; sensitivity C for replacing a
row's values by an absent record (the model's zero embedding for a missing block).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict

from clients.node import Node, send
from dp_accounting import Release, get_accountant, noise_multiplier
from federation.alignment import accept_aligned
from federation.dataset import make_examples
from federation.egress import EgressGuard
from federation.errors import ContractError, PolicyRefusal
from federation.messages import TaskSettings, from_config
from federation.model import block_encoder
from federation.psi import decode_key, encode_key, partner_reply

UNIT = "area-period row"


def run_dir(node: Node, run_id: str) -> Path:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in run_id)
    path = node.node_dir / "state" / "runs" / safe
    path.mkdir(parents=True, exist_ok=True)
    return path


def run_id_of(config: ConfigRecord, context: Context) -> str:
    return f"{config['run-name']}#{context.run_id}"


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


class PartnerEncoder(torch.nn.Module):
    """This partner's block encoders; its embedding is their concatenation."""

    def __init__(self, task: TaskSettings, blocks: tuple[str, ...]) -> None:
        super().__init__()
        spec = task.model_spec(blocks)
        self.spec = spec
        self.encoders = torch.nn.ModuleList(
            [block_encoder(width, spec.hidden, spec.embed_dim) for _, width in spec.blocks])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts, start = [], 0
        for (_, width), enc in zip(self.spec.blocks, self.encoders):
            parts.append(enc(x[:, start:start + width]))
            start += width
        return torch.cat(parts, dim=1)


def gaussian_noise(shape: torch.Size | tuple[int, ...], std: float) -> torch.Tensor:
    """DP noise from a generator seeded by the operating system on every call: never from a seeded or
    shared generator, so no release's noise can repeat or be predicted from another's."""
    gen = torch.Generator().manual_seed(int.from_bytes(os.urandom(8), "little"))
    return torch.randn(shape, generator=gen) * std


def clip_rows(e: torch.Tensor, c: float) -> torch.Tensor:
    """Bound each row to L2 norm at most c, the sensitivity of one row's release. Each coordinate goes
    through tanh into [-c/sqrt(D), c/sqrt(D)] first, so embeddings use the whole budget that the
    noise is scaled to (a fresh encoder's raw outputs are far smaller), without mixing rows."""
    bounded = torch.tanh(e) * (c / e.shape[1] ** 0.5)
    norms = bounded.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return bounded * torch.clamp(c / norms, max=1.0)


def _features(node: Node, task: TaskSettings, blocks: tuple[str, ...], keys: list[str]) -> np.ndarray:
    ex = make_examples(node.blocks(blocks), blocks)
    index = {encode_key((a, p)): i for i, (a, p) in enumerate(zip(ex.keys["area_code"], ex.keys["period"]))}
    missing = [k for k in keys if k not in index]
    if missing:
        raise ContractError(f"node {node.name}: aligned key {missing[0]} has no features any more")
    return ex.x[[index[k] for k in keys]]


def embed(msg: Message, context: Context) -> Message:
    """Apply the returned gradients, then release noised embeddings of the requested aligned rows."""
    node = Node.from_context(context)
    config = msg.content["config"]
    task = from_config(TaskSettings, config)
    rid = run_id_of(config, context)
    folder = run_dir(node, rid)
    guard = EgressGuard.open(node.node_dir)
    blocks = own_blocks(node, task)
    aligned = json.loads((folder / "aligned.json").read_text())
    phase, exchange = str(config["phase"]), int(config["exchange"])
    clip, lr = float(config["clip"]), float(config["encoder-lr"])
    delta = min(float(config["delta"]), guard.policy.privacy.delta)
    plan = node.run_plan(rid, lambda: {
        "noise_multiplier": noise_multiplier(float(config["target-epsilon"]), delta, 1.0,
                                             int(config["planned-releases"]), guard.policy.privacy.accountant),
        "delta": delta, "planned_releases": int(config["planned-releases"]), "clip": clip,
    })
    sigma = float(plan["noise_multiplier"])
    if len(guard.ledger.history(run_id=rid)) >= int(plan["planned_releases"]):
        raise PolicyRefusal(f"rule 'planned schedule': run {rid} already made the {plan['planned_releases']} "
                            "releases its noise was calibrated for; a further release would pass its target epsilon")

    with torch.random.fork_rng():  # the same starting weights on every call; the global generator is untouched
        torch.manual_seed(int(config["seed"]) + sum(map(ord, node.name)))
        encoder = PartnerEncoder(task, blocks)
    opt = torch.optim.Adam(encoder.parameters(), lr=lr)
    state_file = folder / "encoder.pt"
    if state_file.is_file():
        saved = torch.load(state_file, weights_only=False)
        encoder.load_state_dict(saved["encoder"])
        opt.load_state_dict(saved["optimizer"])

    train_x = torch.from_numpy(_features(node, task, blocks, aligned["train"]))
    if "grad" in msg.content.array_records:
        grads = torch.from_numpy(msg.content["grad"]["grad"].numpy())  # [K, n_train, D]
        if grads.shape[1:] != (len(aligned["train"]), encoder.spec.embed_dim * len(blocks)):
            raise ContractError(f"node {node.name}: gradient of shape {tuple(grads.shape)} does not fit its rows")
        for g in grads:  # one optimiser step per mini-batch the coordinator trained on
            opt.zero_grad()
            (clip_rows(encoder(train_x), clip) * g).sum().backward()
            opt.step()

    keys = aligned["train"] if phase == "train" else aligned["predict"]
    if len(set(keys)) != len(keys):
        raise PolicyRefusal("rule 'one release per row per exchange': the request repeats a row")
    x = train_x if phase == "train" else torch.from_numpy(_features(node, task, blocks, keys))
    with torch.no_grad():
        clean = clip_rows(encoder(x), clip)
        noised = clean + gaussian_noise(clean.shape, sigma * clip)
    tmp = folder / "encoder.pt.tmp"
    torch.save({"encoder": encoder.state_dict(), "optimizer": opt.state_dict()}, tmp)
    os.replace(tmp, state_file)

    release = Release(mechanism="subsampled_gaussian", noise_multiplier=sigma, sample_rate=1.0, steps=1, unit=UNIT,
                      run_id=rid, round=exchange,
                      kind="vertical-embedding" if phase == "train" else "vertical-prediction")
    history = guard.ledger.history(run_id=rid) + [release]
    epsilon = get_accountant(guard.policy.privacy.accountant).epsilon(history, delta)
    content = RecordDict({"emb": ArrayRecord({"emb": Array(noised.numpy().astype(np.float32))}),
                          "metrics": MetricRecord({"rows": len(keys), "epsilon": epsilon})})
    kind = "dp-embeddings" if phase == "train" else "dp-prediction-embeddings"
    return send(msg, content, guard, run_id=rid, round=exchange, kind=kind, run_kind="vertical",
                charges=[release], rows=len(keys), params={"noise_multiplier": sigma})
