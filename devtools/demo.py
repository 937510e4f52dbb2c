"""The main job behind `pulse-twin demo`, end to end on one machine; its steps are the command's help
(federation/commands/demo.py). A development tool: outside the code hash nodes approve.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from federation.cli import main as cli_main
from federation.commands.report import NOT_RELEASABLE
from federation.config import compose, to_container, value_override
from federation.errors import ConfigError, PulseTwinError
from federation.output import progress, result
from federation.commands.generate import check_records

if TYPE_CHECKING:
    import pandas as pd


def step(text: str) -> None:
    progress(f"\n== {text}")


def run(args: argparse.Namespace) -> int:
    check_records(args.records)
    _single_threaded()
    data_root, runs_dir = args.data_root.resolve(), args.runs_dir.resolve()
    overrides = ["federation=heerlen", *demo_overrides(args.overrides),
                 value_override("federation.data_root", data_root), value_override("runs_dir", runs_dir)]
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
            with contextlib.redirect_stdout(io.StringIO()):   # its "next steps" are what the demo does next
                _cli(["node", "init", "--partner", name, "--node-dir", str(node_dir)])
            result(f"node {name}: key pair, site policy and data contract in {node_dir} (`pulse-twin node init`)")
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
    result(comparison_table(runs_dir / run_name, baseline_json, exact_label))
    result(federation_privacy_line([Path(spec["node_dir"]) for spec in partners.values()], runs_dir / run_name))
    result(f"\nper-partner privacy reports: {runs_dir / run_name / 'privacy'}")
    result(f"predictions for the latest period: {runs_dir / run_name / 'predictions.csv'}")
    result("what left each node: pulse-twin node audit --node-dir <node dir>")

    step("the report: map, intervals, drivers, privacy receipts, model card and the release gate")
    code = cli_main(["report", str(runs_dir / run_name), "--baseline", str(baseline_json)])
    if code not in (0, NOT_RELEASABLE):
        return code
    result(f"\nthe report of this run (open it in a browser): {runs_dir / run_name / 'report' / 'report.html'}")
    return 0


def demo_overrides(given: list[str]) -> list[str]:
    """The user's overrides, for the yardstick and the run alike; the demo generates Heerlen's partners, so it
    refuses another federation, and its folders are set by --data-root and --runs-dir."""
    for item in given:
        key = item.split("=", 1)[0].lstrip("+~")
        if key == "federation" or key in ("federation.data_root", "runs_dir"):
            hint = ("the demo generates and federates Heerlen's partners; run another federation with "
                    "`pulse-twin federate federation=NAME`" if key == "federation" else
                    "set it with --data-root or --runs-dir")
            raise ConfigError(f"override {item!r}: {hint}")
    return list(given)


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


def federation_privacy_line(node_dirs: list[Path], run_dir: Path) -> str:
    """The privacy table's last line: one person who is a unit in every table of every node, all the nodes'
    ledgers composed by the accountant (`pulse-twin privacy` with every --node-dir), beside each node's line."""
    from federation.commands.privacy import federation_of

    reports = [json.loads(f.read_text()) for f in sorted((run_dir / "privacy").glob("*.json"))]
    delta = reports[0].get("delta", 1e-5) if reports else 1e-5
    fed = federation_of(node_dirs, delta, reports[0].get("accountant", "prv") if reports else "prv")
    return (f"every node composed: epsilon {fed.epsilon:.2f} (delta {fed.delta:g}, {fed.accountant.upper()}) for one "
            f"person who is a unit in all {len(fed.tables)} tables of the {len(fed.nodes)} nodes (highest node alone "
            f"{fed.highest_node_epsilon:.2f}); `pulse-twin privacy` with every --node-dir shows it")


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


def _single_threaded() -> None:
    """One thread per process for torch and its OpenMP: the models are small, and the demo's own process and
    its three SuperNodes share the machine's cores (several threads each would only wait for each other)."""
    os.environ["OMP_NUM_THREADS"] = "1"
    import torch

    torch.set_num_threads(1)
