"""The node's DP release of its blocks: one Gaussian release per private table, kept and re-used.

Where raw records become area aggregates, each private table's bounded series (counts and clipped sums
per (area, period) cell, `clients.contracts.series`) get Gaussian noise calibrated to one unit's L2
contribution, for the run's target (epsilon, delta) per unit. Noise comes from OpenDP's samplers
(`make_gaussian`: the discrete Gaussian on integer counts, OpenDP's floating-point-safe sampler on
sums), never from a seeded generator. Everything after the noise (rates, means, trailing means,
scaling, training, predictions) is post-processing.

A release is kept on the node (`state/releases/<table>.parquet` with its metadata), so a later run on the
same window re-uses it at no privacy cost; when the window grows, only the new periods are released
(one more charged release). Nothing is kept until the egress guard has charged it: `commit()` after `send`.
Public tables are not noised and not charged.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from dp_accounting import Release, noise_multiplier
from clients.contracts.placement import OpContext
from clients.contracts.series import TableAggregate
from federation.errors import ConfigError

RELEASES_DIR = Path("state") / "releases"
KIND = "dp-aggregate"


def opendp_gaussian(values: np.ndarray, scale: float, integer: bool) -> np.ndarray:
    """`values` plus independent Gaussian noise of standard deviation `scale`, from OpenDP's samplers."""
    import opendp.prelude as dp

    dp.enable_features("contrib")
    if integer:
        domain, metric, data = dp.atom_domain(T=int), dp.l2_distance(T=float), [int(v) for v in np.rint(values)]
    else:
        domain, metric, data = dp.atom_domain(T=float, nan=False), dp.l2_distance(T=float), [float(v) for v in values]
    measurement = dp.m.make_gaussian(dp.vector_domain(domain), metric, float(scale))
    return np.asarray(measurement(data), dtype=np.float64)


def unit_text(agg: TableAggregate) -> str:
    """The unit of privacy in words, as the ledger and every report name it."""
    return f"{agg.privacy.describe()}, table {agg.table}"


def _digest(agg: TableAggregate, periods: list[str], areas: np.ndarray) -> str:
    """What makes two releases of a table the same release: its series, bounds and grid."""
    spec = {"series": sorted(s.key for s in agg.series), "unit": agg.privacy.unit,
            "max_cells": agg.privacy.max_cells, "max_per_cell": agg.privacy.max_per_cell,
            "max_events": agg.privacy.max_events, "clip": {c: list(b) for c, b in sorted(agg.privacy.clip.items())}, "areas": [str(a) for a in areas]}
    emphasis = {s.key: s.emphasis for s in agg.series if s.emphasis != 1.0}
    if emphasis:   # only then, so that releases kept before emphases existed keep their digest
        spec["emphasis"] = emphasis
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()


@dataclass
class StoredRelease:
    """A table's released series, as kept on the node."""

    digest: str
    noise_multiplier: float
    sensitivity: float
    frame: pd.DataFrame          # area_code, period, one column per series key
    ledger_runs: list[str] = field(default_factory=list)


def _stored(node_dir: Path, table: str) -> StoredRelease | None:
    meta_path = node_dir / RELEASES_DIR / f"{table}.json"
    data_path = node_dir / RELEASES_DIR / f"{table}.parquet"
    if not (meta_path.is_file() and data_path.is_file()):
        return None
    try:
        meta = json.loads(meta_path.read_text())
        return StoredRelease(meta["digest"], float(meta["noise_multiplier"]), float(meta["sensitivity"]),
                             pd.read_parquet(data_path), list(meta.get("ledger_runs", [])))
    except (OSError, ValueError, KeyError) as err:
        raise ConfigError(f"{meta_path}: the node's stored release is unreadable ({err}); it is never re-drawn "
                          "silently: move it aside only if the ledger shows the release was never sent") from None


