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
    overrides = [f"federation={FEDERATION}", *demo_overrides(args.overrides),
                 value_override("federation.data_root", data_root), value_override("runs_dir", runs_dir)]
    fed = to_container(compose("config", overrides))["federation"]
    partners = fed["partners"]

    reset_demo_nodes(data_root, list(partners) + ["coordinator"])
    step(f"generating raw records for {', '.join(partners)} (seed {args.seed}, ~{args.records:,} records)")
    _cli(["generate", "--data-root", str(data_root), "--cities", "heerlen", "--seed", str(args.seed),
          "--records", str(args.records), *(["--community"] if COMMUNITY in partners else [])])

    step("setting up each node and building its features on its own")
    for name, spec in partners.items():
        node_dir = Path(spec["node_dir"])
        if not (node_dir / "site_policy.yaml").is_file():
            with contextlib.redirect_stdout(io.StringIO()):   # its "next steps" are what the demo does next
                _cli(["node", "init", "--partner", name, "--node-dir", str(node_dir)])
            result(f"node {name}: key pair, site policy and data contract in {node_dir} (`pulse-twin node init`)")
        _cli(["features", "--contract", spec["contract"], "--node-dir", str(node_dir)])
    if args.skip_federation:
        return 0

    step(f"vertical federation on Flower's real engine (epsilon {args.epsilon:g} per unit, delta 1e-5)")
    run_name = "demo-heerlen"
    shutil.rmtree(runs_dir / run_name, ignore_errors=True)
    code = cli_main(["federate", *overrides, f"dp.target_epsilon={args.epsilon}", "--auto-approve",
                     "--run-name", run_name])
    if code != 0:
        return code

    run_dir = runs_dir / run_name
    skill = json.loads((run_dir / "forecast" / "skill.json").read_text())
    import pandas as pd

    step(f"forecast skill: every model beside the naive forecasts, rolling origin in time x held-out areas "
         f"(configured horizon {skill['configured_horizon']} months)")
    progress("scoring the run's held-out forecasts on the exact label, beside the pooled model without privacy "
             "(the demo can: it runs every synthetic node)")
    result(skill_table(skill, exact_rows(run_dir, fed)))
    if COMMUNITY in partners:
        result(block_lines(skill, COMMUNITY, pd.read_csv(run_dir / "forecast" / "predictions.csv",
                                                         dtype={"area_code": str, "origin": str, "target": str})))
    step(f"early warning, {skill['configured_horizon']} months ahead")
    from server.report.areas import boundaries

    names = {code: area.name for code, area in boundaries().items()}
    result(warning_table(pd.read_csv(run_dir / "forecast" / "warnings.csv", dtype={"area_code": str}), skill, names))
    step("privacy: what each node's releases cost one person, and all nodes together")
    result(privacy_lines(run_dir))
    result(federation_privacy_line([Path(spec["node_dir"]) for spec in partners.values()], run_dir))
    result(f"\nper-partner privacy reports: {runs_dir / run_name / 'privacy'}")
    result(f"predictions for the latest period: {runs_dir / run_name / 'predictions.csv'}")
    result("what left each node: pulse-twin node audit --node-dir <node dir>")

    step("the report: skill and the gate's verdict, the naive forecast beside the model's, the map, intervals, "
         "early warning, privacy receipts and model card")
    code = cli_main(["report", str(runs_dir / run_name)])
    if code not in (0, NOT_RELEASABLE):
        return code
    result(f"\nthe report of this run (open it in a browser): {runs_dir / run_name / 'report' / 'report.html'}")
    return twin_steps(run_dir, COMMUNITY in partners)


FEDERATION = "heerlen_community"   # Heerlen's three official partners and the community node
COMMUNITY = "community"
ASK_EXAMPLE = "Welke buurten gaan verslechteren en waarom?"


