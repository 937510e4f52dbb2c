"""The partners' released block values, kept in the run directory for what is built from them afterwards.

`releases/<partner>.csv`: `area_code, period, series, value, noise_sd, release` (one row per released feature
value; `noise_sd` the standard deviation of the noise the node's release put in it, where known in closed
form; `release` the release id `<run>/<partner>/<block>` by which every published figure built from it is
traced). Post-processing of what the nodes released: no privacy cost, nothing a node did not send.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

import pandas as pd

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
