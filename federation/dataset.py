"""From feature blocks to model examples: scaling with public constants, presence flags, next-period labels.

Every party assembles examples the same way, so that a model trained on one node means the same on
another. Scaling uses the constants of the block's schema (`federation.blocks`: public, never fitted on
private rows); the label is the liveability of the *next* period (`label.shift` periods ahead) of the same area.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from federation.blocks import BlockSchema, block_schema
from federation.errors import ConfigError

KEYS = ["area_code", "period"]


@dataclass(frozen=True)
class LabelSpec:
    """How the label is scaled for training and how far ahead it lies (public constants of the federation's
    YAML, `label: {center, scale, shift}`: the one place they are set)."""

    center: float
    scale: float
    shift: int

    @classmethod
    def from_config(cls, label: Any) -> "LabelSpec":
        """From a federation's `label` settings (a mapping or a config node). A forecasting federation sets
        `horizons` and the configured `horizon` instead of `shift`: its shift is that horizon."""
        if "shift" in label:
            return cls(float(label["center"]), float(label["scale"]), int(label["shift"]))
        return cls(float(label["center"]), float(label["scale"]), forecast_horizons(label)[1])

    def scale_values(self, y: np.ndarray) -> np.ndarray:
        return ((y - self.center) / self.scale).astype(np.float32)

    def unscale(self, z: np.ndarray) -> np.ndarray:
        return z * self.scale + self.center


@dataclass
class Examples:
    """Model rows: keys, flat scaled inputs, block presence, and (scaled) target where known."""

    keys: pd.DataFrame
    blocks: tuple[str, ...]
    x: np.ndarray
    present: np.ndarray
    y: np.ndarray | None

    def __len__(self) -> int:
        return len(self.keys)

    def subset(self, mask: np.ndarray) -> "Examples":
        return Examples(
            self.keys[mask].reset_index(drop=True),
            self.blocks,
            self.x[mask],
            self.present[mask],
            None if self.y is None else self.y[mask],
        )

    def only_blocks(self, names: Sequence[str]) -> "Examples":
        """Rows that have at least one of `names`, with only those blocks' columns."""
        cols, flags = [], []
        start = 0
        for i, name in enumerate(self.blocks):
            width = len(block_schema(name).features)
            if name in names:
                cols.extend(range(start, start + width))
                flags.append(i)
            start += width
        present = self.present[:, flags]
        keep = present.any(axis=1)
        kept = [b for b in self.blocks if b in names]
        return Examples(
            self.keys[keep].reset_index(drop=True),
            tuple(kept),
            self.x[keep][:, cols],
            present[keep],
            None if self.y is None else self.y[keep],
        )


def forecast_horizons(label: Any) -> tuple[tuple[int, ...], int]:
    """A federation's forecast horizons (`label.horizons`, periods ahead) and the configured one
    (`label.horizon`, which the gate judges); a federation with `label.shift` only forecasts that one."""
    if "horizons" not in label:
        if "shift" not in label:
            raise ConfigError("federation.label: set `horizons` (e.g. [1, 3, 6, 12]) and `horizon`, or `shift`")
        return (int(label["shift"]),), int(label["shift"])
    try:
        horizons = tuple(int(h) for h in label["horizons"])
        horizon = int(label.get("horizon", horizons[0] if horizons else 0))
    except (TypeError, ValueError):
        raise ConfigError(f"federation.label.horizons: a list of whole periods ahead, e.g. [1, 3, 6, 12]; "
                          f"got {label['horizons']!r}") from None
    if not horizons or min(horizons) < 1 or len(set(horizons)) != len(horizons):
        raise ConfigError(f"federation.label.horizons: distinct whole periods ahead, each 1 or more; got {list(horizons)}")
    if horizon not in horizons:
        raise ConfigError(f"federation.label.horizon: {horizon} is not one of horizons {list(horizons)}")
    return tuple(sorted(horizons)), horizon


def next_period(periods: pd.Series, shift: int) -> pd.Series:
    """The period `shift` steps after each period (months `YYYY-MM` or years `YYYY`)."""
    if shift == 0:
        return periods.astype(str)
    freq = "M" if periods.astype(str).str.len().eq(7).all() else "Y"
    return (pd.PeriodIndex(periods.astype(str), freq=freq) + shift).astype(str).to_series(index=periods.index)


def trailing_mean(frame: pd.DataFrame, window: int) -> pd.DataFrame:
    """Each feature as the mean over the area's last `window` periods up to and including the row's own.

    Applied to released blocks this is post-processing: it averages the independent noise of `window`
    cells down (by about sqrt(window)) at no privacy cost. Everyone (coordinator, yardstick) applies the
    same transform, so a comparison measures privacy alone. `window` <= 1 leaves the frame as it is.
    """
    if window <= 1 or frame.empty:
        return frame
    features = [c for c in frame.columns if c not in KEYS]
    ordered = frame.sort_values(KEYS, kind="stable").reset_index(drop=True)
    rolled = (ordered.groupby("area_code", sort=False)[features]
              .rolling(window, min_periods=1).mean().reset_index(level=0, drop=True))
    out = ordered[KEYS].copy()
    out[features] = rolled.sort_index().to_numpy()
    return out


