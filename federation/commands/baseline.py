"""`pulse-twin baseline`: the yardstick (pooled non-private model vs each partner alone)."""
from __future__ import annotations

import argparse
from pathlib import Path

from federation.errors import ConfigError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "baseline",
        help="train the pooled non-private model and each partner's local-only model; report R² and MAE",
        description=(
            "The yardstick the federated modes are measured against. Reads every partner's built feature "
            "blocks (run `pulse-twin features` on each node first), trains the pooled non-private model on "
            "all blocks together (an upper bound nobody may run in production) and each partner's "
            "local-only model, and reports R² and MAE on held-out areas (cross-validated over areas)."
        ),
    )
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                   help="Hydra overrides, e.g. federation.data_root=data/nodes train.epochs=80 folds=5 seed=1")
    p.add_argument("--out", type=Path, default=None,
                   help="JSON file for the results (default: <runs_dir>/baseline-<federation>.json)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from federation.config import compose
    from federation.dataset import LabelSpec, make_examples, read_node_features, smooth_blocks
    from federation.task import TrainConfig
    from devtools.yardstick import model_spec, run_yardstick

    cfg = compose("config", args.overrides)
    fed = cfg.federation
    if fed.topology != "vertical":
        raise ConfigError(f"federation '{fed.name}': baseline supports vertical federations; got '{fed.topology}'")
    blocks, groups, label = {}, {}, None
    for partner, pcfg in fed.partners.items():
        partner_blocks, partner_label = read_node_features(
            Path(pcfg.node_dir), list(pcfg.blocks), with_label=(partner == fed.label.partner)
        )
        blocks.update(partner_blocks)
        groups[partner] = list(pcfg.blocks)
        label = partner_label if partner_label is not None else label
    order = [b for g in groups.values() for b in g]
    label_spec = LabelSpec(float(fed.label.center), float(fed.label.scale), int(fed.label.shift))
    # The same pipeline as the coordinator's on released blocks: trailing means, then the public scaling.
    ex = make_examples(smooth_blocks(blocks, int(cfg.trailing_periods)), order, label, label_spec)
    print(f"yardstick for '{fed.name}': {len(ex)} area-period rows, "
          f"{ex.keys['area_code'].nunique()} areas, blocks {', '.join(order)}")
    train_cfg = TrainConfig(**{k: v for k, v in cfg.train.items()}, seed=int(cfg.seed))
    result = run_yardstick(fed.name, ex, groups, model_spec(order, cfg.model), train_cfg, label_spec,
                           int(cfg.folds), int(cfg.seed))
    out = args.out or Path(cfg.runs_dir) / f"baseline-{fed.name}.json"
    result.to_json(out)
    print()
    print(result.table())
    print(f"\nwritten: {out}")
    return 0
