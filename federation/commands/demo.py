"""`pulse-twin demo`: the main job, end to end on one machine (the job itself: devtools/demo.py).

1. generate synthetic, CBS- and Leefbaarometer-calibrated raw records for the Heerlen partners (a quarterly
   resident survey) and the community node's Signalen-shaped reports of residents and frontliners, each in
   its own node directory (`pulse-twin generate --community`);
2. set up each node (key pair, site policy) and build each partner's features on its own;
3. the vertical federation `heerlen_community` on Flower's real engine (SuperLink + police, municipality,
   buurtteams and community SuperNodes on loopback, TLS): PSI, one person-level DP release per partner (the municipality's DP
   survey as the label), then the coordinator's forecast from those releases: the label's own released
   history and each partner's blocks with their lags and trends, at horizons 1, 3, 6 and 12 months
   (`federation.label.horizons`), scored by rolling origin in time x held-out areas beside the naive
   forecasts (persistence, trailing mean, seasonal naive, the label's history alone), and the gate at the
   configured horizon (`federation.label.horizon`): post-processing, no privacy cost;
4. the skill table: every model and naive forecast, with skill over the best naive forecast and its interval,
   scored on the exact label (which the demo can read because it runs every synthetic node) beside the pooled
   model without privacy; what the community block adds (the federation with it, without it, and the block
   alone, on the same folds and origins); then the warning list at the configured horizon (withheld when
   the gate refuses);
5. the report (`pulse-twin report`): skill and the gate's verdict, the naive forecast beside the model's, the
   map, changes beyond the noise, intervals, early warning, receipts and model card;
6. what people read: the feedback pages for residents (`pulse-twin feedback`, 57 buurt pages and an index, with
   the example action log configs/feedback/heerlen_actions.yaml), the twin's view (`pulse-twin twin build`,
   its interval coverage overall and per population band) and one question to the twin colleague
   (`pulse-twin ask`), with the paths of what they wrote.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from devtools.synthetic.defaults import DEFAULT_RECORDS
from federation.commands.options import add_overrides


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo",
        help="the main job: generate Heerlen's partner data, build features, vertical federation, forecast skill, report, "
             "feedback pages, the twin's view and one question to it",
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
    p.add_argument("--skip-federation", action="store_true", help="stop after building the features (no Flower run)")
    add_overrides(p, "forecast.test_origins=3 folds=3 (applied to the federated run; the federation stays heerlen)")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from devtools.demo import run

    return run(args)


