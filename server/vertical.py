"""The coordinator's vertical run: PSI alignment, one DP release per partner, the fusion model, predictions.

The partners hold different blocks about the same areas. The label partner first releases the label
(a DP release of its survey, respondent as unit), unless the federation uses a published index. Keys
are aligned by PSI (only the coordinator learns the intersection); then every partner releases its
blocks for the aligned keys once, with person-level DP (`clients.release`). Everything the coordinator
does afterwards is post-processing: trailing means, their shrinkage by the releases' known noise
(`vertical.shrinkage`), the blocks' public scaling, scoring the fusion model by cross-validation over
areas (`vertical.cross_validate`), training it on every area for as many epochs as it likes, and
predicting next month for every area.
"""
from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
from flwr.app import ConfigRecord, RecordDict
from flwr.serverapp import Grid

from federation.messages import from_parquet
from server.kept_releases import keep_releases
from federation.alignment import align
from federation.dataset import KEYS, Examples, area_folds, make_examples, next_period
from federation.messages import TaskSettings, to_config
from federation.model import build_model
from federation.psi import CoordinatorPsi, encode_key
from federation.shrinkage import ShrinkageConfig, released_features
from federation.task import TrainConfig, cross_validated, fit, predict, r2_mae
from server.queries import RunFailed, ask, content_or_fail
from server.run_record import RunRecord
from server.strategies import wait_for_nodes

Key = tuple[str, str]


def task_settings(cfg: dict[str, Any], run_name: str, blocks: tuple[str, ...]) -> TaskSettings:
    fed, model = cfg["federation"], cfg["model"]
    return TaskSettings.from_config(run_name, blocks, fed["label"], model,
                                    holdout_fold=int(cfg.get("holdout_fold", -1)), folds=int(cfg["folds"]),
                                    split_seed=int(cfg["seed"]))


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


def released_frames(reply: RecordDict, part: str = "block") -> tuple[dict[str, pd.DataFrame], pd.DataFrame | None]:
    """A partner's released blocks (`part="noise"`: their per-cell noise sd) and label, if sent."""
    record = reply["release"]
    blocks = {k.split(":", 1)[1]: from_parquet(bytes(v)) for k, v in record.items() if k.startswith(f"{part}:")}
    label = from_parquet(bytes(record["label"])) if "label" in record else None
    return blocks, label


