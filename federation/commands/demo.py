"""`pulse-twin demo`: the main job, end to end on one machine (the job itself: devtools/demo.py).

1. generate synthetic, CBS-calibrated raw records for the Heerlen partners, each in its own node directory;
2. set up each node (key pair, site policy) and build each partner's features on its own;
3. the yardstick: pooled non-private model and each partner alone (5-fold over areas);
4. the vertical federation on Flower's real engine (SuperLink + police, municipality and buurtteams
   SuperNodes on loopback, TLS): PSI, one person-level DP release per partner (the municipality's DP
   survey as the label), the coordinator's fusion model, predictions for every area;
5. the table: federated DP against the pooled model and each partner alone, on the same folds of areas,
   each held out once (scored on the exact label, which the demo can read because it runs every synthetic
   node itself); the coordinator's cross-validation is post-processing of the releases and costs nothing;
6. the report (`pulse-twin report`): the map, intervals, drivers, receipts, model card and release gate.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from devtools.synthetic.defaults import DEFAULT_RECORDS
from federation.commands.options import add_overrides


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo",
        help="the main job: generate Heerlen's partner data, build features, yardstick, vertical federation",
        description=__doc__.split("\n", 2)[2] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--data-root", type=Path, default=Path("data/nodes"), metavar="DIR",
                   help="the folder of node directories (default data/nodes in the working directory: the demo "
                        "runs wherever it is started, also from an installed package)")
    p.add_argument("--runs-dir", type=Path, default=Path("runs"), metavar="DIR",
                   help="the folder of run directories (default runs in the working directory)")
    p.add_argument("--records", type=int, default=DEFAULT_RECORDS,
                   help=f"raw records to generate (default {DEFAULT_RECORDS}, as `pulse-twin generate`)")
    p.add_argument("--seed", type=int, default=7, help="generator seed (default 7)")
    p.add_argument("--epsilon", type=float, default=3.0, help="target epsilon per partner for the run (default 3)")
    p.add_argument("--skip-federation", action="store_true", help="stop after the yardstick (no Flower run)")
    add_overrides(p, "train.epochs=5 folds=3 (applied alike to the yardstick and the federated run; the "
                     "federation stays heerlen)")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from devtools.demo import run

    return run(args)