def twin_steps(run_dir: Path, community: bool) -> int:
    """What people read of the run, all post-processing of its artefacts: the feedback pages for residents
    (with the municipality's example action log), the twin's view with its interval coverage per population
    band, and one question to the twin colleague."""
    from federation.config import configs_dir

    if community:
        step("feedback to residents: one page per buurt and an index, Dutch and English (`pulse-twin feedback`)")
        code = cli_main(["feedback", str(run_dir), "--actions", str(configs_dir() / "feedback" / "heerlen_actions.yaml")])
        if code != 0:
            return code
    step("the twin's view: every month of every buurt, intervals per population band and their coverage "
         "(`pulse-twin twin build`)")
    code = cli_main(["twin", "build", str(run_dir)])
    if code != 0:
        return code
    step(f"ask the twin (`pulse-twin ask \"{ASK_EXAMPLE}\" --run {run_dir}`)")
    code = cli_main(["ask", ASK_EXAMPLE, "--run", str(run_dir)])
    if code != 0:
        progress(f"(the colleague did not answer: exit {code})")
    return 0


def block_lines(skill: dict[str, Any], partner: str, predictions: pd.DataFrame | None = None) -> str:
    """What one partner's block adds, at the configured horizon: the federation with it, without it
    (`without:<partner>`) and the label's history with that block alone (`partner:<partner>`), all scored
    on the same held-out areas, origins and folds from the same releases. With the run's held-out
    `predictions`, a row whose forecasts equal another model's says so: the fusion model keeps a block only
    where it lowers the error on held-out training areas, so "with" can be "without" to the last digit."""
    h = int(skill["configured_horizon"])
    same = {f"without:{partner}": "federated_dp", f"partner:{partner}": "label_history"}
    rows = {r["model"]: r for r in skill["rows"] if int(r["horizon"]) == h and r.get("data", "dp") == "dp"}
    out = [f"the {partner} block at horizon {h} (same folds, origins and areas; skill over the best naive "
           "forecast, 90% interval; intervals that overlap are no clear difference):"]
    for model, words in (("federated_dp", f"federation with the {partner} block"),
                         (f"without:{partner}", f"federation without the {partner} block"),
                         (f"partner:{partner}", f"the {partner} block alone (with the label's history)"),
                         ("label_history", "the label's history alone (no partner block)")):
        r = rows.get(model)
        if r is None or r.get("skill") is None:
            out.append(f"  {words:<52} not scored")
            continue
        interval = f" ({r['skill_lo']:+.3f} to {r['skill_hi']:+.3f})" if r.get("skill_lo") is not None else ""
        twin = same.get(model)
        note = (f"; the same forecasts as {twin}: the model left the {partner} block out here"
                if twin and predictions is not None and same_forecasts(predictions, h, model, twin) else "")
        out.append(f"  {words:<52} skill {r['skill']:+.3f}{interval}, MAE {r['mae']:.3f}{note}")
    return "\n".join(out)


def same_forecasts(predictions: pd.DataFrame, h: int, a: str, b: str) -> bool:
    """True if models `a` and `b` made the same held-out forecasts (to 1e-9) at horizon `h`."""
    import numpy as np

    held = predictions[(predictions["horizon"] == h) & (predictions["held_out"].astype(str).str.lower() == "true")]
    keys = ["area_code", "origin", "target"]
    pair = held[held["model"] == a].merge(held[held["model"] == b], on=keys)
    return len(pair) > 0 and bool(np.allclose(pair["prediction_x"], pair["prediction_y"], rtol=0, atol=1e-9))


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


def privacy_lines(run_dir: Path) -> str:
    """Each node's epsilon from its privacy report (its ledger, fed to its accountant), all its tables composed."""
    lines = []
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


def _cli(argv: list[str]) -> None:
    code = cli_main(argv)
    if code != 0:
        raise PulseTwinError(f"step `pulse-twin {' '.join(argv[:1])}` failed (exit {code})")


def _single_threaded() -> None:
    """One thread per process for torch and its OpenMP: the models are small, and the demo's own process and
    its SuperNodes share the machine's cores (several threads each would only wait for each other)."""
    os.environ["OMP_NUM_THREADS"] = "1"
    import torch

    torch.set_num_threads(1)


