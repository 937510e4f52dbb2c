"""The node's DP release of its blocks: one Gaussian release per private table, kept and re-used.

Where raw records become area aggregates, each private table's bounded series (counts and clipped sums
per (area, period) cell, `clients.contracts.series`) get Gaussian noise calibrated to one unit's L2
contribution, for the run's target (epsilon, delta) per unit. Noise comes from OpenDP's samplers
(`make_gaussian`: the discrete Gaussian on integer counts, OpenDP's floating-point-safe sampler on
sums), never from a seeded generator. Everything after the noise (rates, means, trailing means,
scaling, training, predictions) is post-processing.

Every released cell is kept on the node (`state/releases/<table>/<digest>.parquet` with its metadata, one
store per table and per release spec: series, unit, bounds, areas), and the store only grows: a later run
re-uses every cell already released, whatever its window, and draws only cells never released before. Moving
the window and back, or changing a bound and back, re-draws nothing and charges nothing again. Nothing is kept
until the egress guard has charged it: `commit()` after `send`. Public tables are not noised and not charged.
Stores written before this layout (`state/releases/<table>.parquet`) are still read and re-used.

A kept store that is gone is never replaced silently (`lost_runs`): before drawing cells of a table, the node
looks up which runs its privacy ledger and its egress log show charging a release of that table, and refuses,
naming the store and the runs, when a charge is not accounted for by a kept store (its `ledger_runs`). Drawing
those cells again would charge them twice and put a second, independent draw of the same cells beside the first
(whoever holds both averages the noise down). Two ways lead there: the store was deleted or moved (put it back:
it is re-used at no cost), or the node stopped between the charge and `commit()` (the guard charged and logged
the release, the payload may have left, its cells were never kept). In both cases the cells that may have left
are lost to the node and their charge rightly stays in the ledger. The only way forward is deliberate: the
operator names the table (`DpRelease(redraw_lost=...)`, `pulse-twin analytics --redraw-lost TABLE`), the
fresh draw is charged in full like any new release, the egress record of that run names the lost runs
(`redrawn`), and the new store lists them as `lost_runs`, so they are not asked about again.

What new cells are charged (`charge_of_new_cells`): one full Gaussian release of the table, i.e. sequential
composition, also when the new cells are months disjoint from every released one. Parallel composition would
need each unit to feed the released cells or the new ones, never both. The contract bounds a unit per release
(`max_cells` cells, `max_per_cell` records in each, within the build's window), not over the table's life: a
person active in a released month and in a new month contributes up to one full sensitivity to the old cells
(when they were drawn) and again up to one full sensitivity to the new ones, so together up to sqrt(2) times
it, which is exactly what the two Gaussian releases composed charge (mu^2 adds) and nothing less is a bound.
The same holds for a record unit: a record re-dated or corrected between two builds falls in an old month in
one and in a new month in the other. What is saved is what is sound: a released cell is never drawn again.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Collection
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


Z_COLUMN = "_noise_multiplier"   # per kept cell: the noise multiplier it was drawn at


@dataclass
class StoredRelease:
    """A table's released cells under one release spec (digest), as kept on the node: every cell ever drawn."""

    digest: str
    noise_multiplier: float      # of the latest draw (each cell's own is in Z_COLUMN)
    sensitivity: float
    frame: pd.DataFrame          # area_code, period, one column per series key, Z_COLUMN
    ledger_runs: list[str] = field(default_factory=list)
    # runs whose charge of the table no store holds any more, re-drawn on the operator's word (see module doc)
    lost_runs: list[str] = field(default_factory=list)


def _store_paths(node_dir: Path, table: str, digest: str) -> tuple[Path, Path]:
    folder = node_dir / RELEASES_DIR / table
    return folder / f"{digest}.json", folder / f"{digest}.parquet"


