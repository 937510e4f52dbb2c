"""The coordinator's vertical run: PSI alignment, one DP release per partner, the forecast, its artefacts.

The partners hold different blocks about the same areas. The label partner first releases the label
(a DP release of its survey, respondent as unit), unless the federation uses a published index. The run's
grid follows from it: every area of the label x every month from its first to its last released period.
Keys are aligned by PSI (only the coordinator learns the intersection); then every partner releases its
blocks for the aligned keys once, with person-level DP (`clients.release`). Everything the coordinator
does afterwards is post-processing (`server.vertical_forecast`): the shrinkage of each month's release by
its known noise, the label's own released history and each partner's blocks as history features, the
forecast at every horizon of `federation.label.horizons` scored by rolling origin in time x held-out
areas beside the naive forecasts, the gate at the configured horizon, the current forecast for every
area and the warning list.
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
from federation.messages import TaskSettings, to_config
from federation.psi import CoordinatorPsi, encode_key
from federation.task import r2_mae
from server.queries import RunFailed, ask, content_or_fail
from server.run_record import RunRecord
from server.strategies import wait_for_nodes
from server.vertical_forecast import forecast_config, grid_keys, label_grid, run_forecast
from server.forecast.gate import verdicts
from server.forecast.run import MODEL, check_history

Key = tuple[str, str]


def task_settings(cfg: dict[str, Any], run_name: str, blocks: tuple[str, ...]) -> TaskSettings:
    fed, model = cfg["federation"], cfg["model"]
    return TaskSettings.from_config(run_name, blocks, fed["label"], model,
                                    holdout_fold=int(cfg.get("holdout_fold", -1)), folds=int(cfg["folds"]),
                                    split_seed=int(cfg["seed"]))


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
                        "(rolling origin in time x held-out areas) and forecasts with models trained on every area; "
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
    areas, periods = label_grid(label)
    # Enough history for the gate's horizon? Refused here, before the other partners release (and are charged)
    # anything (the label partner's release is kept for a run on the same window), since a forecast that cannot be scored cannot be released; the other horizons are scored if
    # they can be, and the run says which cannot.
    try:
        unscored = check_history(len(periods), forecast_config(cfg))
    except ValueError as err:
        raise RunFailed(f"forecast: {err}; refused before the other partners released anything") from None
    if unscored:
        record.say(f"forecast: {len(periods)} periods cannot score horizon(s) {', '.join(map(str, unscored))}; "
                   "they are left out of the skill table")

    # --- PSI: only the coordinator learns the intersection ----------------------------------
    wanted = grid_keys(areas, periods)
    predict_keys = [(a, periods[-1]) for a in areas]
    coord = CoordinatorPsi(wanted, fpr=float(v["psi_fpr"]), source="coordinator label keys")
    request = coord.request()
    psi_cfg = RecordDict({"config": ConfigRecord({**common, "request": request, "set-size": coord.set_size,
                                                 "fpr": float(v["psi_fpr"])})})
    replies = content_or_fail(ask(grid, ordered, "psi", psi_cfg, timeout), names, "psi")
    per_partner = [coord.intersect(bytes(r["psi"]["setup"]), bytes(r["psi"]["response"]), partner=names[n])
                   for n, r in replies.items()]
    aligned = set(align(per_partner))
    train_rows = [k for k in wanted if k in aligned]
    predict_rows = [k for k in predict_keys if k in aligned]
    record.say(f"PSI: {len(wanted)} keys ({len(areas)} areas x {len(periods)} periods {periods[0]} .. "
               f"{periods[-1]}); aligned with every partner: {len(train_rows)} area-periods, {len(predict_rows)} "
               f"areas at the latest period {periods[-1]}")
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

    # --- the forecast: post-processing of the releases ------------------------------------------
    held_label = label[[(str(a), str(p)) in aligned for a, p in zip(label["area_code"], label["period"])]]
    try:
        result = run_forecast(record.run_dir, cfg, held_label, blocks, noise,
                              float(cfg["dp"]["target_epsilon"]) if source == "dp_release" else None, record.say)
    except ValueError as err:   # e.g. too few released periods for the configured horizon
        raise RunFailed(f"forecast: {err}") from None
    gate, rows = result.skill["gate"], result.skill["rows"]
    held = result.held_out
    evaluation = None
    at = held[(held["horizon"] == gate["horizon"]) & (held["model"] == MODEL) & held["truth"].notna()]
    if len(at) >= 2:
        evaluation = r2_mae(at["truth"].to_numpy(), at["prediction"].to_numpy())
    for h in result.skill["horizons"]:
        mine = next((r for r in rows if r["model"] == MODEL and r["horizon"] == h), None)
        best = result.skill["best_naive"].get(str(h))
        naive = next((r for r in rows if r["model"] == best and r["horizon"] == h), None)
        if mine and naive:
            record.say(f"horizon {h}: federated R² {mine['r2']:.3f}, best naive ({best}) R² {naive['r2']:.3f}; "
                       f"skill {_fmt(mine.get('skill'))} (90% interval {_fmt(mine.get('skill_lo'))} to "
                       f"{_fmt(mine.get('skill_hi'))})")
    record.say(("releasable" if gate["releasable"] else "NOT RELEASABLE") + f" at horizon {gate['horizon']}: "
               + str(gate.get("verdict_en") or next(iter(verdicts(gate).values()), "")))
    record.add_round({"round": 1, "epsilon": eps, "holdout": evaluation})
    held_areas = sorted(set(at["area_code"].astype(str)))
    record.result("evaluation", {"federated_dp_holdout": evaluation, "label": source,
                                 "split": (f"rolling origin in time x {cfg['folds']}-fold held-out areas (seed "
                                           f"{task.split_seed}), horizon {gate['horizon']}"),
                                 "holdout_areas": held_areas, "gate": gate})
    predictions = pd.read_csv(record.run_dir / "predictions.csv")
    record.say(f"forecasts for {len(predictions)} areas from {periods[-1]}, {gate['horizon']} months ahead: "
               f"{record.run_dir / 'predictions.csv'}; every horizon and model: {record.run_dir / 'forecast'}")
    reports = content_or_fail(ask(grid, ordered, "privacy", RecordDict({"config": ConfigRecord(common)}), timeout),
                              names, "privacy")
    for n, content in reports.items():
        record.privacy(names[n], json.loads(str(content["privacy"]["report"])))
    return {"refusals": [], "rounds": 1, "partners": [names[n] for n in ordered],
            "aligned_training_rows": len(train_rows), "predicted_areas": len(predictions),
            "federated_dp_holdout": evaluation, "releasable": bool(gate["releasable"])}


def _fmt(value: Any) -> str:
    return "n/a" if value is None or not np.isfinite(value) else f"{value:+.3f}"
