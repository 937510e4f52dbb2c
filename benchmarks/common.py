"""What the federation benchmarks share: their data, fresh benchmark nodes, in-process runs, scores.

Data and node directories live in a temporary work directory of the process (removed at exit), built
once per process: the synthetic cities from the generator and the contracts; the real UCI file through
contract `uci_communities`, split into regional nodes or block partners. Every federated run gets FRESH
node directories (empty ledgers) whose site policy has caps wide enough for the sweep: the benchmarks
measure utility; the policy tests are elsewhere. A fresh node's `features/` links to the member's built
features (a node reads only its own directory). Results (JSON) go to `runs/bench/`.

Torch runs single-threaded (child processes too, via OMP_NUM_THREADS): the models are tiny, and on a
shared 2-core machine two intra-op threads per process made DP-SGD steps up to 100x slower.
"""
from __future__ import annotations

import atexit
import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
import yaml

from federation.config import APP_ROOT, compose, configs_dir, to_container
from clients.contracts import NodeFeatures, build_features, load_contract, write_features
from clients.contracts.periods import month_index, month_label
from federation.dataset import Examples, held_out_mask
from federation.errors import ConfigError, PulseTwinError
from federation.messages import TaskSettings
from federation.model import BlockModel, build_model
from federation.task import TrainConfig, fit_blocks, predict, r2_mae
from federation.flower_config import encode, node_config as flower_node_config

RESULTS_DIR = APP_ROOT / "runs" / "bench"
UCI_DIR = APP_ROOT.parent / "shared" / "data" / "uci_communities_crime"
EPSILONS: tuple[float, ...] = (1.0, 3.0, 8.0)
# Synthetic nodes written by the generator; each is built with the contract of the same name.
CITY_NODES: tuple[str, ...] = ("police", "municipality", "buurtteams", "genk", "sant_boi", "piraeus")
CITIES: tuple[str, ...] = ("heerlen", "genk", "sant_boi", "piraeus")
# Benchmark site policy: wide caps and bounds, so that every setting of a sweep is released.
BENCH_PRIVACY = {"epsilon_per_year": 1000.0, "epsilon_lifetime": 1000.0}
BENCH_BOUNDS = {"min_noise_multiplier": 0.3, "max_sample_rate": 1.0, "min_rows_per_release": 1}

_WORK: list[Path] = []


def say(text: str) -> None:
    print(text, flush=True)


def single_threaded() -> None:
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)


def quiet_flower() -> None:
    """Flower's own log lines (strategy banners, per-round INFO) would drown the figures."""
    logging.getLogger("flwr").setLevel(logging.ERROR)


def work_dir() -> Path:
    """This process's temporary work directory (data, node directories, run directories)."""
    if not _WORK:
        _WORK.append(Path(tempfile.mkdtemp(prefix="pulse-twin-bench-")))
        atexit.register(shutil.rmtree, _WORK[0], True)
    return _WORK[0]


def compose_cfg(overrides: Sequence[str]) -> dict[str, Any]:
    return to_container(compose("config", list(overrides)))


# --- data ---------------------------------------------------------------------------------------

def _once(root: Path, stamp: dict[str, Any]) -> bool:
    """True if `root` already holds what `stamp` describes; otherwise clear it for a fresh build. Only a
    directory these benchmarks built (it has their marker) or an empty one is ever cleared."""
    marker = root / "built.json"
    if marker.is_file() and json.loads(marker.read_text()) == stamp:
        return True
    if root.is_dir() and any(root.iterdir()) and not marker.is_file():
        raise ConfigError(f"{root}: not a directory the benchmarks built; choose an empty one")
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    return False


def _done(root: Path, stamp: dict[str, Any]) -> Path:
    (root / "built.json").write_text(json.dumps(stamp))
    return root


