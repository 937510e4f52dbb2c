"""The partners' released block values, kept in the run directory for what is built from them afterwards.

`releases/<partner>.csv`: `area_code, period, series, value, noise_sd, release` (one row per released feature
value; `noise_sd` the standard deviation of the noise the node's release put in it, where known in closed
form; `release` the release id `<run>/<partner>/<block>` by which every published figure built from it is
traced). Post-processing of what the nodes released: no privacy cost, nothing a node did not send.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Mapping

import pandas as pd

if TYPE_CHECKING:
    from server.forecast.panel import Panel

KEYS = ["area_code", "period"]
RELEASES_DIR = "releases"


def release_id(run_name: str, partner: str, block: str) -> str:
    return f"{run_name}/{partner}/{block}"


def keep_releases(run_dir: Path, run_name: str, partner: str, blocks: Mapping[str, pd.DataFrame],
                  noise: Mapping[str, pd.DataFrame]) -> Path:
    """Write the partner's released blocks in long form to RUN_DIR/releases/<partner>.csv."""
    parts = []
    for block, frame in blocks.items():
        long = frame.melt(id_vars=KEYS, var_name="series", value_name="value")
        sd = noise.get(block)
        if sd is not None:
            long = long.merge(sd.melt(id_vars=KEYS, var_name="series", value_name="noise_sd"),
                              on=[*KEYS, "series"], how="left")
        else:
            long["noise_sd"] = float("nan")
        long["release"] = release_id(run_name, partner, block)
        parts.append(long)
    out = Path(run_dir) / RELEASES_DIR
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{partner}.csv"
    pd.concat(parts, ignore_index=True).to_csv(path, index=False)
    return path


LABEL_FILE = "label.csv"


def keep_label(run_dir: Path, history: "Panel") -> Path:
    """Write the label's released history as the forecast reads it (survey months only: a month without a
    wave is noise around no respondent) to RUN_DIR/releases/label.csv: `area_code, period, value`. The
    twin's view shows every released month from it, not only the held-out forecasts' targets."""
    import numpy as np

    rows = np.argwhere(np.isfinite(history.values))
    frame = pd.DataFrame({"area_code": [history.areas[i] for i, _ in rows],
                          "period": [history.periods[j] for _, j in rows],
                          "value": history.values[rows[:, 0], rows[:, 1]]})
    out = Path(run_dir) / RELEASES_DIR
    out.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out / LABEL_FILE, index=False)
    return out / LABEL_FILE
