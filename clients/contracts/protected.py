"""Protected attributes and person identifiers: refused as features by name and by content.

The rules are YAML (`configs/protected.yaml`) so that a data-protection officer can read and extend
them. By name: before any data is read, every column a feature uses (directly or through an op) is
matched against the patterns. By content: after reading, the values of used text-like columns are
tested for BSNs (Dutch 11-test), personal names and exact addresses. Audit columns and person
pseudonyms have their own roles and are never features either.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

from federation.config import configs_dir, load_yaml
from federation.errors import ConfigError

PROTECTED_FILE = "protected.yaml"
CONTENT_TYPES = ("string", "integer", "category", "multi_category")
_SAMPLE = 20_000  # distinct values tested per column: enough to decide, cheap on 10^7 rows


@dataclass(frozen=True)
class NameRule:
    group: str      # "protected_attributes" | "person_identifiers"
    name: str
    pattern: re.Pattern

    @property
    def label(self) -> str:
        return f"{self.group}.{self.name}"


@dataclass(frozen=True)
class ContentRule:
    name: str
    description: str
    check: str | None
    regex: re.Pattern | None
    min_share: float
    min_distinct: int


def normalise(text: str) -> str:
    """Lower case, accents dropped, every separator removed: how concept stems are matched."""
    decomposed = unicodedata.normalize("NFKD", str(text).lower())
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch)).replace("ς", "σ")
    return re.sub(r"[\W_]+", "", plain)


@dataclass(frozen=True)
class Rules:
    names: tuple[NameRule, ...]
    content: tuple[ContentRule, ...]
    path: str
    concepts: tuple[tuple[str, str], ...] = ()   # (concept, normalised stem)

    def match_name(self, column: str) -> NameRule | None:
        """The first rule whose pattern occurs in the lower-cased column name, else a protected concept."""
        low = column.lower()
        for rule in self.names:
            if rule.pattern.search(low):
                return rule
        return self.concept_in(column)

    def concept_in(self, text: str) -> NameRule | None:
        """A protected concept whose stem occurs in `text` (a name, a filter value, a description)."""
        plain = normalise(text)
        for concept, stem in self.concepts:
            if stem in plain:
                return NameRule("protected_concepts", f"{concept} ('{stem}')", re.compile(re.escape(stem)))
        return None

    def is_protected_attribute(self, column: str) -> NameRule | None:
        rule = self.match_name(column)
        return rule if rule is not None and rule.group != "person_identifiers" else None


@lru_cache(maxsize=None)
def load_rules(path: str | None = None) -> Rules:
    """The rules of `configs/protected.yaml` (or of `path`)."""
    file = configs_dir() / PROTECTED_FILE if path is None else path
    data = load_yaml(file)
    names = []
    for group in ("protected_attributes", "person_identifiers"):
        for name, patterns in (data.get(group) or {}).items():
            for pattern in patterns:
                try:
                    names.append(NameRule(group, str(name), re.compile(str(pattern))))
                except re.error as err:
                    raise ConfigError(f"{file}: {group}.{name}: bad pattern {pattern!r} ({err})") from None
    content = []
    for name, spec in (data.get("content_rules") or {}).items():
        check, regex = spec.get("check"), spec.get("regex")
        if (check is None) == (regex is None):
            raise ConfigError(f"{file}: content_rules.{name}: give exactly one of `check` or `regex`")
        if check is not None and check not in CHECKS:
            raise ConfigError(f"{file}: content_rules.{name}: unknown check {check!r} (known: {', '.join(CHECKS)})")
        content.append(ContentRule(
            name=str(name), description=str(spec.get("description", name)), check=check,
            regex=None if regex is None else re.compile(str(regex)),
            min_share=float(spec.get("min_share", 0.5)), min_distinct=int(spec.get("min_distinct", 10)),
        ))
    if not names:
        raise ConfigError(f"{file}: no name rules found")
    concepts = []
    for concept, stems in (data.get("protected_concepts") or {}).items():
        if not isinstance(stems, list) or not all(isinstance(x, str) and normalise(x) for x in stems):
            raise ConfigError(f"{file}: protected_concepts.{concept}: give a list of word stems")
        concepts.extend((str(concept), normalise(x)) for x in stems)
    return Rules(tuple(names), tuple(content), str(file), tuple(concepts))


def dutch_11_test(values: pd.Series) -> np.ndarray:
    """True where a value is 8 or 9 digits (leading zero dropped) that pass the BSN 11-test:
    9*d1 + 8*d2 + ... + 2*d8 - 1*d9 is a multiple of 11 (and not all zeros)."""
    text = values.astype(str).str.strip().str.replace(r"\.0$", "", regex=True)
    ok = text.str.fullmatch(r"\d{8,9}").to_numpy(dtype=bool)
    out = np.zeros(len(text), dtype=bool)
    if not ok.any():
        return out
    digits = text[ok].str.zfill(9).to_numpy(dtype="U9")
    arr = np.frombuffer("".join(digits).encode("ascii"), dtype=np.uint8).reshape(-1, 9).astype(np.int64) - 48
    weights = np.array([9, 8, 7, 6, 5, 4, 3, 2, -1])
    total = arr @ weights
    out[ok] = (total % 11 == 0) & (arr.sum(axis=1) > 0)
    return out


CHECKS = {"dutch_11_test": dutch_11_test}


def content_violation(rules: Rules, values: pd.Series) -> ContentRule | None:
    """The first content rule the column's values satisfy, if any."""
    present = values.dropna()
    distinct = pd.Series(present.astype(str).unique()[:_SAMPLE])
    if distinct.empty:
        return None
    for rule in rules.content:
        if len(distinct) < rule.min_distinct:
            continue
        if rule.check is not None:
            hits = CHECKS[rule.check](distinct)
        else:
            hits = distinct.str.fullmatch(rule.regex.pattern).to_numpy(dtype=bool)
        if hits.mean() >= rule.min_share:
            return rule
    return None

