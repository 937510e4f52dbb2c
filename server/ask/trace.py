"""The check that every number of an answer traces to the run's artefacts.

Independently of how the answer was made, it reads the numbers in the answer's text, re-derives each fact
from the files its recipe names (plain csv and json reading, no pandas), and reports every number that no
re-derived fact gives at the precision printed, and every month that is not a month of the run's files.
Codes (BU..., WK...), months, the run's name and file names are not numbers of the answer.
"""
from __future__ import annotations

import csv
import json
import math
import re
import statistics
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

NUMBER = re.compile(r"(?<![\w.,^-])-?\d+(?:[.,]\d+)?(?:e[-+]?\d+)?(?![\w])")
MONTH = re.compile(r"(?<!\d)((?:19|20)\d{2}-(?:0[1-9]|1[0-2]))(?!\d)")
MASKS = (re.compile(r"\b[A-Z]{2}\d{4,}\b"), re.compile(r"\b[A-Z]{2}-[A-Z]{3}:\S+"),
         re.compile(r"[\w./-]+\.(?:csv|json|yaml|pt|parquet)\b"), re.compile(r"e\^ε"))


class Deriver:
    """Re-derives recipes from the files of one run directory."""

    def __init__(self, run_dir: Path, settings: dict[str, Any]):
        self.run_dir, self.settings = Path(run_dir), settings

    @lru_cache(maxsize=None)
    def rows(self, file: str) -> tuple[dict[str, str], ...]:
        with open(self.run_dir / file, encoding="utf-8", newline="") as handle:
            return tuple(csv.DictReader(handle))

    @lru_cache(maxsize=None)
    def document(self, file: str) -> Any:
        return json.loads((self.run_dir / file).read_text(encoding="utf-8"))

    @lru_cache(maxsize=None)
    def _index(self, file: str, keys: tuple[str, ...]) -> dict[tuple[str, ...], list[dict[str, str]]]:
        index: dict[tuple[str, ...], list[dict[str, str]]] = {}
        for row in self.rows(file):
            index.setdefault(tuple(_plain(row.get(k, "")) for k in keys), []).append(row)
        return index

    def _select(self, file: str, where: dict[str, str]) -> list[dict[str, str]]:
        keys = tuple(sorted(where))
        return self._index(file, keys).get(tuple(_plain(where[k]) for k in keys), [])

    def value(self, r: dict[str, Any]) -> float:
        op = r["op"]
        args = [self.value(a) for a in r.get("args", [])] if op not in ("count",) else r.get("args", [])
        if op == "cell":
            found = self._select(r["file"], r["where"])
            if len(found) != 1:
                raise LookupError(f"{r['file']}: {len(found)} rows match {r['where']}")
            return float(found[0][r["column"]])
        if op == "json":
            data = self.document(r["file"])
            for key in r["path"]:
                data = data[key]
            return float(data)
        if op == "noise_sd":
            rows = sorted(self._select(r["file"], r["where"]), key=lambda x: x[r["order"]])
            values = [float(x[r["column"]]) for x in rows if x[r["column"]] not in ("", "nan")]
            diffs = [b - a for a, b in zip(values, values[1:])]
            centre = statistics.median(diffs)
            return 1.4826 * statistics.median(abs(d - centre) for d in diffs) / math.sqrt(2)
        if op == "conformal":
            errors = sorted(abs(float(x[r["y"]]) - float(x[r["pred"]])) for x in self.rows(r["file"])
                            if x[r["y"]] not in ("", "nan") and x[r["pred"]] not in ("", "nan"))
            k = math.ceil((len(errors) + 1) * float(r["level"]))
            return errors[k - 1]
        if op == "z":
            return statistics.NormalDist().inv_cdf(0.5 + float(r["level"]) / 2)
        if op == "setting":
            return float(self.settings[r["key"]])
        if op == "attribution":
            from server.ask.drivers import attribution_row

            row = attribution_row(self.run_dir, r["area"])
            return row[r["feature"]][1]
        if op == "const":
            return float(r["value"])
        if op == "count":
            for a in args:
                self.value(a)
            return float(len(args))
        if op == "mean":
            return sum(args) / len(args)
        if op == "add":
            return sum(args)
        if op == "sub":
            return args[0] - args[1]
        if op == "mul":
            return math.prod(args)
        if op == "hypot":
            return math.sqrt(sum(a * a for a in args))
        if op == "se_mean":
            return math.sqrt(sum(a * a for a in args)) / len(args)
        raise ValueError(f"unknown recipe op {op!r}")

    def months(self) -> set[str]:
        """Every month the run's files name."""
        found: set[str] = set()
        for path in (p for pattern in ("*.csv", "forecast/*.csv", "releases/*.csv") for p in self.run_dir.glob(pattern)):
            found |= set(MONTH.findall(path.read_text(encoding="utf-8")))
        for path in self.run_dir.glob("*.yaml"):
            found |= set(MONTH.findall(path.read_text(encoding="utf-8")))
        label = self.document("config.json").get("federation", {}).get("label", {}) \
            if (self.run_dir / "config.json").is_file() else {}
        shift = _label_horizon(label)
        more = set()
        for m in found:
            index = int(m[:4]) * 12 + int(m[5:7]) - 1 + shift
            more.add(f"{index // 12:04d}-{index % 12 + 1:02d}")
        return found | more