def _stored(node_dir: Path, table: str, digest: str) -> StoredRelease | None:
    """The store of `table` under this release spec; a store of the earlier layout (one file per table, the
    last window only) counts when its digest is the same."""
    for meta_path, data_path in (_store_paths(node_dir, table, digest),
                                 (node_dir / RELEASES_DIR / f"{table}.json", node_dir / RELEASES_DIR / f"{table}.parquet")):
        if not (meta_path.is_file() and data_path.is_file()):
            continue
        meta = _read_meta(meta_path)
        if meta["digest"] != digest:
            continue
        try:
            frame = pd.read_parquet(data_path)
        except (OSError, ValueError) as err:   # pyarrow's errors are ValueErrors (ArrowInvalid) or OSErrors
            raise _unreadable(data_path, err) from None
        try:
            kept = StoredRelease(meta["digest"], float(meta["noise_multiplier"]), float(meta["sensitivity"]), frame,
                                 list(meta.get("ledger_runs", [])), list(meta.get("lost_runs", [])))
        except (TypeError, ValueError, KeyError) as err:
            raise _unreadable(meta_path, err) from None
        if Z_COLUMN not in kept.frame.columns:   # earlier layout: every cell from one draw
            kept.frame = kept.frame.assign(**{Z_COLUMN: kept.noise_multiplier})
        kept.frame = kept.frame.astype({"area_code": str, "period": str})
        return kept
    return None


def _unreadable(path: Path, err: Exception) -> ConfigError:
    """A kept store's file that cannot be read, named: the release is never re-drawn in its place."""
    return ConfigError(f"{path}: the node's stored release is unreadable ({err}); it is never re-drawn silently: "
                       "move it aside only if the ledger shows the release was never sent")


def _read_meta(meta_path: Path) -> dict:
    """A kept store's metadata (`<digest>.json`); an unreadable one is named, never skipped."""
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError) as err:
        raise _unreadable(meta_path, err) from None
    if not isinstance(meta, dict) or "digest" not in meta:
        raise _unreadable(meta_path, ValueError("no 'digest' field"))
    return meta


def _store_files(node_dir: Path, table: str) -> list[tuple[Path, Path]]:
    """Every kept store of `table` (metadata, cells), whatever its release spec, the earlier layout included."""
    folder = node_dir / RELEASES_DIR / table
    pairs = [(meta, meta.with_suffix(".parquet")) for meta in sorted(folder.glob("*.json"))] if folder.is_dir() else []
    legacy = node_dir / RELEASES_DIR / f"{table}.json"
    return pairs + ([(legacy, legacy.with_suffix(".parquet"))] if legacy.is_file() else [])


def runs_charging(node_dir: Path, table: str) -> dict[str, Path]:
    """Runs that charged a release of `table` on this node (run -> the file that shows it): the privacy ledger's
    Gaussian releases of the table and the egress log's released records of them. Both are read, so that a
    deleted ledger or a shortened log alone cannot make a charge unknown; a ledger that cannot be read is left
    to the guard, which refuses everything until `node recover-ledger` (rule ledger-vouch)."""
    from dp_accounting import PrivacyLedger, ledger_path
    from clients.egress.log import LOG_FILE

    runs: dict[str, Path] = {}
    path = ledger_path(node_dir)
    if path.is_file():
        try:
            with PrivacyLedger(path, create=False) as ledger:
                history = ledger.history()
        except ConfigError:
            history = []
        runs.update((r.run_id, path) for r in history if r.mechanism == "gaussian" and r.kind == KIND and r.table == table)
    log = node_dir / LOG_FILE
    lines = log.read_text(encoding="utf-8").splitlines() if log.is_file() else []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue   # a torn or forged line: the guard names it and refuses
        if not isinstance(record, dict) or record.get("status") != "released":
            continue
        for r in record.get("releases") or []:
            if isinstance(r, dict) and r.get("mechanism") == "gaussian" and r.get("kind") == KIND \
                    and r.get("table") == table and isinstance(r.get("run_id"), str):
                runs.setdefault(r["run_id"], log)
    return runs


