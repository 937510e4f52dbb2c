"""`pulse-twin baseline`: the yardstick (pooled non-private model vs each partner alone)."""
from __future__ import annotations

import argparse
from pathlib import Path

from federation.commands.options import add_data_root, add_json, add_overrides, add_runs_dir, run_overrides
from federation.errors import ConfigError
from federation.output import emit_json, progress, result


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "baseline",
        help="train the pooled non-private model and each partner's local-only model; report R² and MAE",
        description=(
            "The yardstick the federated modes are measured against. Reads every partner's built feature "
            "blocks (run `pulse-twin features` on each node first), trains the pooled non-private model on "
            "all blocks together (an upper bound nobody may run in production) and each partner's "
            "local-only model, and reports R² and MAE on held-out areas (cross-validated over areas). For a "
            "horizontal federation: the pooled model on every node's rows, each area in the fold its own node puts "
            "it in, with R² per fold (what `federate ... holdout_fold=K` prints its held-out R² against)."
        ),
    )
    add_overrides(p, "federation=heerlen train.epochs=80 folds=5 seed=1", multirun=True)
    add_data_root(p)
    add_runs_dir(p)
    p.add_argument("--out", type=Path, default=None, metavar="FILE",
                   help="JSON file for the results (default: <runs_dir>/baseline-<federation>.json; with -m, "
                        "the combination's number is added to the name)")
    add_json(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from federation.config import compose, node_dir
    from federation.dataset import LabelSpec, make_examples, read_node_features, smooth_blocks
    from federation.task import TrainConfig
    from devtools.yardstick import model_spec, run_yardstick

    cfg = compose("config", run_overrides(args))
    fed = cfg.federation
    if fed.topology == "horizontal":
        return run_horizontal(cfg, args.out)
    if fed.topology != "vertical":
        raise ConfigError(f"federation '{fed.name}': baseline supports vertical and horizontal federations; got "
                          f"'{fed.topology}'")
    blocks, groups, label = {}, {}, None
    for partner, pcfg in fed.partners.items():
        partner_blocks, partner_label = read_node_features(
            node_dir(fed, partner), list(pcfg.blocks), with_label=(partner == fed.label.partner)
        )
        blocks.update(partner_blocks)
        groups[partner] = list(pcfg.blocks)
        label = partner_label if partner_label is not None else label
    order = [b for g in groups.values() for b in g]
    label_spec = LabelSpec.from_config(fed.label)
    # The same pipeline as the coordinator's on released blocks: trailing means, then the public scaling.
    ex = make_examples(smooth_blocks(blocks, int(cfg.trailing_periods)), order, label, label_spec)
    progress(f"yardstick for '{fed.name}': {len(ex)} area-period rows, "
             f"{ex.keys['area_code'].nunique()} areas, blocks {', '.join(order)}")
    train_cfg = TrainConfig(**{k: v for k, v in cfg.train.items()}, seed=int(cfg.seed))
    outcome = run_yardstick(fed.name, ex, groups, model_spec(order, cfg.model), train_cfg, label_spec,
                            int(cfg.folds), int(cfg.seed))
    out = args.out or Path(cfg.runs_dir) / f"baseline-{fed.name}.json"
    sweep = getattr(args, "sweep", None)
    if sweep is not None:
        out = out.with_name(f"{out.stem}-{sweep[0]}{out.suffix}")
    outcome.protocol["overrides"] = list(args.overrides)
    outcome.to_json(out)
    if args.json:
        emit_json({"federation": outcome.federation, "models": outcome.models, "overrides": list(args.overrides),
                   "written": str(out)})
    else:
        result(outcome.table())
        result(f"written: {out}")
    return 0


def run_horizontal(cfg, out: Path | None) -> int:
    """The pooled yardstick of a horizontal federation: every node's rows in one place (the nodes' own
    features, unsmoothed, as DP-SGD sees them), with each area in the fold its own node puts it in, so fold
    K's predictions are of the very areas a run with holdout_fold=K holds out on each node."""
    from clients.node import Node
    from federation.dataset import LabelSpec, area_folds, concat, make_examples
    from federation.flower_config import node_config
    from federation.task import TrainConfig
    from devtools.yardstick import model_spec, run_yardstick

    fed = cfg.federation
    blocks = tuple(fed.blocks)
    label_spec = LabelSpec.from_config(fed.label)
    parts, folds = [], {}
    for name, spec in fed.nodes.items():
        node = Node.from_config(node_config(name, spec.node_dir, spec.get("feature_dirs") or []))
        label = node.label()
        if label is None or not node.available_blocks(blocks):
            raise ConfigError(f"node '{name}': no label.parquet or none of the blocks {', '.join(blocks)} under "
                              f"{', '.join(str(d) for d in node.feature_dirs)} (run `pulse-twin features` first)")
        ex = make_examples(node.blocks(blocks), blocks, label, label_spec)
        parts.append(ex)
        folds.update(area_folds(ex.keys["area_code"], int(cfg.folds), int(cfg.seed)))
    ex = concat(parts)
    result(f"yardstick for '{fed.name}' (horizontal): {len(ex)} area-period rows of {len(parts)} nodes, "
           f"{ex.keys['area_code'].nunique()} areas, blocks {', '.join(blocks)}; each node's areas in its own folds")
    train_cfg = TrainConfig(**{k: v for k, v in cfg.train.items()}, seed=int(cfg.seed))
    outcome = run_yardstick(fed.name, ex, {}, model_spec(blocks, cfg.model), train_cfg, label_spec,
                            int(cfg.folds), int(cfg.seed), folds=folds)
    outcome.protocol["split"] = f"{cfg.folds}-fold cross-validation over each node's own areas (as the nodes hold out)"
    path = out or Path(cfg.runs_dir) / f"baseline-{fed.name}.json"
    outcome.to_json(path)
    result()
    result(outcome.table())
    for k in range(int(cfg.folds)):
        scores = outcome.pooled_on_fold(k)
        if scores is not None:
            result(f"  pooled on fold {k}'s areas (a run with holdout_fold={k}): R² {scores['r2']:.3f}, MAE {scores['mae']:.3f}")
    result(f"\nwritten: {path}")
    return 0
