"""The yardstick table for the run's held-out areas and a verdict in words, worst news first.

Rows: the federated model and each partner alone on its own release (from the run's held-out
predictions, scored against the label as the run knows it), and the yardstick's pooled non-private model
and partner-alone models (from `pulse-twin baseline`, scored on the exact label) on the same areas. When
the federated model does no better than the mean, the verdict says so first and the predictions are
marked not fit for use.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from federation.task import r2_mae
from server.report.inputs import ReportInputError, RunOutputs
from server.report.yardstick_result import YardstickResult


@dataclass(frozen=True)
class Row:
    model: str
    scored_on: str
    r2: float
    mae: float
    n: int


@dataclass(frozen=True)
class Verdict:
    rows: list[Row]
    fit_for_use: bool
    words: list[str]
    r2: float | None


def yardstick_rows(path: Path | None, areas: set[str]) -> list[Row]:
    """The yardstick's models on the run's held-out areas (none without a yardstick file)."""
    if path is None:
        return []
    try:
        result = YardstickResult.from_json(path)
    except FileNotFoundError:
        raise ReportInputError(f"{path}: file not found") from None
    except (ValueError, KeyError, TypeError) as err:
        raise ReportInputError(f"{path}: not a yardstick file written by `pulse-twin baseline` ({err})") from None
    if not result.predictions:
        return [Row(name, "exact label, all areas", m["r2"], m["mae"], int(m["n"])) for name, m in result.models.items()]
    scored = result.score_on(areas)
    return [Row(name, "exact label", m["r2"], m["mae"], int(m["n"])) for name, m in scored.items() if m["n"] > 0]


def verdict(run: RunOutputs, baseline: Path | None, min_r2: float) -> Verdict:
    held = run.holdout
    label = "released label" if run.label_source == "dp_release" else run.label_source
    rows: list[Row] = []
    fed = None
    if len(held) >= 2:
        fed = r2_mae(held["y"].to_numpy(), held["pred"].to_numpy())
        rows.append(Row(f"federated ({run.topology})", label, fed["r2"], fed["mae"], int(fed["n"])))
        for column in [c for c in held.columns if c.startswith("pred_alone_")]:
            scored = held[held[column].notna()]
            m = r2_mae(scored["y"].to_numpy(), scored[column].to_numpy())
            rows.append(Row(f"{column.removeprefix('pred_alone_')} alone (its own release)", label, m["r2"], m["mae"], int(m["n"])))
    rows += yardstick_rows(baseline, set(held["area_code"].astype(str)))
    words: list[str] = []
    if fed is None and run.dp_heldout:
        return _from_noised_sums(run.dp_heldout, rows, min_r2)
    if fed is None:
        words.append("NOT FIT FOR USE: the run has no held-out areas, so nobody knows how good its predictions are.")
        return Verdict(rows, False, words, None)
    fit = fed["r2"] > min_r2
    if not fit:
        words.append(f"NOT FIT FOR USE: on areas it never trained on, the model does no better than predicting "
                     f"the same mean value for every area (R² {fed['r2']:.2f} against the {label}).")
    words.append(f"On {held['area_code'].nunique()} held-out areas the model explains {max(fed['r2'], 0):.0%} of "
                 f"the differences in liveability between area-months (R² {fed['r2']:.2f} against the {label}), "
                 f"with a mean error of {fed['mae']:.3f} points.")
    alone = [r for r in rows[1:] if r.model.endswith("(its own release)")]
    if alone:
        best = max(alone, key=lambda r: r.r2)
        better = fed["r2"] > best.r2
        words.append(f"The best partner alone ({best.model.split(' alone')[0]}) reaches R² {best.r2:.2f}: pooling "
                     + ("the partners' releases adds to it." if better else "the partners' releases adds nothing to it."))
    pooled = [r for r in rows if r.model.startswith("pooled")]
    if pooled:
        words.append(f"The pooled model without privacy, which nobody may run, reaches R² {pooled[0].r2:.2f} on "
                     "the exact label on the same areas: the price of privacy and federation.")
    return Verdict(rows, fit, words, fed["r2"])


def _from_noised_sums(heldout: dict, rows: list[Row], min_r2: float) -> Verdict:
    """A horizontal run's verdict: its global model's R² on the held-out fold's areas, from the nodes' noised
    held-out sums (each a charged DP release), the only evaluation the coordinator holds."""
    last = (heldout.get("rounds") or [{}])[-1]
    n = int(max(float(last.get("rows_dp") or 0), 0))
    if heldout.get("final_r2_dp") is None:
        return Verdict(rows, False, ["NOT FIT FOR USE: the nodes' noised held-out sums give no R² (their noise "
                                     "hides the spread of the label), so nobody knows how good the model is."], None)
    r2 = float(heldout["final_r2_dp"])
    rows = [Row("federated (horizontal)", "noised held-out sums (DP)", r2, float("nan"), n), *rows]
    fit = r2 > min_r2
    words = [] if fit else [f"NOT FIT FOR USE: on areas it never trained on, the model does no better than predicting "
                            f"the same mean value for every area (R² {r2:.2f}, from the nodes' noised held-out sums)."]
    words.append(f"On the held-out fold's areas (about {n} area-months, as the nodes' noised sums count them) the "
                 f"model explains {max(r2, 0):.0%} of the differences in liveability (R² {r2:.2f}). The coordinator "
                 "holds no node's features, so this report shows no per-area prediction of a horizontal run.")
    return Verdict(rows, fit, words, r2)


def default_baseline(run_dir: Path, config: dict) -> Path | None:
    """`runs/baseline-<federation>.json` beside the run, when `pulse-twin baseline` wrote one there."""
    path = Path(run_dir).parent / f"baseline-{config['federation']['name']}.json"
    return path if path.is_file() else None
