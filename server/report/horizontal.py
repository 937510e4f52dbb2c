"""A horizontal run's outputs for the report: its released model evaluated where the areas' features are.

A horizontal run leaves the released model (`model.pt`), not predictions: the coordinator holds no data.
The report evaluates that model on each node's area features (the node directories named in the run's
`config.json`), the same examples and the same held-out fold its nodes used, as each node would on its own
premises; this is where the membership audit needs the training areas' rows. It reads features (area
aggregates), never raw records, and releases nothing.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from clients.node import Node
from federation.dataset import Examples, area_folds, make_examples, next_period
from federation.task import predict
from server.horizontal import settings
from server.report.drivers import load_model
from server.report.inputs import ReportInputError, RunOutputs, privacy_reports
from federation.flower_config import node_config


def read_horizontal(run_dir: Path, config: dict[str, Any], status: dict[str, Any]) -> RunOutputs:
    model_path = run_dir / "model.pt"
    if not model_path.is_file():
        raise ReportInputError(f"{model_path}: file not found (a horizontal run writes its released model there)")
    model = load_model(model_path)
    task, _ = settings(config, run_dir.name)
    held, train, latest, inputs = [], [], [], []
    for name, spec in config["federation"]["nodes"].items():
        dirs = spec.get("feature_dirs") or [spec["node_dir"]]
        node = Node.from_config(node_config(name, spec["node_dir"], dirs))
        blocks = node.blocks(task.blocks)
        label = node.label()
        if not blocks or label is None:
            raise ReportInputError(f"node '{name}': no built features or label under {', '.join(map(str, dirs))} "
                                   "(the audit of a horizontal run evaluates its model where the features are)")
        local = node.schemas(task)
        ex = make_examples(blocks, task.blocks, label, task.label, local=local)
        rows = ex.keys[["area_code", "period"]].astype(str).assign(
            y=task.label.unscale(ex.y), pred=task.label.unscale(predict(model, ex)), node=name)
        fold = ex.keys["area_code"].map(area_folds(ex.keys["area_code"], task.folds, task.split_seed)).to_numpy()
        if task.holdout_fold >= 0:
            held.append(rows[fold == task.holdout_fold])
            train.append(rows[fold != task.holdout_fold])
        else:
            train.append(rows)
        now = _latest(make_examples(blocks, task.blocks, local=local))
        frame = now.keys[["area_code", "period"]].astype(str).reset_index(drop=True)
        frame["predicted_liveability"] = task.label.unscale(predict(model, now)).round(4)
        current = label.assign(area_code=label["area_code"].astype(str), period=label["period"].astype(str))
        frame["current_liveability"] = frame.merge(current, on=["area_code", "period"], how="left")["label"].to_numpy()
        latest.append(frame)
        inputs.append(now)
    predictions = pd.concat(latest, ignore_index=True)
    predictions.insert(2, "predicted_period", next_period(predictions["period"], task.label.shift).to_numpy())
    empty = pd.DataFrame(columns=["area_code", "period", "y", "pred"])
    outputs = RunOutputs(run_dir, run_dir.name, "horizontal", config, status, predictions,
                         pd.concat(held, ignore_index=True) if held else empty, privacy_reports(run_dir),
                         "each node's own label", members=pd.concat(train, ignore_index=True) if train else empty)
    outputs.model, outputs.inputs = model, _concat(inputs)
    return outputs


def _latest(ex: Examples) -> Examples:
    """Each area's latest period."""
    last = ex.keys.groupby("area_code")["period"].transform("max")
    return ex.subset((ex.keys["period"] == last).to_numpy())


def _concat(parts: list[Examples]) -> Examples:
    return Examples(pd.concat([p.keys for p in parts], ignore_index=True), parts[0].blocks,
                    np.concatenate([p.x for p in parts]), np.concatenate([p.present for p in parts]), None)
