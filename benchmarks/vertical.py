"""Vertical federation on person-level DP releases: held-out R² against the yardstick, per epsilon.

For each dataset and each target epsilon per unit, every partner releases its blocks once with the
node's own release code (`clients.release.DpRelease`: bounds on the raw records, OpenDP Gaussian noise
per private table); the label partner releases the label the same way. The coordinator's model is
trained on the released blocks and label (5-fold cross-validation over areas), after the shared
feature pipeline (trailing means over `trailing_periods`, on released blocks the shrinkage of
`vertical.shrinkage` by the release's known noise, the blocks' public scaling), and scored
against the EXACT label of the held-out areas. The yardstick gets the same pipeline on the exact
(bounded, un-noised) blocks: the pooled model on every block, and each partner alone. Each partner
alone is also trained on its own DP release, at the same epsilon. The ratio federated / pooled
measures what privacy costs.

    python -m benchmarks.vertical [--datasets heerlen leicestershire] [--epsilons 0.5 1 3 8]
                                  [--window 24] [--folds 5] [--draws 3] [--seed 0] [--set KEY=VALUE ...]

Datasets: `heerlen` (synthetic, CBS-calibrated: police, municipality, buurtteams; label: the DP survey)
and `leicestershire` (301,838 real street-level crime records, one record as the unit; see
docs/raw-records.md). Prints one table per dataset and writes runs/bench/vertical.json.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from benchmarks import common
from benchmarks.common import say
from clients.release import DpRelease
from clients.contracts import build_features, load_contract
from federation.dataset import LabelSpec, aligned_label, area_folds, make_examples
from federation.shrinkage import ShrinkageConfig, released_features
from federation.task import TrainConfig, r2_mae
from devtools.yardstick import model_spec
from federation.task import cross_validated

EPSILONS = (0.5, 1.0, 3.0, 8.0)
DELTA = 1e-5


def heerlen_root() -> Path:
    return common.cities_data(cities=("heerlen",))


def leicestershire_root() -> Path:
    from benchmarks.leicestershire import prepare

    root = common.work_dir() / "leicestershire"
    if not (root / ".done").is_file():
        prepare(root)
        (root / ".done").write_text("prepared\n")
    return root


DATASETS: dict[str, tuple[str, Callable[[], Path]]] = {
    "heerlen": ("heerlen", heerlen_root),
    "leicestershire": ("leicestershire", leicestershire_root),
}


def partner_releases(fed: dict[str, Any], epsilon: float | None, tag: str
                     ) -> tuple[dict[str, dict[str, pd.DataFrame]], pd.DataFrame, dict[str, pd.DataFrame]]:
    """Each partner's blocks (exact when `epsilon` is None, else its DP release), the label, and per block
    each feature's noise sd per cell as the release states it (empty when exact)."""
    blocks, label, noise = {}, None, {}
    for name, spec in fed["partners"].items():
        node_dir = Path(spec["node_dir"])
        release = None if epsilon is None else DpRelease(node_dir, epsilon, DELTA, f"bench-{tag}", keep=False)
        built = build_features(load_contract(spec["contract"], common.built_window(node_dir)), node_dir, release=release)
        blocks[name] = {b: built.blocks[b] for b in spec["blocks"]}
        noise.update({b: built.noise[b] for b in spec["blocks"] if built.noise})
        if name == fed["label"]["partner"]:
            label = built.label
    return blocks, label, noise


def score(frames: list[pd.DataFrame]) -> dict[str, float]:
    frame = pd.concat(frames)
    return r2_mae(frame["y"].to_numpy(), frame["pred"].to_numpy())