def cities_data(root: Path | None = None, seed: int = 7, records: int = 150_000, months: int | None = 24,
                cities: Sequence[str] = CITIES, world: str = "default", rows_per_person: int | None = None) -> Path:
    """Synthetic raw records for the cities, every node's features built with its own contract, and
    Heerlen's coordinator label: the layout of `configs/federation/{cities,heerlen}.yaml`. `months=None`:
    the profiles' own window; `world`: the generator's world (e.g. "null": no lead at all);
    `rows_per_person`: every contract's `privacy_unit.max_rows_per_person` (a window longer than the
    contracts' bound needs it raised with it), else the contracts' own."""
    from devtools.synthetic.defaults import DEFAULT_PROFILES
    from devtools.synthetic.generator import generate
    from devtools.synthetic.profile import load as load_profile

    k = "" if rows_per_person is None else f"-k{rows_per_person}"
    root = root or work_dir() / f"cities-s{seed}-r{records}-m{months}{k}-{'-'.join(cities)}-{world}"
    stamp = {"seed": seed, "records": records, "months": months, "cities": list(cities), "world": world,
             "rows_per_person": rows_per_person}
    if _once(root, stamp):
        return root
    started = time.perf_counter()
    generate(out=root, cities=list(cities), seed=seed, records=records, months=months, world=world)
    for city in cities:
        for node in load_profile(DEFAULT_PROFILES, city).nodes:
            # the generated window (from 2019-01, the generator's default start), as a run sets it; the
            # profile's own window (months=None) is the contracts' own
            window = [] if months is None else \
                [f"periods.end={month_label(month_index('2019-01', 'start', ValueError) + months - 1)}"]
            if rows_per_person is not None:
                window.append(f"privacy_unit.max_rows_per_person={rows_per_person}")
            write_features(build_features(load_contract(node, window), root / node), root / node, accept=True)
    if "heerlen" in cities:
        heerlen = compose_cfg(["federation=heerlen", f"federation.data_root={root}"])["federation"]
        label = Path(heerlen["partners"][heerlen["label"]["partner"]]["node_dir"]) / "features" / "label.parquet"
        Path(heerlen["label"]["path"]).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(label, heerlen["label"]["path"])
    say(f"synthetic data: {', '.join(cities)}, ~{records:,} raw records (seed {seed}), features built in "
        f"{time.perf_counter() - started:.1f} s")
    return _done(root, stamp)


def built_window(node_dir: Path) -> list[str]:
    """The window a node's features were built on (its manifest), as overrides to rebuild on the same months with
    the same bound on a person's rows; for a node of a police export (`benchmarks.leicestershire`), the export's
    own window."""
    from benchmarks.leicestershire import contract_window

    prepared = contract_window(node_dir)
    if prepared:
        return prepared
    manifest = Path(node_dir) / "features" / "manifest.json"
    if not manifest.is_file():
        return []
    built = json.loads(manifest.read_text(encoding="utf-8"))
    periods = built["stats"]["periods"]
    if len(str(periods["first"])) != 7:   # a fixed period: no window
        return []
    k = (built.get("privacy_unit") or {}).get("max_rows_per_person")
    return [f"periods.start={periods['first']}", f"periods.end={periods['last']}",
            *([f"privacy_unit.max_rows_per_person={int(k)}"] if k is not None else [])]


def uci_features(source: Path = UCI_DIR) -> NodeFeatures:
    """The real UCI file through its data contract (blocks, label, partition by state and region)."""
    if not (source / "communities.data").is_file():
        raise ConfigError(f"{source}: the UCI Communities and Crime file (communities.data) is not there")
    return build_features(load_contract("uci_communities"), source)


def _write_node(node_dir: Path, blocks: Mapping[str, pd.DataFrame], label: pd.DataFrame | None) -> None:
    out = node_dir / "features"
    out.mkdir(parents=True, exist_ok=True)
    for name, frame in blocks.items():
        frame.to_parquet(out / f"{name}.parquet", index=False)
    if label is not None:
        label.to_parquet(out / "label.parquet", index=False)


def uci_regions_data(root: Path | None = None, uci: NodeFeatures | None = None) -> Path:
    """Node directories of `federation=uci_regions`: each census region's communities, every block, label."""
    root = root or work_dir() / "uci_regions"
    nodes = compose_cfg(["federation=uci_regions", f"federation.data_root={root}"])["federation"]["nodes"]
    stamp = {"federation": "uci_regions", "nodes": sorted(nodes)}
    if _once(root, stamp):
        return root
    uci = uci or uci_features()
    region_of = dict(zip(uci.partition["area_code"], uci.partition["region"].str.lower()))
    unknown = sorted(set(region_of.values()) - set(nodes))
    if unknown:
        raise ConfigError(f"configs/federation/uci_regions.yaml: no node for census region(s) {', '.join(unknown)}")
    for name, spec in nodes.items():
        def mine(frame: pd.DataFrame) -> pd.DataFrame:
            return frame[frame["area_code"].map(region_of) == name].reset_index(drop=True)

        _write_node(Path(spec["node_dir"]), {b: mine(f) for b, f in uci.blocks.items()}, mine(uci.label))
    return _done(root, stamp)