def skill_table(skill: dict[str, Any], reference: list[dict[str, Any]] = ()) -> str:
    """The run's skill table (forecast/skill.json) at every horizon, the configured one first: the federated
    DP model, each partner alone, the linear reference, every naive forecast from the DP label history, and
    (`reference`: rows on exact data, which only the demo can compute because it runs every synthetic node)
    the pooled model without privacy and the exact naive forecasts, all on the same held-out areas and
    origins. Skill = 1 - MSE / MSE(best naive from the DP history), 90% interval over whole areas."""
    configured = int(skill["configured_horizon"])
    rows = [*skill["rows"], *reference]
    lines = [f"{'horizon':>7} {'model':<26} {'data':<5} {'R²':>7} {'MAE':>7} {'rows':>6}  skill (90% interval)"]
    if reference:
        lines.insert(0, "data: dp = the run's forecasts from DP releases, scored as the run can, on the released "
                        "label; dp* = the same forecasts scored on the exact label; exact = exact inputs and label "
                        "(reference). Skill over the best naive forecast from the DP history, on the same label.")
    for h in sorted({int(r["horizon"]) for r in rows}, key=lambda h: (h != configured, h)):
        best = skill["best_naive"].get(str(h))
        for r in sorted((r for r in rows if int(r["horizon"]) == h), key=_row_order):
            s = r.get("skill")
            words = ("" if s is None else f"{s:+.3f}" + (f" ({r['skill_lo']:+.3f} to {r['skill_hi']:+.3f})"
                                                          if r.get("skill_lo") is not None else ""))
            name = str(r["model"]) + (" (best naive)" if r["model"] == best and r.get("data") == "dp" else "")
            lines.append(f"{h:>7} {name:<26} {str(r.get('data', 'dp')):<5} {r['r2']:>7.3f} {r['mae']:>7.3f} "
                         f"{int(r.get('n') or 0):>6}  {words}")
    gate = skill.get("gate") or {}
    lines.append(f"gate at horizon {configured}: " + ("RELEASABLE" if gate.get("releasable") else "NOT RELEASABLE")
                 + (f" (federated skill {gate['skill']:+.3f}, 90% interval {gate['skill_lo']:+.3f} to "
                    f"{gate['skill_hi']:+.3f})" if gate.get("skill") is not None and gate.get("skill_lo") is not None
                    else ""))
    for lang in ("nl", "en"):   # Dutch first
        if gate.get(f"verdict_{lang}"):
            lines.append(f"  {gate[f'verdict_{lang}']}")
    return "\n".join(lines)


def _row_order(row: dict[str, Any]) -> tuple[int, int, str]:
    order = ["federated_dp", "pooled", "linear_reference", "label_history", "persistence", "trailing_mean",
             "seasonal_naive"]
    model = str(row["model"])
    rank = order.index(model) if model in order else (1 if model.startswith(("partner:", "without:")) else len(order))
    return (row.get("data", "dp") != "dp", rank, model)


def warning_table(warnings: pd.DataFrame, skill: dict[str, Any], names: dict[str, str], top: int = 10) -> str:
    """The warning list at the configured horizon: the areas expected to worsen most beyond the noise when
    the model has skill, else (the gate refused it) the naive ranking, last period's worst movers."""
    import pandas as pd

    gate = skill.get("gate") or {}
    h = int(skill["configured_horizon"])
    w = warnings[pd.to_numeric(warnings["horizon"]) == h].copy()
    if gate.get("releasable"):
        w = w[pd.to_numeric(w["model_rank"], errors="coerce").notna()]
        w = w.assign(rank=pd.to_numeric(w["model_rank"])).sort_values("rank").head(top)
        head = f"areas expected to worsen most beyond the noise, {h} months ahead (model; naive rank beside it):"
        if w.empty:
            return head + "\n  none: no area is expected to worsen beyond the noise"
        body = [f"  {int(r['rank']):>3}. {names.get(r['area_code'], r['area_code']):<28} {r['area_code']:<11} "
                f"change {float(r['change']):+.3f} ({float(r['change_lo']):+.3f} to {float(r['change_hi']):+.3f}); "
                f"naive rank {'-' if pd.isna(r['naive_rank']) else int(float(r['naive_rank']))}" for _, r in w.iterrows()]
        return "\n".join([head, *body])
    w = w[pd.to_numeric(w["naive_rank"], errors="coerce").notna()]
    w = w.assign(rank=pd.to_numeric(w["naive_rank"])).sort_values("rank").head(top)
    head = (f"the model's warning list is withheld (no skill at {h} months); the naive ranking, last period's "
            "worst movers:")
    body = [f"  {int(r['rank']):>3}. {names.get(r['area_code'], r['area_code']):<28} {r['area_code']:<11} "
            f"last change {float(r['naive_change']):+.3f}" for _, r in w.iterrows()]
    return "\n".join([head, *body])


