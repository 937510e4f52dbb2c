"""The run directory: what a run produced, written as it goes so a failed run still leaves a record.

Layout: `status.json` (state, error), `config.json` (the composed configuration), `rounds.json`
(per-round metrics and per-node replies), `model.pt` (the global model), `privacy/<node>.json`
(each node's own privacy report), `checkpoint.pt` (horizontal runs: the global model after the last
completed round, from which a re-launch with `--resume` continues), `predictions.csv` (vertical runs), `prediction_inputs.parquet` (vertical
runs: the model's inputs for the predicted rows, from the smoothed releases, so a report can attribute them).
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from federation.dataset import Examples
from federation.output import progress

INPUTS_FILE = "prediction_inputs.parquet"


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str))
    os.replace(tmp, path)


@dataclass
class RunRecord:
    run_dir: Path
    rounds: list[dict[str, Any]] = field(default_factory=list)
    started: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        self.run_dir = Path(self.run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.status("running")

    def say(self, text: str) -> None:
        """Progress for the person watching: in Flower's log of the run, and in `progress.log` of the run
        directory (what `pulse-twin run start --wait` and `federate` show)."""
        progress(f"[pulse-twin] {text}")
        with open(self.run_dir / "progress.log", "a", encoding="utf-8") as handle:
            handle.write(text + "\n")

    def config(self, cfg: dict[str, Any]) -> None:
        _write_json(self.run_dir / "config.json", cfg)

    def add_round(self, entry: dict[str, Any]) -> None:
        entry = {**entry, "elapsed_s": round(time.time() - self.started, 2)}
        self.rounds.append(entry)
        _write_json(self.run_dir / "rounds.json", self.rounds)

    def checkpoint(self, rnd: int, state_dict: dict[str, torch.Tensor]) -> None:
        """The global model after round `rnd`, replaced atomically after each round."""
        tmp = self.run_dir / "checkpoint.pt.tmp"
        torch.save({"round": rnd, "state_dict": state_dict}, tmp)
        os.replace(tmp, self.run_dir / "checkpoint.pt")

    def resume(self) -> tuple[int, dict[str, torch.Tensor]] | None:
        """The last completed round and its global model, with the record of the rounds up to it; None if the
        run has no checkpoint."""
        path = self.run_dir / "checkpoint.pt"
        if not path.is_file():
            return None
        kept = torch.load(path, weights_only=True)
        done = int(kept["round"])
        rounds = self.run_dir / "rounds.json"
        earlier = json.loads(rounds.read_text()) if rounds.is_file() else []
        self.rounds = [r for r in earlier if int(r.get("round", 0)) <= done]
        _write_json(rounds, self.rounds)
        return done, kept["state_dict"]

    def model(self, state_dict: dict[str, torch.Tensor], spec: dict[str, Any]) -> None:
        torch.save({"state_dict": state_dict, "spec": spec}, self.run_dir / "model.pt")

    def inputs(self, ex: Examples) -> None:
        """The model's inputs for the predicted rows (post-processed releases), for attribution."""
        write_examples(ex, self.run_dir / INPUTS_FILE)

    def privacy(self, node: str, report: dict[str, Any]) -> None:
        _write_json(self.run_dir / "privacy" / f"{node}.json", report)

    def result(self, name: str, data: Any) -> None:
        _write_json(self.run_dir / f"{name}.json", data)

    def status(self, state: str, **extra: Any) -> None:
        _write_json(self.run_dir / "status.json", {"state": state, "elapsed_s": round(time.time() - self.started, 2), **extra})


def read_status(run_dir: Path) -> dict[str, Any]:
    path = Path(run_dir) / "status.json"
    return json.loads(path.read_text()) if path.is_file() else {"state": "missing"}


def update_status(run_dir: Path, **fields: Any) -> None:
    """Change fields of a run's status from outside its ServerApp (e.g. the SuperLink went away mid-run)."""
    _write_json(Path(run_dir) / "status.json", {**read_status(run_dir), **fields})


def write_examples(ex: Examples, path: Path) -> None:
    """Keys, presence flags and scaled inputs in one parquet file (column names say block and index)."""
    frame = ex.keys[["area_code", "period"]].astype(str).reset_index(drop=True)
    for i, block in enumerate(ex.blocks):
        frame[f"present:{block}"] = ex.present[:, i]
    frame = pd.concat([frame, pd.DataFrame(ex.x, columns=[f"x:{j}" for j in range(ex.x.shape[1])])], axis=1)
    frame.to_parquet(path, index=False)


def read_examples(path: Path) -> Examples:
    """What `write_examples` wrote (block order from the presence columns)."""
    frame = pd.read_parquet(path)
    blocks = tuple(c.split(":", 1)[1] for c in frame.columns if c.startswith("present:"))
    x_cols = sorted((c for c in frame.columns if c.startswith("x:")), key=lambda c: int(c[2:]))
    present = frame[[f"present:{b}" for b in blocks]].to_numpy(np.float32)
    return Examples(frame[["area_code", "period"]].reset_index(drop=True), blocks,
                    frame[x_cols].to_numpy(np.float32), present, None)
