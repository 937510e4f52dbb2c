"""The model card: data, period, intended use, uses it must not serve, and limitations, from the run."""
from __future__ import annotations

from typing import Any

from server.report.inputs import RunOutputs
from server.report.intervals import Intervals

INTENDED = [
    "Area-level support for prevention and services: where a buurt may need attention from the municipality, "
    "the buurtteams or partners next month, as one input among others for people who know the area.",
    "Following the liveability of neighbourhoods over time, with the uncertainty shown.",
]
MUST_NOT = [
    "Any decision about a person or a household: the model knows areas, never people, and an area's score "
    "says nothing about anyone living there.",
    "Police deployment, patrols or checks based on the ranking alone.",
    "Ranking, labelling or publishing areas as 'problem areas', or treating residents differently because of "
    "where they live.",
    "Any use after the release gate said 'not releasable'.",
]


def model_card(run: RunOutputs, intervals: Intervals | None, suppressed: list[str]) -> dict[str, list[str]]:
    """Sections of the card in plain words."""
    fed = run.config["federation"]
    periods = sorted(set(run.holdout["period"].astype(str)) | set(run.members["period"].astype(str))
                     if run.members is not None else set(run.holdout["period"].astype(str)))
    predicted = sorted(set(run.predictions["predicted_period"].astype(str)))
    if run.topology == "vertical":
        holders = [f"{p} ({', '.join(spec.get('blocks', []))})" for p, spec in fed.get("partners", {}).items()]
        data = [f"Vertical federation '{fed['name']}': partners {', '.join(holders)}; each released its blocks once "
                "with person-level differential privacy; the coordinator trained the fusion model on the releases.",
                f"Label: liveability {_ahead(fed)}, {'a DP release of the resident survey' if run.label_source == 'dp_release' else run.label_source}; "
                "forecast from its own released history and the partners' releases, scored beside the naive forecasts."]
    else:
        data = [f"Horizontal federation '{fed['name']}': nodes {', '.join(fed.get('nodes', {}))} trained one model "
                "with DP-SGD on their own areas; only noised model updates left the nodes.",
                "Label: next month's liveability per area, each node's own."]
    data.append(f"Areas predicted: {len(run.predictions)}; suppressed (too few residents, never in any output): "
                f"{len(suppressed)}.")
    period = [f"Held-out evaluation over {periods[0]} to {periods[-1]}." if periods else "No held-out evaluation.",
              f"Predictions for {', '.join(predicted) or 'no period'} ({_ahead(fed) if run.topology == 'vertical' else 'next month'})."]
    limits = [
        "The model learns from a few years of monthly area figures; an area that changes fast (new housing, "
        "demolition, a closed facility) is predicted from its past.",
        "Every input and the label carry deliberate privacy noise; small areas are noisier.",
        _measured_on(run.holdout),
        "The fairness audit compares groups of areas, not people; small groups make its figures uncertain.",
    ]
    if intervals is not None:
        limits.append(f"Intervals are ±{intervals.half_width:.3f} points for every area (stated {intervals.level:.0%}); "
                      "they cover the released label, and are wider than needed for the true liveability.")
    config: dict[str, Any] = {"dp target epsilon": run.config.get("dp", {}).get("target_epsilon"),
                              "delta": run.config.get("dp", {}).get("delta"), "seed": run.config.get("seed")}
    settings = [f"Run '{run.name}' ({run.topology}); " + ", ".join(f"{k} {v}" for k, v in config.items() if v is not None)]
    return {"Data": data, "Period": period, "Intended use": INTENDED, "Must not be used for": MUST_NOT,
            "Limitations": limits, "Run": settings}


def _measured_on(holdout) -> str:
    """How quality was measured: one held-out fold, or cross-validation in which every area is held out once."""
    areas = holdout["area_code"].nunique()
    folds = holdout["fold"].nunique() if "fold" in holdout else 1
    if folds > 1:
        return (f"Quality was measured by {folds}-fold cross-validation over {areas} areas: each area's figures come "
                "from a model trained without it.")
    return f"Quality was measured on {areas} held-out areas only."


def _ahead(fed: dict[str, Any]) -> str:
    """How far ahead a vertical federation forecasts (its configured horizon), in words."""
    label = fed.get("label", {})
    h = int(label.get("horizon", label.get("shift", 1)))
    return "next month" if h == 1 else f"{h} months ahead"