def uci_blocks_data(root: Path | None = None, uci: NodeFeatures | None = None) -> Path:
    """Partner directories of `federation=uci_blocks` (one block each; the label partner also holds the
    label) and the coordinator's `labels.parquet`."""
    root = root or work_dir() / "uci_blocks"
    fed = compose_cfg(["federation=uci_blocks", f"federation.data_root={root}"])["federation"]
    stamp = {"federation": "uci_blocks", "partners": sorted(fed["partners"])}
    if _once(root, stamp):
        return root
    uci = uci or uci_features()
    for name, spec in fed["partners"].items():
        _write_node(Path(spec["node_dir"]), {b: uci.blocks[b] for b in spec["blocks"]},
                    uci.label if name == fed["label"]["partner"] else None)
    Path(fed["label"]["path"]).parent.mkdir(parents=True, exist_ok=True)
    uci.label.to_parquet(fed["label"]["path"], index=False)
    return _done(root, stamp)


# --- benchmark nodes and in-process runs -------------------------------------------------------

def write_bench_policy(node_dir: Path, partner: str) -> None:
    """The default site policy with the benchmark's wide caps and bounds, and this code approved."""
    from federation.bundle import running_code_hash
    from clients.site_policy import append_approval

    policy = yaml.safe_load((configs_dir() / "site_policy" / "default.yaml").read_text())
    policy["partner"] = partner
    policy["privacy"].update(BENCH_PRIVACY)
    policy["bounds"].update(BENCH_BOUNDS)
    node_dir.mkdir(parents=True, exist_ok=True)
    (node_dir / "site_policy.yaml").write_text(yaml.safe_dump(policy))
    append_approval(node_dir, {"bundle_hash": running_code_hash(), "by": "benchmarks", "run": "any"})