def exact_rows(run_dir: Path, fed: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows `data: exact` for the skill table: the run's held-out forecasts (every model and naive forecast
    from the DP history) scored against the EXACT label, and, on the same areas, origins and folds, the pooled
    model without privacy and the naive forecasts on exact data. Skill over the best naive forecast from the
    DP label history, 90% interval over whole areas. A development view: only the demo, which runs every
    synthetic node, can read the exact label; a real run's report never shows these rows."""
    import warnings

    import pandas as pd

    from federation.dataset import read_node_features
    from server.forecast.evaluate import Learned, rolling_evaluation
    from server.forecast.models import Network
    from server.forecast.skill import best_naive, score_models
    from server.vertical_forecast import forecast_config, label_grid, label_panel, partner_panels

    cfg = json.loads((run_dir / "config.json").read_text())
    fcfg = forecast_config(cfg)
    partners = {p: tuple(s["blocks"]) for p, s in fed["partners"].items()}
    blocks: dict[str, pd.DataFrame] = {}
    label = None
    for partner, spec in fed["partners"].items():
        got, lab = read_node_features(spec["node_dir"], list(spec["blocks"]), with_label=partner == fed["label"]["partner"])
        blocks.update(got)
        label = lab if lab is not None else label
    held = pd.read_csv(run_dir / "forecast" / "predictions.csv", dtype={"area_code": str, "origin": str, "target": str})
    held = held[held["held_out"].astype(str).str.lower() == "true"]
    areas = tuple(sorted(set(held["area_code"])))   # the run's areas: the folds are drawn over the same set
    truth = label_panel(label, areas, label_grid(label)[1], fed["label"].get("survey_months"), released=False)
    exact = partner_panels(blocks, {}, partners, None, truth.areas, truth.periods, released=False)
    cell = {(a, p): truth.values[i, j] for i, a in enumerate(truth.areas) for j, p in enumerate(truth.periods)}
    pooled = {"pooled": Learned(("history", *exact), lambda w, s: Network(w, seed=s))}
    rows: list[dict[str, Any]] = []
    for h in sorted({int(x) for x in held["horizon"]}):
        mine = held[held["horizon"] == h].copy()
        mine["truth"] = [cell.get((a, t), float("nan")) for a, t in zip(mine["area_code"], mine["target"])]
        with warnings.catch_warnings():   # a feature with no value before an early origin: NaN, said once below
            warnings.simplefilter("ignore", RuntimeWarning)
            ref = rolling_evaluation(truth, truth, exact, h, pooled, fcfg.evaluation(), reference=True)
        ref = ref[ref["model"] != "label_history"].assign(model=lambda f: f["model"].where(
            f["model"] == "pooled", f["model"] + " (exact)"))
        keys = ["area_code", "origin", "target"]
        common = mine[keys].drop_duplicates().merge(ref[keys].drop_duplicates(), on=keys)
        both = pd.concat([mine, ref], ignore_index=True).merge(common, on=keys)
        both = both[both["truth"].notna()]
        if both.empty:
            continue
        naive = best_naive(both)
        for r in score_models(both, naive, seed=fcfg.seed):
            if r["model"] in ("federated_dp", naive):        # the run's forecasts, scored on the exact label
                rows.append({**r, "horizon": h, "data": "dp*"})
            elif r["model"] == "pooled" or r["model"].endswith("(exact)"):
                rows.append({**r, "horizon": h, "data": "exact"})
    return rows