def lost_runs(node_dir: Path, table: str) -> dict[str, Path]:
    """Charges of `table` (run -> the file that shows it) that no kept store accounts for: the store whose
    `ledger_runs` named the run is gone (its cells file or the whole store), and no store lists the run as
    re-drawn on the operator's word (`lost_runs`). Empty when a store does not say which runs charged it (a
    store written before stores named them): then no charge can be told missing."""
    accounted: set[str] = set()
    for meta_path, data_path in _store_files(node_dir, table):
        meta = _read_meta(meta_path)
        if "ledger_runs" not in meta:
            return {}
        accounted.update(meta.get("lost_runs", []))
        if data_path.is_file():
            accounted.update(meta["ledger_runs"])
    return {run: where for run, where in runs_charging(node_dir, table).items() if run not in accounted}


def lost_text(node_dir: Path, table: str, lost: dict[str, Path]) -> str:
    """Why a table is not drawn again, naming the missing store, the runs that charged it and the way forward."""
    folder = node_dir / RELEASES_DIR / table
    missing = [data for meta, data in _store_files(node_dir, table)
               if not data.is_file() and set(_read_meta(meta).get("ledger_runs", [])) & set(lost)]
    where = (", ".join(f"{m} is missing" for m in missing) if missing
             else f"{folder} holds no store naming {'it' if len(lost) == 1 else 'them'}"
             + ("" if folder.is_dir() else " (the folder is gone)"))
    shown = "; ".join(f"run {run} (in {path})" for run, path in sorted(lost.items()))
    return (f"table {table}: this node charged a release of it in {shown}, but its kept cells are gone: {where}. "
            "The node does not draw them again: that would charge them a second time and put a second, independent "
            "draw of the same cells beside the first. If the store was moved or deleted, put it back (it is re-used "
            "at no cost). If it is really lost (deleted, or the node stopped between the charge and keeping the "
            f"store), draw afresh deliberately with `pulse-twin analytics ... --redraw-lost {table}`: the new draw "
            "is charged in full again (the earlier charge stays in the ledger), and the egress log records which "
            "lost run(s) it replaces")


def charge_of_new_cells(agg: TableAggregate, z: float, run_id: str, table: str) -> Release:
    """The charge for drawing cells never released before: one full Gaussian release of the table at noise
    multiplier z and the table's whole L2 sensitivity (sequential composition; why not parallel composition
    over disjoint months: the module's docstring)."""
    return Release(mechanism="gaussian", noise_multiplier=z, sample_rate=1.0, steps=1, unit=unit_text(agg),
                   run_id=run_id, round=0, kind=KIND, table=table, sensitivity=agg.sensitivity)


