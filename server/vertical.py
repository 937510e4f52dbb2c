"""The coordinator's vertical run: PSI alignment, split learning with noised embeddings, predictions.

The coordinator holds the label and the fusion head; the partners hold their encoders. Keys are
aligned by PSI (only the coordinator learns the intersection). Each exchange, every partner releases
the noised embeddings of all aligned rows once; the head trains on them in mini-batches, and the
gradient of each partner's embeddings goes back in the next exchange. The head sees each area's
mean embedding over its last `smoothing_window` periods: post-processing of released values, which
averages the per-row noise down at no privacy cost.
"""
from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import torch
from flwr.app import Array, ArrayRecord, ConfigRecord, RecordDict
from flwr.serverapp import Grid

from federation.alignment import align
from federation.dataset import KEYS, area_folds, next_period
from federation.messages import TaskSettings, to_config
from federation.model import FusionHead
from federation.psi import CoordinatorPsi, encode_key
from federation.task import r2_mae
from server.queries import RunFailed, ask, config_content, content_or_fail
from server.run_record import RunRecord
from server.strategies import wait_for_nodes

Key = tuple[str, str]


def task_settings(cfg: dict[str, Any], run_name: str, blocks: tuple[str, ...]) -> TaskSettings:
    fed, model, v = cfg["federation"], cfg["model"], cfg["vertical"]
    return TaskSettings(
        run_name=run_name, blocks=blocks, label_center=float(fed["label"]["center"]),
        label_scale=float(fed["label"]["scale"]), label_shift=int(fed["label"]["shift"]),
        embed_dim=int(v["embed_dim"]), hidden=int(model["hidden"]), head_hidden=int(model["head_hidden"]),
        holdout_fold=int(cfg.get("holdout_fold", -1)), folds=int(cfg["folds"]), split_seed=int(cfg["seed"]),
    )


def label_keys(label: pd.DataFrame, shift: int) -> tuple[list[Key], dict[Key, float], list[Key]]:
    """Training keys (rows whose label `shift` periods later is known), their labels, and the keys of
    the latest labelled period, for which the run predicts the next period."""
    frame = label[KEYS + ["label"]].copy()
    frame["period"] = frame["period"].astype(str)
    frame["row_period"] = next_period(frame["period"], -shift)
    train = {(str(a), str(p)): float(y) for a, p, y in zip(frame["area_code"], frame["row_period"], frame["label"])}
    latest = frame["period"].max()
    predict = [(str(a), latest) for a in sorted(frame.loc[frame["period"] == latest, "area_code"].unique())]
    return sorted(train), train, predict


def smoothing_matrix(keys: list[Key], window: int) -> torch.Tensor:
    """Row i becomes the mean of rows of the same area whose period lies in the `window` periods up to its own."""
    frame = pd.DataFrame(keys, columns=KEYS)
    frame["t"] = pd.PeriodIndex(frame["period"], freq="M" if len(keys[0][1]) == 7 else "Y").asi8 if keys else []
    n = len(keys)
    a = np.zeros((n, n), np.float32)
    for _, group in frame.groupby("area_code"):
        idx, t = group.index.to_numpy(), group["t"].to_numpy()
        for i, ti in zip(idx, t):
            members = idx[(t <= ti) & (t > ti - max(1, window))]
            a[i, members] = 1.0 / len(members)
    return torch.from_numpy(a)


