"""Writing a node's features: all files to temporary names first, renamed only when every one is written,
so a failed build never replaces (or half-replaces) what a previous build left."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from federation.contracts.builder import NodeFeatures
from federation.errors import ConfigError

FEATURES_DIR = "features"
MANIFEST = "manifest.json"


def _targets(features: NodeFeatures) -> dict[str, pd.DataFrame]:
    out = {f"{name}.parquet": frame for name, frame in features.blocks.items()}
    if features.label is not None:
        out["label.parquet"] = features.label
    if features.partition is not None:
        out["partition.parquet"] = features.partition
    return out


def write_features(features: NodeFeatures, node_dir: Path | str) -> list[Path]:
    """Write `features/<block>.parquet`, `label.parquet` (and `partition.parquet`) plus a manifest with the
    privacy unit, the suppressed areas and the build statistics. Returns the written paths."""
    out = Path(node_dir) / FEATURES_DIR
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"{out}: cannot create the features directory ({err.strerror})") from None
    manifest = {
        "privacy_unit": {"row": "area-period", "max_rows_per_person": features.privacy_unit_k},
        "suppressed_areas": features.suppressed_areas,
        "stats": features.stats,
        "files": sorted(_targets(features)),
    }
    staged: list[tuple[Path, Path]] = []
    try:
        for name, frame in _targets(features).items():
            tmp = out / f".{name}.{os.getpid()}.tmp"
            frame.to_parquet(tmp, index=False)
            staged.append((tmp, out / name))
        tmp = out / f".{MANIFEST}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(manifest, indent=2, default=str) + "\n", encoding="utf-8")
        staged.append((tmp, out / MANIFEST))
    except BaseException as err:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
        if isinstance(err, OSError):
            raise ConfigError(f"{out}: cannot write features ({err.strerror or err}); nothing was replaced") from None
        raise
    for tmp, final in staged:
        os.replace(tmp, final)
    return [final for _, final in staged]