def smooth_blocks(blocks: Mapping[str, pd.DataFrame], window: int) -> dict[str, pd.DataFrame]:
    """`trailing_mean` of every block."""
    return {name: trailing_mean(frame, window) for name, frame in blocks.items()}


def make_examples(
    blocks: Mapping[str, pd.DataFrame],
    order: Sequence[str],
    label: pd.DataFrame | None = None,
    label_spec: LabelSpec | None = None,
    local: Mapping[str, BlockSchema] | None = None,
) -> Examples:
    """Join blocks on (area, period); a row exists where any block has it; absent blocks are zeros.
    `local`: node-local block schemas (`federation.blocks`) for blocks the project does not define.

    With a label, each row's target is the label of the same area `label_spec.shift` periods later,
    and rows without that future label are dropped.
    """
    frames = [blocks[name][KEYS] for name in order if name in blocks]
    if not frames:
        raise ConfigError(f"none of the blocks {list(order)} is available")
    keys = pd.concat(frames).drop_duplicates().sort_values(KEYS).reset_index(drop=True)
    xs, present = [], []
    for name in order:
        schema = block_schema(name, local)
        if name not in blocks:
            xs.append(np.zeros((len(keys), len(schema.features)), np.float32))
            present.append(np.zeros(len(keys), np.float32))
            continue
        frame = blocks[name]
        missing = [f for f in schema.features if f not in frame.columns]
        if missing:
            raise ConfigError(f"block '{name}' lacks features {missing} of {schema.source}")
        joined = keys.merge(frame[KEYS + list(schema.features)], on=KEYS, how="left")
        has = joined[list(schema.features)].notna().all(axis=1).to_numpy()
        values = np.nan_to_num(joined[list(schema.features)].to_numpy(np.float64))
        xs.append(np.where(has[:, None], schema.scale_values(values), 0.0).astype(np.float32))
        present.append(has.astype(np.float32))
    x = np.concatenate(xs, axis=1)
    pres = np.stack(present, axis=1)
    keep = pres.any(axis=1)
    keys, x, pres = keys[keep].reset_index(drop=True), x[keep], pres[keep]
    if label is None:
        return Examples(keys, tuple(order), x, pres, None)
    if label_spec is None:
        raise ConfigError("a label needs its scaling: pass the federation's LabelSpec (label.center, scale, shift)")
    target = label[KEYS + ["label"]].copy()
    target["period"] = next_period(target["period"], -label_spec.shift)
    joined = keys.merge(target, on=KEYS, how="left")
    has_y = joined["label"].notna().to_numpy()
    y = label_spec.scale_values(joined["label"].to_numpy(np.float64)[has_y])
    return Examples(keys[has_y].reset_index(drop=True), tuple(order), x[has_y], pres[has_y], y)


def aligned_label(keys: pd.DataFrame, label: pd.DataFrame, spec: LabelSpec) -> np.ndarray:
    """The scaled label `spec.shift` periods after each key's period (NaN where unknown), e.g. to score a
    model trained on a DP label against the exact one on the same rows."""
    target = label[KEYS + ["label"]].copy()
    target["period"] = next_period(target["period"], -spec.shift)
    joined = keys[KEYS].astype(str).merge(target.astype({"area_code": str, "period": str}), on=KEYS, how="left")
    return spec.scale_values(joined["label"].to_numpy(np.float64))


def area_folds(areas: Sequence[str], n_folds: int, seed: int) -> dict[str, int]:
    """Assign each area to a fold, so test rows are whole held-out areas (never a leak across time)."""
    unique = np.array(sorted(set(areas)))
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(unique))
    return {str(unique[i]): int(rank % n_folds) for rank, i in enumerate(order)}


def concat(parts: Sequence[Examples]) -> Examples:
    """Rows of several nodes in one set (the pooled yardstick); all parts share the block order."""
    return Examples(pd.concat([p.keys for p in parts], ignore_index=True), parts[0].blocks,
                    np.concatenate([p.x for p in parts]), np.concatenate([p.present for p in parts]),
                    np.concatenate([p.y for p in parts]))


def held_out_mask(areas: pd.Series, n_folds: int, seed: int, fold: int) -> np.ndarray:
    """Which rows (by area code) belong to fold `fold` of the areas' own folds: a node's held-out rows."""
    folds = area_folds(areas, n_folds, seed)
    return areas.map(folds).to_numpy() == fold


def read_node_features(node_dir, blocks: Sequence[str], with_label: bool = False):
    """A node's built blocks (`<node_dir>/features/<block>.parquet`) and optionally its label frame."""
    from pathlib import Path

    root = Path(node_dir) / "features"
    out: dict[str, pd.DataFrame] = {}
    for name in blocks:
        path = root / f"{name}.parquet"
        if not path.is_file():
            raise ConfigError(f"{path}: no features for block '{name}'; run `pulse-twin features` on this node first")
        out[name] = pd.read_parquet(path)
    if not with_label:
        return out, None
    path = root / "label.parquet"
    if not path.is_file():
        raise ConfigError(f"{path}: no label; run `pulse-twin features` on the label partner's node first")
    return out, pd.read_parquet(path)
