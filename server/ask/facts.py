"""A fact is one number of an answer with the recipe that derives it from the run's artefacts.

Recipes are plain JSON so that `server/ask/trace.py` can re-derive every number from the files alone:
  {"op": "cell", "file": F, "where": {col: value}, "column": C}    one CSV cell (exactly one row matches)
  {"op": "json", "file": F, "path": [k, ...]}                        one value of a JSON file
  {"op": "noise_sd", "file": F, "where": {...}, "column": C, "order": "period"}
        an area's release noise: the robust spread (1.4826 x MAD) of its month-to-month differences / sqrt 2
  {"op": "conformal", "file": F, "y": C1, "pred": C2, "level": L}    split-conformal |error| quantile
  {"op": "z", "level": L}                                           two-sided normal quantile
  {"op": "mean" | "add" | "sub" | "mul" | "hypot" | "se_mean" | "count", "args": [...]}
  {"op": "const", "value": V}                                       a constant inside a derivation only
  {"op": "setting", "key": K}                                       a value of configs/ask/default.yaml
  {"op": "attribution", "area": A, "feature": F}                    a driver's share (forecast/drivers.csv)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Recipe = dict[str, Any]


@dataclass(frozen=True)
class Fact:
    value: float
    recipe: Recipe

    def __add__(self, other: "Fact") -> "Fact":
        return Fact(self.value + other.value, {"op": "add", "args": [self.recipe, other.recipe]})

    def __sub__(self, other: "Fact") -> "Fact":
        return Fact(self.value - other.value, {"op": "sub", "args": [self.recipe, other.recipe]})

    def times(self, other: "Fact") -> "Fact":
        return Fact(self.value * other.value, {"op": "mul", "args": [self.recipe, other.recipe]})


def cell(value: float, file: str, where: dict[str, str], column: str) -> Fact:
    return Fact(float(value), {"op": "cell", "file": file, "where": dict(where), "column": column})


def mean(facts: list[Fact]) -> Fact:
    return Fact(sum(f.value for f in facts) / len(facts), {"op": "mean", "args": [f.recipe for f in facts]})


def count(facts: list[Fact]) -> Fact:
    return Fact(float(len(facts)), {"op": "count", "args": [f.recipe for f in facts]})


def hypot(a: Fact, b: Fact) -> Fact:
    return Fact((a.value ** 2 + b.value ** 2) ** 0.5, {"op": "hypot", "args": [a.recipe, b.recipe]})


def se_mean(sds: list[Fact]) -> Fact:
    """The standard error of a mean of independent noisy values with these sds: sqrt(sum sd^2) / n."""
    return Fact(sum(s.value ** 2 for s in sds) ** 0.5 / len(sds), {"op": "se_mean", "args": [s.recipe for s in sds]})


def z(level: float) -> Fact:
    from statistics import NormalDist

    return Fact(NormalDist().inv_cdf(0.5 + level / 2), {"op": "z", "level": level})


def const(value: float) -> Fact:
    return Fact(float(value), {"op": "const", "value": value})


def setting(value: float, key: str) -> Fact:
    return Fact(float(value), {"op": "setting", "key": key})


def interval(center: Fact, se: Fact, level: float) -> tuple[Fact, Fact]:
    half = z(level).times(se)
    return center - half, center + half