def run_dataset(name: str, epsilons: tuple[float, ...], window: int, n_folds: int, seed: int,
                draws: int, overrides: tuple[str, ...] = ()) -> dict[str, Any]:
    fed_name, make_root = DATASETS[name]
    root = make_root()
    cfg = common.compose_cfg([f"federation={fed_name}", f"federation.data_root={root}", *overrides])
    fed = cfg["federation"]
    spec = LabelSpec.from_config(fed["label"])
    order = [b for p in fed["partners"].values() for b in p["blocks"]]
    groups = {p: list(s["blocks"]) for p, s in fed["partners"].items()}
    train_cfg = TrainConfig(**{**cfg["train"], "seed": seed})
    model = model_spec(order, cfg["model"])

    started = time.perf_counter()
    shrinkage = ShrinkageConfig.from_cfg(cfg["vertical"].get("shrinkage"))
    exact_blocks, exact_label, _ = partner_releases(fed, None, "exact")
    flat = {b: f for blocks in exact_blocks.values() for b, f in blocks.items()}
    ex = make_examples(released_features(flat, window), order, exact_label, spec)
    folds = area_folds(ex.keys["area_code"], n_folds, seed)
    rows: dict[str, dict[str, float]] = {}
    rows["pooled (all blocks, exact)"] = score([cross_validated(ex, order, model, train_cfg, spec, folds, seed)])
    for partner, blocks in groups.items():
        rows[f"{partner} alone (exact)"] = score([cross_validated(ex, blocks, model, train_cfg, spec, folds, seed)])
    say(f"[{name}] exact yardstick: {len(ex)} rows, {len(folds)} areas, {time.perf_counter() - started:.0f} s")

    per_eps: dict[str, Any] = {}
    pooled = rows["pooled (all blocks, exact)"]["r2"]
    for eps in epsilons:
        t0 = time.perf_counter()
        fed_draws: list[float] = []
        alone_draws: dict[str, list[float]] = {p: [] for p in groups}
        for draw in range(draws):
            dp_blocks, dp_label, noise = partner_releases(fed, eps, f"eps{eps:g}-{draw}")
            flat = {b: f for blocks in dp_blocks.values() for b, f in blocks.items()}
            dp_ex = make_examples(released_features(flat, window, noise, shrinkage), order, dp_label, spec)
            y_exact = aligned_label(dp_ex.keys, exact_label, spec)
            fed_draws.append(score([cross_validated(dp_ex, order, model, train_cfg, spec, folds, seed,
                                                    y_eval=y_exact)])["r2"])
            for p, b in groups.items():
                alone_draws[p].append(score([cross_validated(dp_ex, b, model, train_cfg, spec, folds, seed,
                                                             y_eval=y_exact)])["r2"])
        fed_r2 = float(np.mean(fed_draws))
        alone = {p: {"r2": float(np.mean(v)), "draws": v} for p, v in alone_draws.items()}
        per_eps[f"{eps:g}"] = {"federated": {"r2": fed_r2, "draws": fed_draws}, "alone_dp": alone,
                               "ratio_to_pooled": fed_r2 / pooled if pooled > 0 else None,
                               "above_every_partner_alone_dp": all(fed_r2 > a["r2"] for a in alone.values())}
        say(f"[{name}] epsilon {eps:g}: federated R² {fed_r2:.3f} (draws {', '.join(f'{r:.3f}' for r in fed_draws)}; "
            f"{time.perf_counter() - t0:.0f} s)")
    return {"dataset": name, "window": window, "folds": n_folds, "draws": draws, "delta": DELTA,
            "shrinkage": {"enabled": shrinkage.enabled, "covariates": list(shrinkage.covariates)},
            "overrides": list(overrides), "train": dict(cfg["train"]), "exact": rows,
            "dp": per_eps, "seconds": round(time.perf_counter() - started, 1)}


def table(result: dict[str, Any]) -> str:
    exact, dp = result["exact"], result["dp"]
    pooled = exact["pooled (all blocks, exact)"]["r2"]
    partners = [k.split(" alone")[0] for k in exact if " alone" in k]
    lines = [f"== {result['dataset']}: held-out R² ({result['folds']}-fold over areas, scored on the exact label; "
             f"trailing {result['window']}-period means after the noise; delta {result['delta']:g}, epsilon per unit; "
             f"DP figures: mean over {result['draws']} independent releases"
             + ("; released means shrunk by their known noise" if result.get("shrinkage", {}).get("enabled") else "")
             + ")",
             f"{'model':<34}" + "".join(f"{'eps ' + e:>10}" for e in dp) + f"{'exact':>10}"]
    lines.append(f"{'federated DP (all partners)':<34}" + "".join(f"{dp[e]['federated']['r2']:>10.3f}" for e in dp)
                 + f"{pooled:>10.3f}")
    for p in partners:
        lines.append(f"{p + ' alone':<34}" + "".join(f"{dp[e]['alone_dp'][p]['r2']:>10.3f}" for e in dp)
                     + f"{exact[p + ' alone (exact)']['r2']:>10.3f}")
    lines.append(f"{'ratio federated / pooled exact':<34}"
                 + "".join(f"{dp[e]['ratio_to_pooled'] if dp[e]['ratio_to_pooled'] is not None else float('nan'):>10.2f}"
                           for e in dp))
    lines.append(f"{'federated above every partner alone':<34}"
                 + "".join(f"{'yes' if dp[e]['above_every_partner_alone_dp'] else 'NO':>10}" for e in dp))
    lines.append("(the 'exact' column: pooled non-private model on every block, and each partner alone, same pipeline)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.vertical", description=__doc__.split("\n\n")[0])
    p.add_argument("--datasets", nargs="+", choices=sorted(DATASETS), default=list(DATASETS))
    p.add_argument("--epsilons", nargs="+", type=float, default=list(EPSILONS))
    p.add_argument("--window", type=int, default=None, help="trailing periods (default: trailing_periods in configs)")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE", dest="overrides",
                   help="extra Hydra overrides, e.g. --set 'train.weight_decay_choices=[0.01]' (one weight decay, "
                        "no inner cross-validation: ~13x faster on large datasets)")
    p.add_argument("--draws", type=int, default=3,
                   help="independent releases per epsilon; DP figures are their mean (one draw varies by ~0.05)")
    args = p.parse_args(argv)
    common.single_threaded()
    window = args.window if args.window is not None else int(common.compose_cfg([])["trailing_periods"])
    results = []
    for name in args.datasets:
        result = run_dataset(name, tuple(args.epsilons), window, args.folds, args.seed, args.draws,
                             tuple(args.overrides))
        results.append(result)
        say(table(result))
    path = common.write_json("vertical", results)
    say(f"written: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
