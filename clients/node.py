"""What a node knows about itself: its directory, its built features, its guard and its run plans.

Everything here comes from the node's own disk and its `--node-config`, never from the server:
`data-dir` (the node directory), `partner` (its name) and optionally `feature-dirs` (only ever its own
directory: a node trains on the features it built itself; federation/flower_config.py refuses any other).
"""
from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

import pandas as pd
from flwr.app import ConfigRecord, Context, Message, RecordDict

from dp_accounting import Release
from federation.blocks import BlockSchema, local_blocks
from federation.bundle import running_code_hash
from federation.dataset import Examples, held_out_mask, make_examples
from clients.egress import Egress, EgressGuard, payload_digest
from clients.site_policy import RuleRefusal
from federation.errors import ConfigError
from federation.messages import TaskSettings, payload_fields
from federation.flower_config import feature_dirs, own_feature_dirs, sim_nodes


@dataclass(frozen=True)
class Node:
    name: str
    node_dir: Path
    feature_dirs: tuple[Path, ...]

    @classmethod
    def from_config(cls, node_config: Mapping[str, object]) -> "Node":
        if "data-dir" not in node_config:
            raise ConfigError("node config lacks 'data-dir' (start the node with `pulse-twin node start --node-dir DIR`)")
        node_dir = Path(str(node_config["data-dir"])).resolve()
        if not node_dir.is_dir():
            raise ConfigError(f"node data directory {node_dir} does not exist")
        name = str(node_config.get("partner", node_dir.name))
        dirs = own_feature_dirs(name, node_dir, feature_dirs(node_config)) or (node_dir,)
        return cls(name, node_dir, dirs)

    @classmethod
    def from_context(cls, context) -> "Node":
        """The node this ClientApp serves. On a SuperNode that is its --node-config; under Flower's
        simulation engine a virtual node has only a `partition-id`, which picks its entry in the run
        config's `sim-nodes` (federation/flower_config.py)."""
        config = dict(context.node_config)
        if "data-dir" not in config and "partition-id" in config:
            specs = sim_nodes(context.run_config)
            index = int(config["partition-id"])
            if index >= len(specs):
                raise ConfigError(f"simulation: virtual node {index} has no entry in run config 'sim-nodes'")
            config = specs[index]
        return cls.from_config(config)

    def _feature_file(self, name: str) -> Path | None:
        for d in self.feature_dirs:
            path = d / "features" / f"{name}.parquet"
            if path.is_file():
                return path
        return None

    def available_blocks(self, wanted: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(b for b in wanted if self._feature_file(b) is not None)

    def blocks(self, wanted: tuple[str, ...]) -> dict[str, pd.DataFrame]:
        """The node's built blocks among `wanted` (a missing block is simply absent)."""
        return {b: _read_features(self._feature_file(b)) for b in self.available_blocks(wanted)}

    def person_rows(self) -> tuple[int | None, str | None]:
        """k, the most area-period rows one person appears in, from the node's own features manifest (its
        contract's `max_rows_per_person`); (None, None) when no manifest says it: never a silent 1."""
        from clients.contracts.manifest import MANIFEST, read_manifest

        for d in self.feature_dirs:
            try:
                k = read_manifest(d / MANIFEST)["privacy_unit"]["max_rows_per_person"]
                return int(k), f"{d / MANIFEST} (privacy_unit.max_rows_per_person)"
            except (ConfigError, KeyError, TypeError, ValueError):
                continue
        return None, None

    def label(self) -> pd.DataFrame | None:
        path = self._feature_file("label")
        return None if path is None else _read_features(path)

    def schemas(self, task: TaskSettings) -> dict[str, BlockSchema]:
        """The node-local block schemas of the run: the node's own (`<node dir>/blocks/`) for the blocks it
        declares, the run's for blocks only other nodes hold. A run whose schema of one of this node's own
        blocks differs from the node's file is refused: the node's features would mean something else."""
        mine = local_blocks(self.node_dir)
        run = task.local_schemas()
        for name in task.blocks:
            if name in mine and name in run and run[name].sha256 != mine[name].sha256:
                raise RuleRefusal("block_schemas", f"the run's schema of block '{name}' is not this node's "
                                  f"{mine[name].source} (hash {run[name].sha256[:12]}... vs "
                                  f"{mine[name].sha256[:12]}...); the node's approval covers its own file",
                                  where="rule")
        return {**run, **{n: s for n, s in mine.items() if n in task.blocks}}

    def training_examples(self, task: TaskSettings) -> Examples:
        """This node's labelled rows for the task; areas of the held-out fold are left out."""
        blocks = self.blocks(task.blocks)
        if not blocks:
            raise ConfigError(f"node '{self.name}': none of the blocks {', '.join(task.blocks)} is built "
                              f"under {', '.join(str(d) for d in self.feature_dirs)} (run `pulse-twin features`)")
        label = self.label()
        if label is None:
            raise ConfigError(f"node '{self.name}': no label.parquet under its feature directories")
        ex = make_examples(blocks, task.blocks, label, task.label, local=self.schemas(task))
        ex = self._twin_if_dry(ex, task)
        return ex.subset(~held_out(ex, task)) if task.holdout_fold >= 0 else ex

    def heldout_examples(self, task: TaskSettings) -> Examples:
        """This node's labelled rows of the held-out fold's areas: what `training_examples` leaves out."""
        if task.holdout_fold < 0:
            raise ConfigError(f"node '{self.name}': the run holds out no areas (holdout_fold = -1), so there is "
                              "nothing to evaluate on; run with holdout_fold=K (0 to folds-1)")
        blocks, label = self.blocks(task.blocks), self.label()
        if not blocks or label is None:
            raise ConfigError(f"node '{self.name}': no built blocks or no label.parquet to evaluate on")
        ex = make_examples(blocks, task.blocks, label, task.label, local=self.schemas(task))
        return self._twin_if_dry(ex, task).subset(held_out(ex, task))

    def _twin_if_dry(self, ex: Examples, task: TaskSettings) -> Examples:
        if not task.dry_run:
            return ex
        from clients.twin import twin

        return twin(ex, self.name)

    def charge_ledger(self, task: TaskSettings, guard: EgressGuard):
        """The ledger a run's releases are charged to: the node's own, or for a dry run (synthetic twin) a
        separate one under state/dry-run/, so the run's would-be epsilon is still computed from a history."""
        if not task.dry_run:
            return guard.ledger
        from dp_accounting import PrivacyLedger

        path = self.node_dir / "state" / "dry-run" / "ledger.sqlite"
        path.parent.mkdir(parents=True, exist_ok=True)
        return PrivacyLedger(path)

    def run_plan(self, run_id: str, make: Callable[[], dict]) -> dict:
        """The node's plan for a run, made once and kept on disk so no later round can change it
        (e.g. the noise multiplier calibrated for the whole schedule)."""
        path = self.node_dir / "state" / "runs" / f"{_safe(run_id)}.json"
        if path.is_file():
            return json.loads(path.read_text())
        plan = make()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(plan, indent=2))
        os.replace(tmp, path)
        return plan


    def reply_path(self, run_id: str, rnd: int) -> Path:
        """Where the node keeps a round's model update until the run is over (see `clients.horizontal`)."""
        return self.node_dir / "state" / "runs" / _safe(run_id) / f"round-{rnd}.pt"