def _label_horizon(label: dict) -> int:
    """The months between a held-out row's `period` (its origin) and its released `y_dp`: the configured
    horizon (`label.horizon`, else the first of `label.horizons`), or an older run's `label.shift`."""
    if "horizons" in label:
        return int(label.get("horizon", (label["horizons"] or [1])[0]))
    return int(label.get("shift", 1))


def _plain(value: Any) -> str:
    """A cell as compared: numbers by value ('3' and '3.0' alike), anything else as text."""
    text = str(value)
    if text.lower() in ("true", "false"):
        return text.lower()
    try:
        number = float(text)
    except ValueError:
        return text
    return repr(number) if not text.isalpha() else text


def _grounded(recipe: dict[str, Any]) -> bool:
    """Whether a recipe reads at least one artefact (or a setting), not constants alone."""
    if recipe.get("op") in ("cell", "json", "noise_sd", "conformal", "attribution", "setting"):
        return True
    return any(_grounded(a) for a in recipe.get("args", []))


def untraceable(answer: dict[str, Any], run_dir: Path, settings: dict[str, Any],
                extra_months: Iterable[str] = ()) -> list[str]:
    """The numbers and months of an answer (its `to_dict()`) that its run's artefacts do not give."""
    text = answer["text"]
    names = sorted(answer.get("names") or [], key=len, reverse=True)
    for name in [answer.get("run") or "", *names, *re.findall(r"\[[A-Z]\]", text)]:
        if name:
            text = text.replace(name, " ")
    deriver = Deriver(run_dir, settings)
    months = deriver.months() | set(extra_months)
    bad = [m for m in MONTH.findall(text) if m not in months]
    text = MONTH.sub(" ", text)
    for mask in MASKS:
        text = mask.sub(" ", text)
    derived = []
    for fact in answer.get("facts", []):
        try:
            value = deriver.value(fact["recipe"]) if _grounded(fact["recipe"]) else None
        except (LookupError, KeyError, ValueError, OSError, IndexError, ZeroDivisionError) as err:
            bad.append(f"fact not re-derived ({err})")
            value = None
        if value is not None:
            derived.append(value)
    for token in NUMBER.findall(text):
        if not any(_prints_as(value, token) for value in derived):
            bad.append(token)
    return bad


def _prints_as(value: float, token: str) -> bool:
    if "e" in token:
        return f"{value:.0e}" == token or f"{abs(value):.0e}" == token
    plain = token.replace(",", ".").lstrip("-")
    decimals = len(plain.split(".")[1]) if "." in plain else 0
    return f"{abs(value):.{decimals}f}" == plain or (decimals == 0 and float(plain) == round(abs(value)))