def run_vertical(grid: Grid, cfg: dict[str, Any], record: RunRecord, run_name: str) -> dict[str, Any]:
    fed, v = cfg["federation"], cfg["vertical"]
    timeout, seed = float(cfg["reply_timeout_s"]), int(cfg["seed"])
    order = tuple(b for p in fed["partners"].values() for b in p["blocks"])
    task = task_settings(cfg, run_name, order)
    label = pd.read_parquet(fed["label"]["path"])
    train_keys, labels, predict_keys = label_keys(label, task.label_shift)

    node_ids = wait_for_nodes(grid, len(fed["partners"]), float(cfg["node_wait_s"]))
    common = {**to_config(task), "run-kind": "vertical"}
    described = content_or_fail(ask(grid, node_ids, "describe", RecordDict({"config": ConfigRecord(common)}), timeout),
                                {}, "describe")
    names = {n: str(c["node"]["name"]) for n, c in described.items()}
    blocks_of = {n: tuple(b for b in str(c["node"]["blocks"]).split(",") if b) for n, c in described.items()}
    for n in node_ids:
        record.say(f"partner {names[n]}: blocks {', '.join(blocks_of[n]) or '(none)'}")
    if any(not b for b in blocks_of.values()):
        raise RunFailed("a partner has none of the federation's blocks built (run `pulse-twin features` on it)")
    ordered = sorted(node_ids, key=lambda n: order.index(blocks_of[n][0]))

    # --- PSI: only the coordinator learns the intersection ----------------------------------
    wanted = sorted(set(train_keys) | set(predict_keys))
    coord = CoordinatorPsi(wanted, fpr=float(v["psi_fpr"]), source="coordinator label keys")
    request = coord.request()
    psi_cfg = RecordDict({"config": ConfigRecord({**common, "request": request, "set-size": coord.set_size,
                                                 "fpr": float(v["psi_fpr"])})})
    replies = content_or_fail(ask(grid, ordered, "psi", psi_cfg, timeout), names, "psi")
    per_partner = [coord.intersect(bytes(r["psi"]["setup"]), bytes(r["psi"]["response"]), partner=names[n])
                   for n, r in replies.items()]
    aligned = set(align(per_partner))
    train_rows = [k for k in train_keys if k in aligned]
    predict_rows = [k for k in predict_keys if k in aligned]
    record.say(f"PSI: {len(wanted)} label keys; aligned with every partner: {len(train_rows)} training rows, "
               f"{len(predict_rows)} rows to predict (period {predict_keys[0][1] if predict_keys else '-'})")
    if len(train_rows) < 2:
        raise RunFailed("PSI left fewer than two aligned training rows")
    keys_cfg = {"train-keys": "\n".join(encode_key(k) for k in train_rows),
                "predict-keys": "\n".join(encode_key(k) for k in predict_rows)}
    content_or_fail(ask(grid, ordered, "align", RecordDict({"config": ConfigRecord({**common, **keys_cfg})}), timeout),
                    names, "align")

    # --- split learning ----------------------------------------------------------------------
    folds = area_folds([a for a, _ in train_rows], task.folds, task.split_seed)
    held_out = np.array([task.holdout_fold >= 0 and folds[a] == task.holdout_fold for a, _ in train_rows])
    fit = np.flatnonzero(~held_out)
    y = torch.from_numpy(task.label.scale_values(np.array([labels[k] for k in train_rows])))
    smooth = smoothing_matrix(train_rows, int(v["smoothing_window"]))
    torch.manual_seed(seed)
    head = FusionHead(len(order), task.embed_dim, task.head_hidden)
    head_opt = torch.optim.Adam(head.parameters(), lr=float(v["head_lr"]), weight_decay=float(v["head_weight_decay"]))
    exchanges, k_batches = int(v["exchanges"]), int(v["batches_per_exchange"])
    run_cfg = {**common, "clip": float(v["clip"]), "encoder-lr": float(v["encoder_lr"]), "seed": seed,
               "target-epsilon": float(cfg["dp"]["target_epsilon"]), "delta": float(cfg["dp"]["delta"]),
               "planned-releases": exchanges + 1}
    rng = np.random.default_rng(seed)
    grads: dict[int, np.ndarray] = {}
    present = torch.ones(len(train_rows), len(order))
    z_last: dict[int, torch.Tensor] = {}
    for ex in range(1, exchanges + 2):
        phase = "train" if ex <= exchanges else "predict"
        contents = {}
        for n in ordered:
            rd = RecordDict({"config": ConfigRecord({**run_cfg, "phase": phase, "exchange": ex})})
            if n in grads:
                rd["grad"] = ArrayRecord({"grad": Array(grads[n])})
            contents[n] = rd
        got = content_or_fail(ask(grid, ordered, "embed", contents, timeout), names, "embed")
        eps = {names[n]: float(got[n]["metrics"]["epsilon"]) for n in ordered}
        z = {n: torch.from_numpy(got[n]["emb"]["emb"].numpy()).requires_grad_(phase == "train") for n in ordered}
        if phase == "predict":
            z_pred = z
            break
        z_last = {n: t.detach() for n, t in z.items()}
        per_batch = {n: np.zeros((k_batches, *z[n].shape), np.float32) for n in ordered}
        losses = []
        head.train()
        # The head may pass over released embeddings as often as it likes (post-processing); only the
        # last pass's gradients go back to the partners, one per mini-batch.
        for epoch in range(int(v["head_epochs"])):
            assign = rng.integers(k_batches, size=len(fit))
            last = epoch == int(v["head_epochs"]) - 1
            for b in range(k_batches):
                rows = torch.from_numpy(fit[assign == b])
                if len(rows) == 0:
                    continue
                zs = smooth[rows] @ torch.cat([z[n] for n in ordered], dim=1)
                loss = torch.nn.functional.mse_loss(head(zs, present[rows]), y[rows])
                head_opt.zero_grad()
                wrt = ([z[n] for n in ordered] if last else []) + list(head.parameters())
                got_grads = torch.autograd.grad(loss, wrt)
                if last:
                    for n, g in zip(ordered, got_grads[: len(ordered)]):
                        per_batch[n][b] = g.numpy()
                    got_grads = got_grads[len(ordered):]
                for p, g in zip(head.parameters(), got_grads):
                    p.grad = g
                head_opt.step()
                losses.append(float(loss.detach()))
        grads = per_batch
        evaluation = _evaluate(head, smooth, z_last, ordered, present, y, held_out, task)
        record.add_round({"round": ex, "train_loss": float(np.mean(losses)), "epsilon": eps, "holdout": evaluation})
        shown = ", ".join(f"{k} {e:.2f}" for k, e in eps.items())
        held = f" | held-out R² {evaluation['r2']:.3f}" if evaluation else ""
        record.say(f"round {ex}/{exchanges}: loss {np.mean(losses):.4f}{held} | epsilon per partner: {shown}")

    # --- prediction for the latest period ----------------------------------------------------
    predictions = _predict(head, train_rows, predict_rows, z_last, z_pred, ordered, len(order), task,
                           int(v["smoothing_window"]))
    predictions.to_csv(record.run_dir / "predictions.csv", index=False)
    final = _evaluate(head, smooth, z_last, ordered, present, y, held_out, task)
    record.result("evaluation", {"federated_dp_holdout": final, "holdout_fold": task.holdout_fold,
                                 "holdout_areas": sorted({a for (a, _), h in zip(train_rows, held_out) if h})})
    record.say(f"predictions for {len(predictions)} areas (period {predict_keys[0][1]} -> next): "
               f"{record.run_dir / 'predictions.csv'}")
    reports = content_or_fail(ask(grid, ordered, "privacy", RecordDict({"config": ConfigRecord(common)}), timeout),
                              names, "privacy")
    for n, content in reports.items():
        record.privacy(names[n], json.loads(str(content["privacy"]["report"])))
    return {"refusals": [], "rounds": exchanges, "partners": [names[n] for n in ordered],
            "aligned_training_rows": len(train_rows), "predicted_areas": len(predictions),
            "federated_dp_holdout": final}


@torch.no_grad()
def _evaluate(head, smooth, z, ordered, present, y, held_out, task) -> dict[str, float] | None:
    if not held_out.any():
        return None
    head.eval()
    pred = head(smooth @ torch.cat([z[n] for n in ordered], dim=1), present).numpy()
    return r2_mae(task.label.unscale(y.numpy()[held_out]), task.label.unscale(pred[held_out]))


@torch.no_grad()
def _predict(head, train_rows, predict_rows, z_train, z_pred, ordered, n_blocks, task, window) -> pd.DataFrame:
    if not predict_rows:
        return pd.DataFrame(columns=["area_code", "period", "predicted_period", "predicted_liveability"])
    keys = train_rows + predict_rows
    smooth = smoothing_matrix(keys, window)[len(train_rows):]
    z = torch.cat([torch.cat([z_train[n], z_pred[n]], dim=0) for n in ordered], dim=1)
    head.eval()
    pred = head(smooth @ z, torch.ones(len(predict_rows), n_blocks)).numpy()
    frame = pd.DataFrame(predict_rows, columns=KEYS)
    frame["predicted_period"] = next_period(frame["period"], task.label_shift).to_numpy()
    frame["predicted_liveability"] = task.label.unscale(pred).round(4)
    return frame