def _read_features(path: Path) -> pd.DataFrame:
    """A built features file, read once per process while it stays the same file (a worker process of the
    simulation engine answers many nodes' rounds); a rebuilt or accepted build is read again."""
    stat = path.stat()
    return _read_parquet(str(path), stat.st_mtime_ns, stat.st_size, stat.st_ino).copy()


@functools.lru_cache(maxsize=2048)
def _read_parquet(path: str, mtime_ns: int, size: int, inode: int) -> pd.DataFrame:
    return pd.read_parquet(path)


ACCOUNTANT_STATE = "accountant"


def recall_accountant(context: Context) -> None:
    """Recall the accountant values this node kept in its run state (`keep_accountant`): under the simulation
    engine a node's messages go to any worker process, and recomputing them cost most of a round."""
    from dp_accounting.accountants import recall

    if ACCOUNTANT_STATE in context.state:
        recall(json.loads(str(context.state[ACCOUNTANT_STATE]["memo"])))


def keep_accountant(context: Context, history: Sequence[Release]) -> None:
    """Keep the accountant values of this node's release history in its run state, as plain data. The run
    state lives in the node's own memory (Flower never fills it from a message); the values are those of pure
    functions of the history, so the ledger stays the only record and epsilon is still recomputed from it."""
    from dp_accounting.accountants import memo_of

    context.state[ACCOUNTANT_STATE] = ConfigRecord({"memo": json.dumps(memo_of(history))})


def held_out(ex: Examples, task: TaskSettings):
    """Which rows of `ex` belong to the held-out fold's areas (folds over the node's own areas)."""
    return held_out_mask(ex.keys["area_code"], task.folds, task.split_seed, task.holdout_fold)


def run_key(run_name: object, context: Context) -> str:
    """The node's name for a run in its ledger and egress log: the run name and the approved proposal it
    executes. A re-launch of the same approved run (after the SuperLink was lost) therefore continues the
    run's accounting and its calibrated noise, and a round already released is not released again; without
    a proposal (in-process tests) Flower's run id stands in."""
    proposal = str(context.run_config.get("proposal-sha256", "") or "")
    return f"{run_name}#{proposal[:12] if proposal else context.run_id}"


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def send(
    msg: Message,
    content: RecordDict,
    guard: EgressGuard,
    *,
    run_id: str,
    round: int,
    kind: str,
    run_kind: str,
    charges: Sequence[Release] = (),
    rows: int | None = None,
    params: Mapping[str, object] | None = None,
    facts: Mapping[str, object] | None = None,
) -> Message:
    """The only way a node replies: the guard checks the payload's fields against its kind's allow-list,
    checks, charges and logs the exact payload, or refuses."""
    sha, nbytes = payload_digest(content)
    guard.release(Egress(run_id=run_id, round=round, kind=kind, run_kind=run_kind, payload_sha256=sha,
                         payload_bytes=nbytes, charges=list(charges), rows=rows, params=dict(params or {}),
                         bundle_hash=running_code_hash(), facts=dict(facts or {}),
                         fields=payload_fields(content)))
    return Message(content, reply_to=msg)
