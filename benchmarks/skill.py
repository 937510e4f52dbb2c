"""Forecast skill over the naive forecasts, on held-out areas AND held-out future months, per epsilon.

For each dataset, every partner releases its blocks (and the label partner the label) with the node's own
release code at each target epsilon per unit (`benchmarks.vertical.partner_releases`: OpenDP Gaussian
noise per private table), several times (independent draws). From each set of releases the coordinator's
forecasting (`server.forecast`: post-processing) is scored by rolling origin x held-out areas: for every
test origin T and every fold of areas, models train on the other areas at origins whose target was
released by T, and forecast T + h for the held-out areas, scored against the EXACT label in the label's own
units. Models: the naive forecasts from the DP label history (persistence, trailing mean with its window
chosen on the training origins, seasonal naive), the label-history model (ridge on the label's own
released history), the linear reference (ridge on every feature), the federated DP model (the block
network on every feature: the label's history and each partner's released blocks with their lags and
trends), each partner alone (the network on the label's history and that partner's block), and on the
EXACT data the pooled model and the naive forecasts for reference. Skill = 1 - MSE / MSE(best naive), with
a 90% interval from resampling whole areas; the worsening list (predicted change against the recent
level) is scored by precision at 5 and 10 and Spearman's rank correlation beside the naive list (last
period's worst movers).

    python -m benchmarks.skill [--dataset heerlen heerlen_null leicestershire] [--quick]
                               [--epsilons 1 3] [--draws 3] [--horizons 1 3] [--origins 3] [--seed 0]
                               [--months 36] [--records 250000]

Prints one table per dataset and horizon (stdout), progress on stderr; writes runs/bench/skill.json and,
per dataset, the artefacts of the forecast at the largest epsilon's first draw under
runs/bench/skill/<dataset>/forecast/ (skill.json, predictions.csv, warnings.csv).
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from benchmarks import common
from benchmarks.vertical import leicestershire_root, partner_releases
from federation.errors import PulseTwinError
from federation.output import progress, result, setup_logging
from federation.shrinkage import ShrinkageConfig
from server.forecast.artefacts import write_all
from server.forecast.evaluate import Learned, current_forecasts, rolling_evaluation
from server.forecast.gate import gate, verdicts
from server.forecast.models import Network, Ridge
from server.forecast.naive import NAIVE_MODELS
from server.forecast.panel import Panel
from server.forecast.run import MODEL, ForecastConfig, skill_document, warnings_at
from server.forecast.skill import best_baseline, score_models
from server.forecast.warning import warning_scores
from server.vertical_forecast import partner_panels

EPSILONS = (1.0, 3.0)
HORIZONS = (1, 3)


@dataclass(frozen=True)
class HeerlenWindow:
    """The synthetic Heerlen's window and size. Default: the profile's own window (36 months from 2019-01, 12
    quarterly survey waves) and the generator's default records, as `pulse-twin generate` and the demo make
    them. A longer window (`--months`) keeps the records per month (`records` scales with it unless set) and
    raises every contract's bound on a person's rows (`privacy_unit.max_rows_per_person`) to months + 1, as
    the contracts say a longer export must; a larger `--records` gives the partners larger counts per buurt."""

    months: int | None = None
    records: int | None = None

    def build(self, world: str) -> Path:
        from devtools.synthetic.defaults import DEFAULT_PROFILES, DEFAULT_RECORDS
        from devtools.synthetic.profile import load as load_profile

        start, own = load_profile(DEFAULT_PROFILES, "heerlen").window or ("2019-01", 36)
        months = self.months if self.months is not None and self.months != own else None
        records = self.records or round(DEFAULT_RECORDS * (months or own) / own)
        k = None if months is None or months <= own else months + 1
        progress(f"[heerlen, {world} world] {months or own} months from {start}, {records:,} raw records"
                 + (f"; every contract's privacy_unit.max_rows_per_person raised to {k}" if k else ""))
        return common.cities_data(cities=("heerlen",), months=months, world=world, records=records,
                                  rows_per_person=k)


# dataset -> (federation, data builder given the Heerlen window, label units, which way the label worsens)
DATASETS: dict[str, tuple[str, Callable[[HeerlenWindow], Path], str, str]] = {
    "heerlen": ("heerlen", lambda w: w.build("default"), "Leefbaarometer points", "lower"),
    "heerlen_null": ("heerlen", lambda w: w.build("null"), "Leefbaarometer points", "lower"),
    "leicestershire": ("leicestershire", lambda w: leicestershire_root(), "crimes per 1,000", "higher"),
}


def panels(fed: Mapping[str, Any], blocks: Mapping[str, Mapping[str, pd.DataFrame]], label: pd.DataFrame,
           noise: Mapping[str, pd.DataFrame], released: bool, truth: Panel | None = None,
           shrinkage: ShrinkageConfig | None = None) -> tuple[Panel, dict[str, dict[str, Panel]]]:
    """The label panel and {partner: {block.feature: Panel}} on the label's grid (truth's, if given), made as a
    vertical run makes them (`server.vertical_forecast.partner_panels`: released blocks shrunk by their known
    noise as the run's `vertical.shrinkage` says), so that the benchmark scores the run's own forecaster."""
    grid = truth or Panel.from_frame(label, "label", released=released)
    lab = Panel.from_frame(label, "label", released=released, areas=grid.areas, periods=grid.periods)
    flat = {b: frame for p in fed["partners"] for b, frame in blocks[p].items()}
    own = {p: tuple(blocks[p]) for p in fed["partners"]}
    return lab, partner_panels(flat, noise, own, shrinkage or ShrinkageConfig(), grid.areas, grid.periods,
                               released=released)


def learned_models(partners: Sequence[str], alone: bool) -> dict[str, Learned]:
    groups = ("history", *partners)
    out = {"label_history": Learned(("history",), lambda w, s: Ridge(seed=s)),
           "linear_reference": Learned(groups, lambda w, s: Ridge(seed=s)),
           MODEL: Learned(groups, lambda w, s: Network(w, seed=s))}
    if alone:
        out.update({f"partner:{p}": Learned(("history", p), lambda w, s, p=p: Network(w, seed=s)) for p in partners})
    return out


def run_dataset(name: str, epsilons: Sequence[float], draws: int, fc: ForecastConfig,
                alone: bool, out_dir: Path, window: HeerlenWindow = HeerlenWindow()) -> dict[str, Any]:
    fed_name, make_root, units, worse = DATASETS[name]
    started = time.perf_counter()
    root = make_root(window)
    cfg = common.compose_cfg([f"federation={fed_name}", f"federation.data_root={root}"])
    fed = cfg["federation"]
    # the gate's horizon: the federation's own (label.horizon) where it is among the horizons measured
    own = fed["label"].get("horizon")
    gate_h = int(own) if own is not None and int(own) in fc.horizons else fc.configured_horizon
    fc = replace(fc, worse=worse, configured_horizon=gate_h)
    progress(f"[{name}] data ready ({time.perf_counter() - started:.0f} s); exact blocks and label")
    ex_blocks, ex_label, _ = partner_releases(fed, None, "exact")
    truth, ex_partners = panels(fed, ex_blocks, ex_label, {}, released=False)
    # A survey label exists only in its wave months; which months those are is public (the survey's design),
    # so released values of other months (noise over an empty sample) are set aside, as the coordinator would.
    waves = [p for p, any_ in zip(truth.periods, np.isfinite(truth.values).any(axis=0)) if any_]
    progress(f"[{name}] {len(truth.areas)} areas x {len(truth.periods)} periods "
             f"({truth.periods[0]} .. {truth.periods[-1]}); label released in "
             f"{int(np.isfinite(truth.values).any(axis=0).sum())} of them")
    ev = fc.evaluation()
    step = lambda text: progress(f"[{name}] {text}")   # noqa: E731
    per: dict[tuple[str, int, str, float | None], list[dict]] = {}
    warn: dict[tuple[int, float], list[dict]] = {}
    artefacts = {}

    def add(rows: list[dict], h: int, data: str, eps: float | None) -> None:
        for r in rows:
            per.setdefault((r["model"], h, data, eps), []).append(r)

    # exact reference: the pooled model and the naive forecasts on exact data
    exact_models = {"pooled": Learned(("history", *fed["partners"]), lambda w, s: Network(w, seed=s)),
                    "label_history": Learned(("history",), lambda w, s: Ridge(seed=s))}
    for h in fc.horizons:
        held = _reference(truth, ex_partners, h, exact_models, ev, step)
        add(score_models(held, seed=fc.seed), h, "exact", None)
    for eps in epsilons:
        for draw in range(draws):
            t0 = time.perf_counter()
            dp_blocks, dp_label, noise = partner_releases(fed, eps, f"skill-eps{eps:g}-{draw}")
            label, partners = panels(fed, dp_blocks, dp_label, noise, released=True, truth=truth,
                                     shrinkage=ShrinkageConfig.from_cfg(cfg["vertical"].get("shrinkage")))
            label = label.only_periods(waves)
            learned = learned_models(list(partners), alone)
            for h in fc.horizons:
                held = rolling_evaluation(label, truth, partners, h, learned, ev)
                add(score_models(held, seed=fc.seed), h, "dp", eps)
                warn.setdefault((h, eps), []).append(warning_scores(held, MODEL, worse, fc.top_k))
                if eps == max(epsilons) and draw == 0:
                    artefacts[h] = (held, current_forecasts(label, partners, h, learned, ev))
            progress(f"[{name}] epsilon {eps:g}, draw {draw + 1}/{draws}: {time.perf_counter() - t0:.0f} s")
    rows = _summarise(per)
    summary = {"dataset": name, "label_units": units, "worse": worse, "areas": len(truth.areas),
               "periods": [truth.periods[0], truth.periods[-1], len(truth.periods)], "epsilons": list(epsilons),
               "draws": draws, "horizons": list(fc.horizons), "test_origins": fc.test_origins, "folds": fc.folds,
               "rows": rows, "warning": {f"{h}|{e:g}": _mean_dicts(v) for (h, e), v in warn.items()},
               "seconds": round(time.perf_counter() - started, 1)}
    summary["files"] = _write_artefacts(out_dir / name, fc, units, rows, artefacts, summary, max(epsilons), draws)
    return summary


def _reference(truth: Panel, partners, h, learned, ev, step) -> pd.DataFrame:
    """Held-out rows of the exact-data reference (naive forecasts and pooled model on exact data)."""
    step(f"exact reference, horizon {h}")
    return rolling_evaluation(truth, truth, partners, h, learned, ev, reference=True)


def _mean_dicts(items: list[dict]) -> dict[str, float | None]:
    """Per key, the mean over draws of the finite values (None if there is none)."""
    out: dict[str, float | None] = {}
    for k in items[0]:
        vals = [float(i[k]) for i in items if i[k] is not None and np.isfinite(i[k])]
        out[k] = float(np.mean(vals)) if vals else None
    return out


def _summarise(per: Mapping[tuple, list[dict]]) -> list[dict]:
    """One row per (model, horizon, data, epsilon): means over DP draws, the R² spread, every draw's R²."""
    rows = []
    for (model, h, data, eps), items in per.items():
        r2 = [i["r2"] for i in items]
        row = {"model": model, "horizon": h, "data": data, "epsilon": eps}
        for k in ("r2", "mae", "skill", "skill_lo", "skill_hi", "coverage_90"):
            vals = [i.get(k) for i in items if i.get(k) is not None]
            row[k] = float(np.mean(vals)) if vals else None
        row["skill_sd"] = float(np.std([i["skill"] for i in items])) if len(items) > 1 and row["skill"] is not None else None
        row["n"] = items[0]["n"]
        row["r2_sd"] = float(np.std(r2)) if len(items) > 1 else None
        row["r2_draws"] = r2
        if model == "trailing_mean":
            row["window"] = items[0].get("window")
        rows.append(row)
    return rows


def _write_artefacts(run_dir: Path, fc: ForecastConfig, units: str, rows: list[dict], artefacts, summary,
                     eps: float, draws: int) -> list[str]:
    """RUN_DIR/forecast/ of the benchmark: skill.json with every row, the held-out and current predictions and
    warnings of the largest epsilon's first draw."""
    h = fc.configured_horizon if fc.configured_horizon in artefacts else max(artefacts)
    held, current = artefacts[h]
    best = {str(k): best_baseline(v[0]) for k, v in artefacts.items()}
    mine = next((r for r in rows if r["model"] == MODEL and r["horizon"] == h and r["epsilon"] == eps), {})
    g = gate(h, mine.get("skill"), mine.get("skill_lo"), mine.get("skill_hi"), best[str(h)])
    warnings = warnings_at(current, replace(fc, configured_horizon=h), MODEL, g["releasable"])
    doc = skill_document(sorted(artefacts), replace(fc, configured_horizon=h), units,
                         sorted(set(held["origin"])), rows, best, g,
                         {"horizon": h, **(summary["warning"].get(f"{h}|{eps:g}") or {})},
                         g["releasable"], draws)
    predictions = pd.concat([pd.concat([v[0] for v in artefacts.values()]).assign(held_out=True),
                             pd.concat([v[1] for v in artefacts.values()]).assign(held_out=False)],
                            ignore_index=True)
    summary["gate"] = g
    return [str(p) for p in write_all(run_dir, doc, predictions, warnings)]


ORDER = ["federated_dp", "pooled", "linear_reference", "label_history", "persistence", "trailing_mean",
         "seasonal_naive"]


def _sort_key(row: dict) -> tuple:
    m = row["model"]
    base = ORDER.index(m) if m in ORDER else (1.5 if m.startswith("partner:") else 99)
    return (base, m, row["data"], row["epsilon"] or 0)


def table(summary: dict[str, Any]) -> str:
    lines = []
    fmt = common.fmt
    for h in summary["horizons"]:
        lines.append(f"== {summary['dataset']}, horizon {h}: held-out areas x {summary['test_origins']} latest "
                     f"origins ({summary['folds']} folds), scored on the exact label in {summary['label_units']}; "
                     f"DP rows: mean of {summary['draws']} releases (sd); skill over the best naive forecast from the "
                     "DP label history, the label-history model included (exact rows: from the exact history; "
                     "label_history: over the simple naive forecasts), 90% interval over areas")
        lines.append(f"{'model':<26}{'data':>6}{'eps':>5}{'R²':>8}{'(sd)':>8}{'MAE':>8}{'skill':>8}"
                     f"{'90% interval':>18}{'cover':>7}")
        for r in sorted((r for r in summary["rows"] if r["horizon"] == h), key=_sort_key):
            interval = ("" if r["skill_lo"] is None else f"[{r['skill_lo']:+.3f}, {r['skill_hi']:+.3f}]")
            name = r["model"] + (f" (w={r['window']})" if r.get("window") else "")
            eps = "" if r["epsilon"] is None else f"{r['epsilon']:g}"
            lines.append(f"{name:<26}{r['data']:>6}{eps:>5}"
                         f"{fmt(r['r2'])}{fmt(r['r2_sd'])}{fmt(r['mae'])}{fmt(r['skill'])}{interval:>18}"
                         f"{fmt(r['coverage_90'], 7, 2)}")
        for e in summary["epsilons"]:
            w = summary["warning"].get(f"{h}|{e:g}")
            if w:
                f2 = lambda v: "-" if v is None else f"{v:.2f}"   # noqa: E731
                lines.append(f"worsening list, federated DP eps {e:g}: precision@5 {f2(w['precision_at_5'])}, "
                             f"@10 {f2(w['precision_at_10'])}, Spearman {f2(w['spearman'])}; naive list (last "
                             f"movers): @5 {f2(w['naive_precision_at_5'])}, @10 {f2(w['naive_precision_at_10'])}, "
                             f"Spearman {f2(w['naive_spearman'])}")
    g = summary.get("gate")
    if g:
        lines.append(f"gate (h={g['horizon']}, eps {max(summary['epsilons']):g}, first draw's artefacts): "
                     f"{'RELEASABLE' if g['releasable'] else 'NOT RELEASABLE'}")
        lines += [f"  {code}: {text}" for code, text in verdicts(g).items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.skill", description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", nargs="+", choices=sorted(DATASETS), default=list(DATASETS), dest="datasets")
    p.add_argument("--quick", action="store_true",
                   help="one release per epsilon, the latest test origin only, no partner-alone models")
    p.add_argument("--epsilons", nargs="+", type=float, default=list(EPSILONS))
    p.add_argument("--draws", type=int, default=None, help="independent releases per epsilon (default 3; quick 1)")
    p.add_argument("--horizons", nargs="+", type=int, default=list(HORIZONS))
    p.add_argument("--origins", type=int, default=None, help="latest test origins (default 3; quick 1)")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--months", type=int, default=None,
                   help="heerlen datasets: months of the window from 2019-01 (default: the profile's own, 36); "
                        "longer raises every contract's privacy_unit.max_rows_per_person to months + 1")
    p.add_argument("--records", type=int, default=None,
                   help="heerlen datasets: raw records (default: the generator's default per 36 months)")
    args = p.parse_args(argv)
    if args.months is not None and args.months < 24:
        p.error(f"--months {args.months}: at least 24 months (a year of history and test origins)")
    setup_logging()
    common.single_threaded()
    common.quiet_flower()
    draws = args.draws or (1 if args.quick else 3)
    fc = ForecastConfig(horizons=tuple(args.horizons), configured_horizon=args.horizons[-1] if 3 not in args.horizons else 3,
                        test_origins=args.origins or (1 if args.quick else 3), folds=args.folds, seed=args.seed)
    out = []
    try:
        for name in args.datasets:
            summary = run_dataset(name, args.epsilons, draws, fc, alone=not args.quick,
                                  out_dir=common.RESULTS_DIR / "skill",
                                  window=HeerlenWindow(args.months, args.records))
            out.append(summary)
            result(table(summary))
            result(f"artefacts: {', '.join(summary['files'])}")
    except PulseTwinError as err:   # a setting the data cannot meet (e.g. too few --records for --months)
        print(f"benchmarks.skill: {err}", file=sys.stderr)
        return err.exit_code
    name = "skill" if set(args.datasets) == set(DATASETS) else "skill-" + "-".join(args.datasets)
    result(f"written: {common.write_json(name, out)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
