"""Writing a node's features as versioned builds: a failed or suspicious build never replaces the last good one.

Every build is written whole to `features/builds/<build id>/` first (to a temporary directory, renamed when
complete). It becomes the node's features (`features/<block>.parquet`, `label.parquet`, `manifest.json`,
what the node releases from) only when it is accepted: when no feature moved far from the last accepted
build (`shift.py`), or when the operator says `--accept`. A held build stays beside the current features
for the operator to inspect; the previous accepted builds stay under `builds/` (the newest few).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
from pathlib import Path

import pandas as pd

from clients.contracts.builder import NodeFeatures
from clients.contracts.manifest import MANIFEST as MANIFEST_PATH, read_manifest
from clients.contracts.shift import ShiftChecks, feature_shifts, load_checks
from federation.errors import ConfigError, PulseTwinError

FEATURES_DIR = "features"
BUILDS_DIR = "builds"
MANIFEST = "manifest.json"


class BuildHeld(PulseTwinError):
    """A complete build moved too far from the last accepted one; it waits for `--accept`."""

    exit_code = 4


def _targets(features: NodeFeatures) -> dict[str, pd.DataFrame]:
    out = {f"{name}.parquet": frame for name, frame in features.blocks.items()}
    if features.label is not None:
        out["label.parquet"] = features.label
    if features.partition is not None:
        out["partition.parquet"] = features.partition
    return out


def _build_id(manifest: dict) -> str:
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    digest = hashlib.sha256(json.dumps(manifest, sort_keys=True, default=str).encode()).hexdigest()[:8]
    return f"{stamp}-{digest}"


def current_build(node_dir: Path | str) -> str | None:
    """The id of the node's accepted build (None before the first, or for a build of an older version)."""
    build = read_manifest(Path(node_dir) / MANIFEST_PATH).get("build")
    return build.get("id") if isinstance(build, dict) else None


def _stage(features: NodeFeatures, out: Path, manifest: dict) -> Path:
    """The whole build in `builds/<id>/`, or nothing (a half-written build is removed)."""
    final = out / BUILDS_DIR / manifest["build"]["id"]
    tmp = out / BUILDS_DIR / f".{final.name}.{os.getpid()}.tmp"
    try:
        tmp.mkdir(parents=True)
        for name, frame in _targets(features).items():
            frame.to_parquet(tmp / name, index=False)
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str) + "\n", encoding="utf-8")
        os.replace(tmp, final)
    except BaseException as err:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(err, OSError):
            raise ConfigError(f"{out}: cannot write features ({err.strerror or err}); nothing was replaced") from None
        raise
    return final


def _shifts(features: NodeFeatures, out: Path, checks: ShiftChecks) -> list[str]:
    lines: list[str] = []
    for name, frame in _targets(features).items():
        previous = out / name
        if name != "partition.parquet" and previous.is_file():
            lines += feature_shifts(name.removesuffix(".parquet"), pd.read_parquet(previous), frame, checks)
    return lines


def _promote(build: Path, out: Path, names: list[str]) -> list[Path]:
    """Copy the build over the current features: every file to a temporary name, then renamed (manifest last)."""
    staged: list[tuple[Path, Path]] = []
    try:
        for name in [*names, MANIFEST]:
            tmp = out / f".{name}.{os.getpid()}.tmp"
            shutil.copyfile(build / name, tmp)
            staged.append((tmp, out / name))
    except BaseException as err:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
        if isinstance(err, OSError):
            raise ConfigError(f"{out}: cannot write features ({err.strerror or err}); nothing was replaced") from None
        raise
    for tmp, final in staged:
        os.replace(tmp, final)
    return [final for _, final in staged]


def _drop_stale(out: Path, names: list[str]) -> None:
    """A build replaces the features as a whole: a block or label the contract no longer produces disappears
    (the node must never release a file of an earlier build beside the current one)."""
    for stale in sorted(set(p.name for p in out.glob("*.parquet")) - set(names)):
        (out / stale).unlink(missing_ok=True)


def _prune(out: Path, keep: int, protect: set[str]) -> None:
    builds = sorted(p for p in (out / BUILDS_DIR).iterdir() if p.is_dir() and not p.name.startswith("."))
    for old in builds[:-keep] if len(builds) > keep else []:
        if old.name not in protect:
            shutil.rmtree(old, ignore_errors=True)


def write_features(features: NodeFeatures, node_dir: Path | str, accept: bool = False) -> list[Path]:
    """Write a new build of the node's features; make it current unless a feature moved too far from the last
    accepted build and `accept` is False (then BuildHeld, and the current features stay). Returns the
    current feature files written."""
    out = Path(node_dir) / FEATURES_DIR
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"{out}: cannot create the features directory ({err.strerror})") from None
    checks = load_checks()
    # a column mostly clipped is held like a drifted build: the bounds hide a unit or scale mistake
    shifts = _shifts(features, out, checks) + list(features.stats.get("clipped") or [])
    previous = current_build(node_dir)
    manifest = {
        "privacy_unit": {"row": "area-period", "max_rows_per_person": features.privacy_unit_k},
        "suppressed_areas": features.suppressed_areas,
        "stats": features.stats,
        "files": sorted(_targets(features)),
        "build": {"id": "", "previous": previous, "shifts": shifts, "accepted_with_shifts": bool(shifts)},
    }
    manifest["build"]["id"] = _build_id(manifest)
    build = _stage(features, out, manifest)
    if shifts and not accept:
        listed = "\n  ".join(shifts)
        raise BuildHeld(
            f"the new build moved far from the last accepted one ({previous or 'the current features'}) or failed a "
            f"plausibility check:\n  {listed}\n"
            f"It is kept in {build} and NOT used: the node keeps releasing from the last accepted features. If the "
            "change is real (not a unit, locale or export mistake), re-run with --accept.")
    written = _promote(build, out, sorted(_targets(features)))
    _drop_stale(out, sorted(_targets(features)))
    _prune(out, checks.keep_builds, {build.name, previous or ""})
    return written
