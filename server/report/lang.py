"""The report's words for residents and officials, from its language files (`lang/<code>.yaml`), Dutch first.

Every language file holds the same keys; `say(key, ...)` gives the text in every language, Dutch first, with
its {placeholders} filled in. A key missing from a file is an error naming the file (a half-translated page
would tell a Dutch reader less than an English one).
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from federation.errors import ConfigError

LANG_DIR = Path(__file__).resolve().parent / "lang"
LANGUAGES = ("nl", "en")   # the order a page shows them in: the twin's readers read Dutch first


@lru_cache(maxsize=None)
def texts(code: str) -> dict[str, Any]:
    """The texts of one language file."""
    path = LANG_DIR / f"{code}.yaml"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: language file not found") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: not a mapping of texts")
    return data


def text(code: str, key: str, **values: Any) -> str:
    """One text (`key` may be dotted: `naive.persistence`) in language `code`, filled in."""
    node: Any = texts(code)
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            raise ConfigError(f"{LANG_DIR / (code + '.yaml')}: no text '{key}'")
        node = node[part]
    return str(node).format(**values)


def say(key: str, **values: Any) -> list[tuple[str, str]]:
    """`(language, text)` for every language, Dutch first."""
    return [(code, text(code, key, **values)) for code in LANGUAGES]


def localise(formatted: str, decimal: str) -> str:
    """A number formatted the Python way ("1,234.5") written with `decimal` as the decimal sign ("1.234,5")."""
    if decimal == ".":
        return formatted
    return formatted.replace(",", "_").replace(".", decimal).replace("_", ".")


def number(code: str, value: float, spec: str) -> str:
    """`value` formatted by `spec` (e.g. "+.3f") in language `code`'s way (Dutch: a decimal comma)."""
    decimal = str(((texts(code).get("receipt") or {}).get("decimal")) or ".")
    return localise(format(value, spec), decimal)
