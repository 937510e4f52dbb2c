"""Vertical (split) federation: held-out R² of the federated DP model against the yardstick.

For (a) Heerlen's three partners (police, municipality, buurtteams; synthetic) and (b) the real UCI
Communities and Crime data split into three block partners (census, police, social services), per
held-out fold k and per target epsilon (per partner, delta 1e-5):

- federated DP: one run of the real ServerApp and ClientApp code on the in-process grid (PSI
  alignment, noised embeddings, the coordinator's fusion head) with `holdout_fold=k`; the run itself
  reports R² on the held-out areas of its aligned rows (`evaluation.json`);
- yardstick, on the same aligned rows and the same held-out areas: the pooled non-private model on
  every block, and each partner alone on its own blocks (non-private; configs/train settings). The best
  single partner is shown beside the pooled.

Over several folds, R² is computed over the held-out rows of all folds together (the run's per-fold R²
and row count give its squared error; the labels are the coordinator's). PSI throughput is
`benchmarks.psi_throughput`.

    python -m benchmarks.vertical [--quick | --full] [--datasets heerlen uci_blocks] [--epsilons 1 3 8]
                                  [--folds 0 1 2 3 4] [--set KEY=VALUE ...]
"""
from __future__ import annotations

import json
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from benchmarks import common
from benchmarks.common import Predictions, chosen_folds, fmt, say, sweep_parser
from federation.dataset import Examples, LabelSpec, make_examples, read_node_features
from federation.errors import PulseTwinError
from federation.messages import TaskSettings
from server.vertical import task_settings

DATASETS: dict[str, tuple[str, Callable[[], Path]]] = {
    "heerlen": ("heerlen", common.cities_data),
    "uci_blocks": ("uci_blocks", common.uci_blocks_data),
}
# The run configuration of every run: configs/config.yaml (vertical: configs/vertical/default.yaml).
RUN_OVERRIDES: tuple[str, ...] = ("node_wait_s=5",)


def aligned_examples(cfg: dict[str, Any]) -> tuple[Examples, dict[str, list[str]]]:
    """Every partner's blocks with the coordinator's label, on the rows that every partner holds (the
    rows PSI aligns), and the blocks of each partner."""
    fed = cfg["federation"]
    blocks, groups = {}, {}
    for name, spec in fed["partners"].items():
        got, _ = read_node_features(Path(spec["node_dir"]), list(spec["blocks"]))
        blocks.update(got)
        groups[name] = list(spec["blocks"])
    label = pd.read_parquet(fed["label"]["path"])
    spec = LabelSpec(float(fed["label"]["center"]), float(fed["label"]["scale"]), int(fed["label"]["shift"]))
    ex = make_examples(blocks, [b for g in groups.values() for b in g], label, spec)
    return ex.subset(ex.present.all(axis=1)), groups


class RunScores:
    """The federated run's held-out R² per fold, combined over folds: each fold's squared error is
    (1 - R²) times the sum of squares of its labels about their mean."""

    def __init__(self) -> None:
        self.y: list[np.ndarray] = []
        self.r2: list[float] = []
        self.mae: list[float] = []

    def add(self, evaluation: dict[str, float], y: np.ndarray) -> None:
        if int(evaluation["n"]) != len(y):
            raise PulseTwinError(f"the run scored {evaluation['n']} held-out rows, the yardstick has {len(y)}")
        self.y.append(y)
        self.r2.append(float(evaluation["r2"]))
        self.mae.append(float(evaluation["mae"]))

    def score(self) -> dict[str, float]:
        ss_res = sum((1 - r2) * float(np.sum((y - y.mean()) ** 2)) for r2, y in zip(self.r2, self.y))
        every = np.concatenate(self.y)
        n = [len(y) for y in self.y]
        return {"r2": 1 - ss_res / float(np.sum((every - every.mean()) ** 2)),
                "mae": float(np.dot(self.mae, n) / sum(n)), "n": int(sum(n))}


def overrides_for(dataset: str, root: Path, fold: int, extra: Sequence[str]) -> list[str]:
    return [f"federation={DATASETS[dataset][0]}", f"federation.data_root={root}", f"holdout_fold={fold}",
            *RUN_OVERRIDES, *extra]


