"""`pulse-twin demo`: the main job, end to end on one machine.

1. generate synthetic, CBS-calibrated raw records for the Heerlen partners, each in its own node directory;
2. set up each node (key pair, site policy) and build each partner's features on its own;
3. the yardstick: pooled non-private model and each partner alone (5-fold over areas);
4. the vertical federation on Flower's real engine (SuperLink + police, municipality and buurtteams
   SuperNodes on loopback, TLS): PSI, one person-level DP release per partner (the municipality's DP
   survey as the label), the coordinator's fusion model, predictions for every area;
5. the table: federated DP against the pooled model and each partner alone, on the same held-out areas
   (scored on the exact label, which the demo can read because it runs every synthetic node itself);
6. the report (`pulse-twin report`): the map, intervals, drivers, receipts, model card and release gate.
"""
from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from federation.cli import main as cli_main
from federation.commands.report import NOT_RELEASABLE
from federation.config import compose, to_container
from federation.errors import PulseTwinError
from federation.output import progress
from federation.commands.generate import check_records
from devtools.synthetic.defaults import DEFAULT_RECORDS


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
    p.set_defaults(func=run)


def step(text: str) -> None:
    progress(f"\n== {text}")


def run(args: argparse.Namespace) -> int:
    check_records(args.records)
    data_root, runs_dir = args.data_root.resolve(), args.runs_dir.resolve()
    overrides = ["federation=heerlen", f"federation.data_root={data_root}", f"runs_dir={runs_dir}"]
    fed = to_container(compose("config", overrides))["federation"]
    partners = fed["partners"]

    reset_demo_nodes(data_root, list(partners) + ["coordinator"])
    step(f"generating raw records for {', '.join(partners)} (seed {args.seed}, ~{args.records:,} records)")
    _cli(["generate", "--data-root", str(data_root), "--cities", "heerlen", "--seed", str(args.seed),
          "--records", str(args.records)])

    step("setting up each node and building its features on its own")
    for name, spec in partners.items():
        node_dir = Path(spec["node_dir"])
        if not (node_dir / "site_policy.yaml").is_file():
            _cli(["node", "init", "--partner", name, "--node-dir", str(node_dir)])
        _cli(["features", "--contract", spec["contract"], "--node-dir", str(node_dir)])
    exact_label = Path(partners[fed["label"]["partner"]]["node_dir"]) / "features" / "label.parquet"

    step("yardstick: pooled non-private model and each partner alone")
    baseline_json = runs_dir / "baseline-heerlen.json"
    _cli(["baseline", *overrides, "--out", str(baseline_json)])
    if args.skip_federation:
        return 0

    step(f"vertical federation on Flower's real engine (epsilon {args.epsilon:g} per unit, delta 1e-5)")
    run_name = "demo-heerlen"
    shutil.rmtree(runs_dir / run_name, ignore_errors=True)
    code = cli_main(["federate", *overrides, f"dp.target_epsilon={args.epsilon}", "holdout_fold=0",
                     "--auto-approve", "--run-name", run_name])
    if code != 0:
        return code

    step("federated DP against the yardstick, on the federated run's held-out areas")
    print(comparison_table(runs_dir / run_name, baseline_json, exact_label))
    print(f"\nper-partner privacy reports: {runs_dir / run_name / 'privacy'}")
    print(f"predictions for the latest period: {runs_dir / run_name / 'predictions.csv'}")
    print("what left each node: pulse-twin node audit --node-dir <node dir>")

    step("the report: map, intervals, drivers, privacy receipts, model card and the release gate")
    code = cli_main(["report", str(runs_dir / run_name), "--baseline", str(baseline_json)])
    if code not in (0, NOT_RELEASABLE):
        return code
    print(f"\nthe report of this run (open it in a browser): {runs_dir / run_name / 'report' / 'report.html'}")
    return 0


DEMO_MARKER = ".pulse-twin-demo-nodes"


def reset_demo_nodes(data_root: Path, nodes: list[str]) -> None:
    """The demo's nodes are synthetic and its own: each demo starts them afresh (empty ledgers and logs).
    A data root without the demo's marker is never touched: real nodes' ledgers are not deleted."""
    marker = data_root / DEMO_MARKER
    existing = [n for n in nodes if (data_root / n).exists()]
    if existing and not marker.is_file():
        raise PulseTwinError(f"{data_root} holds node directories the demo did not create ({', '.join(existing)}); "
                             "choose another --data-root")
    for n in existing:
        shutil.rmtree(data_root / n)
    data_root.mkdir(parents=True, exist_ok=True)
    marker.write_text("synthetic demo nodes, recreated by every `pulse-twin demo`\n")
    if existing:
        progress(f"recreated the demo's synthetic nodes under {data_root} (fresh ledgers)")


def comparison_table(run_dir: Path, baseline_json: Path, exact_label: Path) -> str:
    """Federated DP vs the yardstick on the run's held-out areas, every model scored on the exact label."""
    import pandas as pd

    from federation.task import r2_mae

    evaluation = json.loads((run_dir / "evaluation.json").read_text())
    areas = set(evaluation["holdout_areas"])
    label = pd.read_parquet(exact_label)[["area_code", "period", "label"]]
    label["period"] = (pd.PeriodIndex(label["period"].astype(str), freq="M") - 1).astype(str)  # label of next month
    held = pd.read_csv(run_dir / "holdout_predictions.csv", dtype={"period": str}).merge(label, on=["area_code", "period"])
    fed = r2_mae(held["label"].to_numpy(), held["pred"].to_numpy())
    oof = pd.read_csv(baseline_json.with_suffix(".predictions.csv"))
    rows = [f"{'model':<44} {'R²':>7} {'MAE':>7} {'rows':>6}"]
    pooled = None
    for name, frame in oof.groupby("model", sort=False):
        mine = frame[frame.area_code.isin(areas)]
        m = r2_mae(mine["y"].to_numpy(), mine["pred"].to_numpy())
        pooled = m["r2"] if pooled is None else pooled
        rows.append(f"{name + ' (exact)':<44} {m['r2']:>7.3f} {m['mae']:>7.3f} {m['n']:>6d}")
    rows.append(f"{'federated DP (vertical, real engine)':<44} {fed['r2']:>7.3f} {fed['mae']:>7.3f} {fed['n']:>6d}")
    for column in [c for c in held.columns if c.startswith("pred_alone_")]:
        scored = held[held[column].notna()]
        m = r2_mae(scored["label"].to_numpy(), scored[column].to_numpy())
        name = f"{column.removeprefix('pred_alone_')} alone (its own DP release)"
        rows.append(f"{name:<44} {m['r2']:>7.3f} {m['mae']:>7.3f} {m['n']:>6d}")
    if pooled:
        rows.append(f"federated / pooled: {fed['r2'] / pooled:.2f} (held-out areas: {len(areas)})")
    for f in sorted((run_dir / "privacy").glob("*.json")):
        report = json.loads(f.read_text())
        rows.append(f"{f.stem}: epsilon {report['epsilon']:.2f} (delta {report.get('delta', 1e-5):g}, "
                    f"{report.get('accountant', 'prv').upper()}), all its tables composed for one person who is a "
                    "unit in each; see `pulse-twin privacy --node-dir` for each table's unit and bounds")
    return "\n".join(rows)


def _cli(argv: list[str]) -> None:
    code = cli_main(argv)
    if code != 0:
        raise PulseTwinError(f"step `pulse-twin {' '.join(argv[:1])}` failed (exit {code})")