def run_vertical(grid: Grid, cfg: dict[str, Any], record: RunRecord, run_name: str) -> dict[str, Any]:
    fed, v = cfg["federation"], cfg["vertical"]
    timeout, seed = float(cfg["reply_timeout_s"]), int(cfg["seed"])
    order = tuple(b for p in fed["partners"].values() for b in p["blocks"])
    task = task_settings(cfg, run_name, order)
    if task.holdout_fold >= 0:  # refused before anything is released
        raise RunFailed("a vertical run is scored by cross-validation over every fold of areas "
                        "(vertical.cross_validate) and predicts with a model trained on every area; "
                        "holdout_fold applies to horizontal runs only")
    source = str(fed["label"].get("source", "dp_release"))

    node_ids = wait_for_nodes(grid, len(fed["partners"]), float(cfg["node_wait_s"]))
    common = {**to_config(task), "run-kind": "vertical", "target-epsilon": float(cfg["dp"]["target_epsilon"]),
              "delta": float(cfg["dp"]["delta"])}
    described = content_or_fail(ask(grid, node_ids, "describe", RecordDict({"config": ConfigRecord(common)}), timeout),
                                {}, "describe")
    names = {n: str(c["node"]["name"]) for n, c in described.items()}
    blocks_of = {n: tuple(b for b in str(c["node"]["blocks"]).split(",") if b) for n, c in described.items()}
    for n in node_ids:
        record.say(f"partner {names[n]}: blocks {', '.join(blocks_of[n]) or '(none)'}")
    if any(not b for b in blocks_of.values()):
        raise RunFailed("a partner has none of the federation's blocks built (run `pulse-twin features` on it)")
    ordered = sorted(node_ids, key=lambda n: order.index(blocks_of[n][0]))
    eps: dict[str, float] = {}

    # --- the label: a DP release of the survey, or a published index ----------------------
    if source == "dp_release":
        holder = [n for n in ordered if names[n] == fed["label"]["partner"]]
        if not holder:
            raise RunFailed(f"the label partner '{fed['label']['partner']}' is not among the connected nodes")
        got = content_or_fail(ask(grid, holder, "release", RecordDict({"config": ConfigRecord(
            {**common, "want-label": True})}), timeout), names, "release (label)")
        _, label = released_frames(got[holder[0]])
        eps[names[holder[0]]] = float(got[holder[0]]["metrics"]["epsilon"])
        record.say(f"label: DP release of {names[holder[0]]}'s survey, {len(label)} area-period rows")
    elif source == "published":
        label = pd.read_parquet(fed["label"]["path"])
        record.say(f"label: published index {fed['label']['path']}, {len(label)} area-period rows")
    else:
        raise RunFailed(f"federation.label.source must be dp_release or published; got {source!r}")
    if label is None or label.empty:
        raise RunFailed("the label release holds no rows")
    train_keys, labels, predict_keys = label_keys(label, task.label_shift)

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

    # --- one DP release per partner, for the aligned keys ----------------------------------------
    got = content_or_fail(ask(grid, ordered, "release", RecordDict({"config": ConfigRecord(common)}), timeout),
                          names, "release")
    blocks: dict[str, pd.DataFrame] = {}
    noise: dict[str, pd.DataFrame] = {}
    for n in ordered:
        released, _ = released_frames(got[n])
        blocks.update(released)
        noise.update(released_frames(got[n], "noise")[0])
        keep_releases(record.run_dir, run_name, names[n], released, released_frames(got[n], "noise")[0])
        eps[names[n]] = float(got[n]["metrics"]["epsilon"])
        reused = int(got[n]["metrics"]["new-releases"]) == 0
        record.say(f"{names[n]}: released {', '.join(released)} ({int(got[n]['metrics']['rows'])} rows"
                   + ("; re-used its kept release, no new charge" if reused else "") + ")")
    record.say("epsilon per partner (node's lifetime, per unit, delta "
               f"{float(cfg['dp']['delta']):g}): " + ", ".join(f"{k} {e:.2f}" for k, e in eps.items()))

    # --- the fusion model: post-processing of the releases --------------------------------------
    window = int(cfg["trailing_periods"])
    features = released_features(blocks, window, noise, ShrinkageConfig.from_cfg(v.get("shrinkage")))
    ex = make_examples(features, order, label, task.label)
    ex = ex.subset(np.array([(a, p) in set(train_rows) for a, p in zip(ex.keys["area_code"], ex.keys["period"])]))
    train_cfg = TrainConfig(**{**cfg["train"], "seed": seed})
    evaluation, held_areas = None, []
    if bool(v["cross_validate"]):
        held = held_out_predictions(ex, task, {p: tuple(s["blocks"]) for p, s in fed["partners"].items()},
                                    train_cfg, seed)
        held.to_csv(record.run_dir / "holdout_predictions.csv", index=False)
        evaluation = r2_mae(held["y_dp"].to_numpy(), held["pred"].to_numpy())
        held_areas = sorted(set(held["area_code"].astype(str)))
        record.say(f"{task.folds}-fold cross-validation over {len(held_areas)} areas (each held out once): "
                   f"R² {evaluation['r2']:.3f} against the DP label ({evaluation['n']} rows)")
    model, weight_decay = fit(lambda: build_model(task.model_spec(order), seed=seed), ex, train_cfg)
    record.say(f"fusion model trained on every area, {len(ex)} rows (weight decay {weight_decay:g}, "
               "chosen by cross-validation over the training areas)")
    record.add_round({"round": 1, "epsilon": eps, "holdout": evaluation})

    predictions, inputs = _predict(model, features, order, predict_rows, task)
    # This month's liveability as released (DP label or published index), for the change to next month.
    now = label.assign(period=label["period"].astype(str), area_code=label["area_code"].astype(str))
    now = now.set_index(KEYS)["label"]
    predictions["current_liveability"] = [round(float(now.get((a, p), np.nan)), 4)
                                          for a, p in zip(predictions["area_code"], predictions["period"])]
    predictions.to_csv(record.run_dir / "predictions.csv", index=False)
    record.model(model.state_dict(), {"blocks": list(order), **cfg["model"]})
    if inputs is not None:
        record.inputs(inputs)
    record.result("evaluation", {"federated_dp_holdout": evaluation, "label": source,
                                 "split": f"{task.folds}-fold cross-validation over areas (seed {task.split_seed})",
                                 "holdout_areas": held_areas})
    record.say(f"predictions for {len(predictions)} areas (period {predict_keys[0][1]} -> next): "
               f"{record.run_dir / 'predictions.csv'}")
    reports = content_or_fail(ask(grid, ordered, "privacy", RecordDict({"config": ConfigRecord(common)}), timeout),
                              names, "privacy")
    for n, content in reports.items():
        record.privacy(names[n], json.loads(str(content["privacy"]["report"])))
    return {"refusals": [], "rounds": 1, "partners": [names[n] for n in ordered],
            "aligned_training_rows": len(train_rows), "predicted_areas": len(predictions),
            "federated_dp_holdout": evaluation}


def held_out_predictions(ex: Examples, task: TaskSettings, partners: dict[str, tuple[str, ...]],
                         train_cfg: TrainConfig, seed: int) -> pd.DataFrame:
    """Out-of-fold predictions over `task.folds` folds of areas, every area held out once: the fusion model
    (`pred`) and each partner alone on its own release (`pred_alone_<partner>`), against the label as
    released (`y_dp`), with each row's `fold`. The yardstick's estimator (`federation.task.cross_validated`)
    on the same split as its pooled model, so the two can be compared fold by fold. Post-processing of
    releases already charged: it costs no privacy, however often it runs."""
    folds = area_folds(ex.keys["area_code"], task.folds, task.split_seed)
    order = tuple(ex.blocks)
    frame = cross_validated(ex, order, task.model_spec(order), train_cfg, task.label, folds, seed)
    frame = frame.rename(columns={"y": "y_dp"})
    for partner, own in partners.items():
        alone = cross_validated(ex, own, task.model_spec(order), train_cfg, task.label, folds, seed)
        frame = frame.merge(alone[KEYS + ["pred"]].rename(columns={"pred": f"pred_alone_{partner}"}),
                            on=KEYS, how="left")
    return frame


def _predict(model, features, order, predict_rows: list[Key],
             task: TaskSettings) -> tuple[pd.DataFrame, Examples | None]:
    """Next period's liveability for the predicted rows (from the pipeline's `features`: trailing means,
    shrunk), and the model inputs it was computed from."""
    columns = ["area_code", "period", "predicted_period", "predicted_liveability"]
    if not predict_rows:
        return pd.DataFrame(columns=columns), None
    ex = make_examples(features, order)
    wanted = set(predict_rows)
    ex = ex.subset(np.array([(a, p) in wanted for a, p in zip(ex.keys["area_code"], ex.keys["period"])]))
    frame = ex.keys.copy()
    frame["predicted_period"] = next_period(frame["period"], task.label_shift).to_numpy()
    frame["predicted_liveability"] = task.label.unscale(predict(model, ex)).round(4)
    return frame[columns].reset_index(drop=True), ex