def run_fold(dataset: str, root: Path, fold: int, epsilons: Sequence[float], extra: Sequence[str],
             scores: dict, reached: dict) -> None:
    """One held-out fold: a federated run per epsilon, then the yardstick on its held-out areas."""
    base = overrides_for(dataset, root, fold, extra)
    cfg = common.compose_cfg(base)
    ex, groups = aligned_examples(cfg)
    task: TaskSettings = task_settings(cfg, "bench", ex.blocks)
    work = common.work_dir() / "vertical" / dataset / f"fold{fold}"
    held_areas: set[str] | None = None
    for eps in epsilons:
        started = time.perf_counter()
        run_dir = common.run_inprocess([*base, f"dp.target_epsilon={eps:g}"],
                                       common.fresh_nodes(cfg["federation"], work / f"e{eps:g}" / "nodes"),
                                       work / f"e{eps:g}" / "run")
        evaluation = json.loads((run_dir / "evaluation.json").read_text())
        areas = set(evaluation["holdout_areas"])
        if held_areas is not None and areas != held_areas:
            raise PulseTwinError(f"{dataset} fold {fold}: runs held out different areas")
        held_areas = areas
        held = ex.keys["area_code"].isin(areas).to_numpy()
        scores[("federated", eps)].add(evaluation["federated_dp_holdout"], task.label.unscale(ex.y[held]))
        for name, value in common.privacy_epsilons(run_dir).items():
            reached[eps][name] = max(value, reached[eps].get(name, 0.0))
        say(f"  {dataset} fold {fold}, epsilon {eps:g}: vertical run in {time.perf_counter() - started:.0f} s")
    assert held_areas is not None
    held = ex.keys["area_code"].isin(held_areas).to_numpy()
    train, test = ex.subset(~held), ex.subset(held)
    jobs = {"pooled": list(ex.blocks), **{f"{name} alone": blocks for name, blocks in groups.items()}}
    for model_name, blocks in jobs.items():
        model = common.pooled_model(train, task, cfg["train"], int(cfg["seed"]), blocks)
        scores[model_name].add(model, test.only_blocks(blocks), task)


def benchmark(dataset: str, epsilons: Sequence[float], folds: Sequence[int], extra: Sequence[str]) -> dict[str, Any]:
    root = DATASETS[dataset][1]()
    scores: dict = defaultdict(Predictions)
    for eps in epsilons:
        scores[("federated", eps)] = RunScores()
    reached: dict = defaultdict(dict)
    started = time.perf_counter()
    for k in folds:
        run_fold(dataset, root, k, epsilons, extra, scores, reached)
    cfg = common.compose_cfg(overrides_for(dataset, root, -1, extra))
    yardstick = {name: s.score() for name, s in scores.items() if isinstance(name, str)}
    partners = {name: m for name, m in yardstick.items() if name != "pooled"}
    best = max(partners, key=lambda name: partners[name]["r2"])
    return {
        "dataset": dataset, "federation": DATASETS[dataset][0], "folds": list(folds), "epsilons": list(epsilons),
        "of_folds": int(cfg["folds"]),
        "delta": float(cfg["dp"]["delta"]), "overrides": [*RUN_OVERRIDES, *extra],
        "yardstick": yardstick, "best_single_partner": best,
        "federated": {f"{e:g}": scores[("federated", e)].score() for e in epsilons},
        "epsilon_reached": {f"{e:g}": reached[e] for e in epsilons},
        "seconds": round(time.perf_counter() - started, 1),
    }


def table(result: dict[str, Any]) -> str:
    y = result["yardstick"]
    head = f"{'model':<46} {'R²':>8} {'MAE':>8} {'rows':>6}"
    folds = ", ".join(map(str, result["folds"]))
    lines = [f"{result['dataset']}: R² on held-out areas of the aligned rows (folds {folds} of {result['of_folds']}), "
             f"target epsilon per partner, delta {result['delta']:g}", head, "-" * len(head)]

    def row(name: str, m: dict[str, float]) -> str:
        return f"{name:<46} {fmt(m['r2'])} {fmt(m['mae'])} {m['n']:>6d}"

    lines.append(row("pooled (all blocks, non-private)", y["pooled"]))
    best = result["best_single_partner"]
    lines.append(row(f"best single partner: {best} (non-private)", y[best]))
    lines += [row(f"  {name} (non-private)", m) for name, m in y.items() if name not in ("pooled", best)]
    for e, m in result["federated"].items():
        eps = ", ".join(f"{p} {v:.2f}" for p, v in result["epsilon_reached"][e].items())
        lines.append(row(f"federated DP, target epsilon {e}", m) + f"   (reached: {eps})")
    top = list(result["federated"])[-1]
    fed, pooled, single = result["federated"][top]["r2"], y["pooled"]["r2"], y[best]["r2"]
    ratio = fed / pooled if pooled > 0 else float("nan")
    lines.append(f"at epsilon {top}: federated / pooled R² = {ratio:.2f}; federated "
                 f"{'beats' if fed > single else 'does not beat'} the best single partner ({fed:.3f} vs {single:.3f}); "
                 f"{result['seconds']:.0f} s")
    return "\n".join(lines)


def parser():
    return sweep_parser("python -m benchmarks.vertical", __doc__.split("\n\n")[0], DATASETS, "partner",
                        "vertical.exchanges=8")


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    folds = chosen_folds(args)
    common.single_threaded()
    try:
        results = {}
        for dataset in args.datasets:
            say(f"== vertical federation: {dataset} (folds {', '.join(map(str, folds))}; "
                f"epsilons {', '.join(f'{e:g}' for e in args.epsilons)})")
            results[dataset] = benchmark(dataset, args.epsilons, folds, args.overrides)
            say(table(results[dataset]))
    except PulseTwinError as err:
        print(f"benchmarks.vertical: {err}", file=sys.stderr)
        return err.exit_code
    say(f"written: {common.write_json('vertical-' + ('full' if args.full else 'quick'), results)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