def members(fed: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The federation's nodes (horizontal) or partners (vertical), by name, in configuration order."""
    return dict(fed.get("nodes") or fed.get("partners") or {})


def node_config(name: str, spec: Mapping[str, Any], data_dir: Path) -> dict[str, str]:
    """A node's `--node-config` on `data_dir`. A node reads only its own directory, so a fresh directory (an
    empty ledger) gets the member's built features as its own `features/` (a link to them)."""
    member = Path(spec["node_dir"]).resolve()
    if Path(data_dir).resolve() != member:
        link = Path(data_dir) / "features"
        if link.is_symlink() or link.exists():
            link.unlink() if link.is_symlink() else shutil.rmtree(link)
        link.symlink_to(member / "features", target_is_directory=True)
    return flower_node_config(name, data_dir)


def fresh_nodes(fed: Mapping[str, Any], ledgers: Path, only: Iterable[str] | None = None) -> dict[int, dict[str, str]]:
    """Node configs for the in-process grid: a new node directory (empty ledger) per member under
    `ledgers`, whose `features/` are the member's built features."""
    shutil.rmtree(ledgers, ignore_errors=True)
    wanted = None if only is None else set(only)
    configs = {}
    for node_id, (name, spec) in enumerate(members(fed).items(), start=10):
        if wanted is None or name in wanted:
            write_bench_policy(ledgers / name, name)
            configs[node_id] = node_config(name, spec, ledgers / name)
    return configs


def run_inprocess(overrides: Sequence[str], nodes: Mapping[int, Mapping[str, str]], run_dir: Path) -> Path:
    """One federation run on the in-process grid (the real ServerApp and ClientApp code); its run dir.
    A run that does not complete cleanly is an error: a benchmark figure needs every node's part."""
    from clients.app import app as client_app
    from server.app import run
    from devtools.inprocess_grid import InProcessGrid

    quiet_flower()
    shutil.rmtree(run_dir, ignore_errors=True)
    record = run(InProcessGrid(client_app, nodes), {"overrides": encode(list(overrides)), "run-name": run_dir.name,
                                                      "run-dir": str(run_dir)})   # progress: the record's progress.log
    status = json.loads((record.run_dir / "status.json").read_text())
    if status["state"] != "completed":
        raise PulseTwinError(f"benchmark run {run_dir.name} ended '{status['state']}': "
                             f"{status.get('error') or status.get('refusals')}")
    return record.run_dir


def privacy_epsilons(run_dir: Path) -> dict[str, float]:
    """Each node's epsilon as its own privacy report states it (recomputed from its ledger)."""
    return {p.stem: float(json.loads(p.read_text())["epsilon"]) for p in sorted((run_dir / "privacy").glob("*.json"))}


# --- examples, models, scores ------------------------------------------------------------------

def split_holdout(ex: Examples, task: TaskSettings) -> tuple[Examples, Examples]:
    """(training rows, held-out rows) of one node, with the fold assignment the node itself uses
    (`clients.node.Node.training_examples`: folds over the node's own areas)."""
    held_out = held_out_mask(ex.keys["area_code"], task.folds, task.split_seed, task.holdout_fold)
    return ex.subset(~held_out), ex.subset(held_out)


def load_run_model(run_dir: Path, task: TaskSettings) -> BlockModel:
    """The global model a horizontal run saved."""
    saved = torch.load(run_dir / "model.pt", weights_only=False)
    model = build_model(task.model_spec())
    model.load_state_dict(saved["state_dict"])
    return model


def pooled_model(train_ex: Examples, task: TaskSettings, train_cfg: Mapping[str, Any], seed: int,
                 blocks: Sequence[str] | None = None) -> BlockModel:
    """The yardstick's non-private model (configs/train settings) on `train_ex`, on `blocks` only if given
    (a partner's local-only model): `federation.task.fit_blocks`, as the yardstick trains it per fold."""
    blocks = tuple(blocks or train_ex.blocks)
    return fit_blocks(train_ex, blocks, task.model_spec(tuple(train_ex.blocks)), TrainConfig(**train_cfg), seed)


@dataclass
class Predictions:
    """Held-out predictions in label units, gathered over folds; scored together (like the yardstick)."""

    y: list[np.ndarray] = field(default_factory=list)
    pred: list[np.ndarray] = field(default_factory=list)

    def add(self, model: BlockModel, ex: Examples, task: TaskSettings) -> None:
        self.y.append(task.label.unscale(ex.y))
        self.pred.append(task.label.unscale(predict(model, ex)))

    def score(self) -> dict[str, float]:
        return r2_mae(np.concatenate(self.y), np.concatenate(self.pred))


# --- output ------------------------------------------------------------------------------------

def fmt(value: float | None, width: int = 8, digits: int = 3) -> str:
    return f"{'-':>{width}}" if value is None or not np.isfinite(value) else f"{value:>{width}.{digits}f}"


def write_json(name: str, data: Any) -> Path:
    """`runs/bench/<name>.json`: the figures a benchmark printed, as data."""
    path = RESULTS_DIR / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=float))
    return path


QUICK_FOLDS, FULL_FOLDS = (0,), (0, 1, 2, 3, 4)


def sweep_parser(prog: str, description: str, datasets: Sequence[str], member: str, example: str):
    """The options every sweep benchmark shares: mode, datasets, epsilons, folds and extra overrides."""
    import argparse

    p = argparse.ArgumentParser(prog=prog, description=description)
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="held-out fold 0 only (the default)")
    mode.add_argument("--full", action="store_true", help="all five folds: every area is held out once")
    p.add_argument("--datasets", nargs="+", choices=sorted(datasets), default=list(datasets),
                   help="which federations (default: both)")
    p.add_argument("--epsilons", nargs="+", type=float, default=list(EPSILONS),
                   help=f"target epsilons per {member} (default: 1 3 8)")
    p.add_argument("--folds", nargs="+", type=int, default=None,
                   help="held-out folds to run (instead of --quick/--full)")
    p.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE", dest="overrides",
                   help=f"extra Hydra overrides for every run, e.g. --set {example}")
    return p


def chosen_folds(args) -> tuple[int, ...]:
    return tuple(args.folds) if args.folds else (FULL_FOLDS if args.full else QUICK_FOLDS)