class DpRelease:
    """The release step `build_features(..., release=...)` calls: noise the private tables, or re-use.

    After the payload went through the guard (which charges `charges`), `commit()` keeps the new draws.
    """

    def __init__(self, node_dir: Path, epsilon: float, delta: float, run_id: str, accountant: str = "prv",
                 keep: bool = True, redraw_lost: Collection[str] = ()) -> None:
        if not (isinstance(epsilon, (int, float)) and epsilon > 0):
            raise ConfigError(f"target epsilon per unit must be a number > 0, got {epsilon!r}")
        self.node_dir, self.epsilon, self.delta, self.run_id = Path(node_dir), float(epsilon), float(delta), run_id
        self.accountant, self.keep = accountant, keep
        self.charges: list[Release] = []
        self.reused: list[str] = []
        self.records = 0
        self.report: dict[str, dict] = {}
        self._pending: dict[str, StoredRelease] = {}
        self.used: dict[str, StoredRelease | None] = {}
        # tables whose lost store the operator has acknowledged (see the module doc), and which lost runs each
        # draw of this release replaces (for the egress record)
        self.redraw_lost = frozenset(redraw_lost)
        self.redrawn: dict[str, list[str]] = {}

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
            stored = _stored(self.node_dir, name, digest) if self.keep else None
            self.used[name] = stored
            out[name] = self._noised(name, agg, keys, digest, stored)
        return out

    def charged_runs(self, table: str) -> list[str]:
        """The runs that charged the stored cells this build re-used of `table` (empty: nothing re-used)."""
        stored = self.used.get(table)
        return [] if stored is None else list(stored.ledger_runs)

    def _noised(self, name: str, agg: TableAggregate, keys: pd.DataFrame, digest: str,
                stored: StoredRelease | None) -> TableAggregate:
        columns = [s.key for s in agg.series]
        kept = pd.DataFrame(columns=["area_code", "period", *columns, Z_COLUMN])
        if stored is not None and set(columns) <= set(stored.frame.columns):
            kept = stored.frame[["area_code", "period", *columns, Z_COLUMN]]
        merged = keys.merge(kept.assign(_old=True), on=["area_code", "period"], how="left")
        new = merged["_old"].isna().to_numpy()
        values = {key: merged[key].to_numpy(dtype=np.float64, na_value=np.nan) for key in columns}
        z_cell = merged[Z_COLUMN].to_numpy(dtype=np.float64, na_value=np.nan)
        weights = agg.weights()
        if new.any():
            lost = self._lost(name)
            z = self.noise_multiplier()
            for s in agg.series:
                exact = agg.values[s.key][new]
                values[s.key][new] = opendp_gaussian(exact, z * agg.sensitivity * weights[s.key],
                                                     integer=s.values is None)
            z_cell[new] = z
            self.charges.append(charge_of_new_cells(agg, z, self.run_id, name))
            drawn = keys[new].assign(**{key: values[key][new] for key in columns}, **{Z_COLUMN: z})
            # the store keeps every cell ever drawn, inside this window or not
            frame = pd.concat([kept, drawn], ignore_index=True) if len(kept) else drawn.reset_index(drop=True)
            self._pending[name] = StoredRelease(digest, z, agg.sensitivity, frame,
                                                (stored.ledger_runs if stored else []) + [self.run_id],
                                                sorted({*(stored.lost_runs if stored else []), *lost}))
        else:
            self.reused.append(name)
        # per cell: a kept cell carries the noise it was drawn with, a new cell this draw's
        noise_sd = {key: z_cell * agg.sensitivity * weights[key] for key in columns}
        self.report[name] = {**agg.stats, "unit_text": unit_text(agg), "noise_multiplier": float(np.min(z_cell, initial=np.inf)),
                             "new_cells": int(new.sum()), "reused_cells": int((~new).sum()),
                             # the largest per-cell noise sd of the window (cells drawn at several noise
                             # multipliers): a bound for whoever sums cells
                             "noise_sd": {key: float(np.max(sd, initial=0.0)) for key, sd in noise_sd.items()}}
        return replace(agg, values=values, noise_sd=noise_sd)

    def _lost(self, table: str) -> list[str]:
        """The lost runs a new draw of `table` replaces (empty: none); refuses unless the operator named the table."""
        if not self.keep:
            return []
        lost = lost_runs(self.node_dir, table)
        if lost and table not in self.redraw_lost:
            raise ConfigError(f"{self.node_dir}: {lost_text(self.node_dir, table, lost)}")
        if lost:
            self.redrawn[table] = sorted(lost)
        return sorted(lost)

    def commit(self) -> None:
        """Keep the new draws with every cell kept before (call only after the guard charged them): later runs
        re-use them."""
        for name, stored in self._pending.items():
            meta_path, data_path = _store_paths(self.node_dir, name, stored.digest)
            meta_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = meta_path.parent / f".{stored.digest}.{os.getpid()}.tmp"
            stored.frame.to_parquet(tmp, index=False)
            os.replace(tmp, data_path)
            meta = {"digest": stored.digest, "noise_multiplier": stored.noise_multiplier,
                    "sensitivity": stored.sensitivity, "ledger_runs": stored.ledger_runs,
                    **({"lost_runs": stored.lost_runs} if stored.lost_runs else {}),
                    "periods": sorted(set(stored.frame["period"].astype(str)))}
            tmp.write_text(json.dumps(meta, indent=2))
            os.replace(tmp, meta_path)
        self._pending.clear()
