"""`pulse-twin demo`: the main job, end to end on one machine.

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
import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from federation.cli import main as cli_main
from federation.commands.report import NOT_RELEASABLE
from federation.config import compose, to_container
from federation.errors import PulseTwinError
from federation.output import progress
from federation.commands.generate import check_records
from devtools.synthetic.defaults import DEFAULT_RECORDS

if TYPE_CHECKING:
    import pandas as pd


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
    code = cli_main(["federate", *overrides, f"dp.target_epsilon={args.epsilon}", "--auto-approve",
                     "--run-name", run_name])
    if code != 0:
        return code

    step("federated DP against the yardstick, on the same folds of areas (every area held out once)")
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
    """Federated DP vs the yardstick over the same folds of areas, every model scored on the exact label.

    The run's out-of-fold predictions (every area held out once, `vertical.cross_validate`) and the
    yardstick's must come from the same split, area by area, or the table is refused; the ratio is then
    the benchmark's estimator (R² over every held-out row), with its spread over the folds."""
    import numpy as np
    import pandas as pd

    from server.report.yardstick_result import YardstickResult

    keys = ["area_code", "period"]
    label = pd.read_parquet(exact_label)[keys + ["label"]]
    label["area_code"] = label["area_code"].astype(str)
    label["period"] = (pd.PeriodIndex(label["period"].astype(str), freq="M") - 1).astype(str)  # label of next month
    held = pd.read_csv(run_dir / "holdout_predictions.csv", dtype={"area_code": str, "period": str})
    yardstick = YardstickResult.from_json(baseline_json).predictions
    check_same_folds(held, next(iter(yardstick.values())), f"{run_dir.name} and {baseline_json.name}")
    # The rows both the run and the pooled model scored, each model's prediction a column, the exact label.
    columns: dict[str, str] = {}
    scored = held.merge(label, on=keys)
    for i, (name, frame) in enumerate(yardstick.items()):
        columns[f"{name} (exact)"] = f"exact_{i}"
        scored = scored.merge(frame[keys + ["pred"]].rename(columns={"pred": f"exact_{i}"}), on=keys,
                              how="inner" if i == 0 else "left")
    columns["federated DP (vertical, real engine)"] = "pred"
    columns.update({f"{c.removeprefix('pred_alone_')} alone (its own DP release)": c
                    for c in held.columns if c.startswith("pred_alone_")})

    lines = [f"{'model':<44} {'R²':>7} {'MAE':>7} {'rows':>6}"]
    for name, column in columns.items():
        m = _score(scored, column)
        lines.append(f"{name:<44} {m['r2']:>7.3f} {m['mae']:>7.3f} {m['n']:>6d}")
    ratio = fold_ratios(scored)
    lines.append(f"federated / pooled: {ratio['all']:.2f} over {scored['area_code'].nunique()} areas, "
                 f"{len(ratio['folds'])} folds (every area held out once); per fold "
                 + ", ".join(f"{r:.2f}" for r in ratio["folds"])
                 + f" (mean {np.mean(ratio['folds']):.2f}, sd {np.std(ratio['folds'], ddof=1):.2f})")
    for f in sorted((run_dir / "privacy").glob("*.json")):
        report = json.loads(f.read_text())
        lines.append(f"{f.stem}: epsilon {report['epsilon']:.2f} (delta {report.get('delta', 1e-5):g}, "
                     f"{report.get('accountant', 'prv').upper()}), all its tables composed for one person who is a "
                     "unit in each; see `pulse-twin privacy --node-dir` for each table's unit and bounds")
    return "\n".join(lines)


def check_same_folds(run: pd.DataFrame, pooled: pd.DataFrame, what: str) -> None:
    """Refuse unless every area both scored sits in the same fold of both (a ratio over different splits
    would mix privacy's cost with the luck of the split)."""
    same = run[["area_code", "fold"]].drop_duplicates().merge(
        pooled[["area_code", "fold"]].drop_duplicates(), on="area_code", suffixes=("_run", "_pooled"))
    differ = int((same["fold_run"] != same["fold_pooled"]).sum())
    if same.empty or differ:
        raise PulseTwinError(f"{what} were not scored on the same folds of areas ({differ} of {len(same)} "
                             "shared areas differ): run both with the same `folds` and `seed`")


def fold_ratios(scored: pd.DataFrame) -> dict[str, Any]:
    """Federated R² (`pred`) / pooled R² (`exact_0`) over every held-out row (`all`) and within each fold."""
    def ratio(frame: pd.DataFrame) -> float:
        return _score(frame, "pred")["r2"] / _score(frame, "exact_0")["r2"]

    return {"all": ratio(scored), "folds": [ratio(f) for _, f in scored.groupby("fold")]}


def _score(frame: pd.DataFrame, column: str) -> dict[str, float]:
    """R² and MAE of one model's column against the exact label, on the rows it predicted."""
    from federation.task import r2_mae

    frame = frame[frame[column].notna()]
    return r2_mae(frame["label"].to_numpy(), frame[column].to_numpy())


def _cli(argv: list[str]) -> None:
    code = cli_main(argv)
    if code != 0:
        raise PulseTwinError(f"step `pulse-twin {' '.join(argv[:1])}` failed (exit {code})")