class DpRelease:
    """The release step `build_features(..., release=...)` calls: noise the private tables, or re-use.

    After the payload went through the guard (which charges `charges`), `commit()` keeps the new draws.
    """

    def __init__(self, node_dir: Path, epsilon: float, delta: float, run_id: str, accountant: str = "prv",
                 keep: bool = True) -> None:
        if not (isinstance(epsilon, (int, float)) and epsilon > 0):
            raise ConfigError(f"target epsilon per unit must be a number > 0, got {epsilon!r}")
        self.node_dir, self.epsilon, self.delta, self.run_id = Path(node_dir), float(epsilon), float(delta), run_id
        self.accountant, self.keep = accountant, keep
        self.charges: list[Release] = []
        self.reused: list[str] = []
        self.records = 0
        self.report: dict[str, dict] = {}
        self._pending: dict[str, StoredRelease] = {}

    def noise_multiplier(self) -> float:
        """One Gaussian release per table at the target (epsilon, delta) for its unit."""
        return noise_multiplier(self.epsilon, self.delta, 1.0, 1, self.accountant)

    def __call__(self, ctx: OpContext, aggregates: dict[str, TableAggregate]) -> dict[str, TableAggregate]:
        grid = ctx.grid
        keys = grid.frame()[["area_code", "period"]].astype(str).reset_index(drop=True)
        out = {}
        for name, agg in aggregates.items():
            if agg.privacy.is_public:
                out[name] = agg
                continue
            self.records += agg.records
            digest = _digest(agg, list(grid.periods), grid.areas)
            stored = _stored(self.node_dir, name) if self.keep else None
            if stored is not None and stored.digest != digest:
                stored = None   # the contract changed what the table releases: a new release
            out[name] = self._noised(name, agg, keys, digest, stored)
        return out

    def _noised(self, name: str, agg: TableAggregate, keys: pd.DataFrame, digest: str,
                stored: StoredRelease | None) -> TableAggregate:
        columns = [s.key for s in agg.series]
        old = pd.DataFrame(columns=["area_code", "period", *columns])
        if stored is not None and set(columns) <= set(stored.frame.columns):
            old = stored.frame[["area_code", "period", *columns]]
        merged = keys.merge(old.assign(_old=True), on=["area_code", "period"], how="left")
        new = merged["_old"].isna().to_numpy()
        values = {}
        z = stored.noise_multiplier if stored is not None else self.noise_multiplier()
        old_sd = 0.0 if stored is None else stored.noise_multiplier * stored.sensitivity
        weights = agg.weights()
        if new.any():
            z = self.noise_multiplier()
            for s in agg.series:
                exact = agg.values[s.key][new]
                scale = z * agg.sensitivity * weights[s.key]
                values[s.key] = merged[s.key].to_numpy(dtype=np.float64, na_value=np.nan)
                values[s.key][new] = opendp_gaussian(exact, scale, integer=s.values is None)
            self.charges.append(Release(mechanism="gaussian", noise_multiplier=z, sample_rate=1.0, steps=1,
                                        unit=unit_text(agg), run_id=self.run_id, round=0, kind=KIND,
                                        table=name, sensitivity=agg.sensitivity))
            frame = keys.copy()
            for key in columns:
                frame[key] = values[key]
            self._pending[name] = StoredRelease(digest, z, agg.sensitivity, frame,
                                                (stored.ledger_runs if stored else []) + [self.run_id])
        else:
            values = {key: merged[key].to_numpy(dtype=np.float64) for key in columns}
            self.reused.append(name)
        self.report[name] = {**agg.stats, "unit_text": unit_text(agg), "noise_multiplier": z,
                             "new_cells": int(new.sum()), "reused_cells": int((~new).sum()),
                             "noise_sd": {s.key: z * agg.sensitivity * weights[s.key] for s in agg.series}}
        # per cell: kept cells carry their first release's noise, new cells this one's
        per_unit = np.where(new, z * agg.sensitivity, old_sd)
        noise_sd = {key: per_unit * weights[key] for key in columns}
        return replace(agg, values=values, noise_sd=noise_sd)

    def commit(self) -> None:
        """Keep the new draws (call only after the guard charged them): a later run re-uses them."""
        folder = self.node_dir / RELEASES_DIR
        folder.mkdir(parents=True, exist_ok=True)
        for name, stored in self._pending.items():
            tmp = folder / f".{name}.{os.getpid()}.tmp"
            stored.frame.to_parquet(tmp, index=False)
            os.replace(tmp, folder / f"{name}.parquet")
            meta = {"digest": stored.digest, "noise_multiplier": stored.noise_multiplier,
                    "sensitivity": stored.sensitivity, "ledger_runs": stored.ledger_runs,
                    "periods": sorted(set(stored.frame["period"].astype(str)))}
            tmp.write_text(json.dumps(meta, indent=2))
            os.replace(tmp, folder / f"{name}.json")
        self._pending.clear()
