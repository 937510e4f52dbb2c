"""The report's words for residents and officials, from its language files (`configs/lang/report/<code>.yaml`).

Every language file holds the Dutch file's texts (`server.languages`); `say(key, ...)` gives the text in every
language the pages are shown in (`configs/languages.yaml`), the readers' own first, {placeholders} filled in.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any

from server.languages import folder, languages, lookup, shown

PAGE = "report"


@lru_cache(maxsize=None)
def texts(code: str) -> dict[str, Any]:
    """The texts of one language file (checked against the Dutch one: `server.languages`)."""
    return languages(folder(PAGE), (code,))[code]


def text(code: str, key: str, **values: Any) -> str:
    """One text (`key` may be dotted: `gate_passed`, `receipt.left`) in language `code`, filled in."""
    return str(lookup(texts(code), key, str(folder(PAGE) / f"{code}.yaml"))).format(**values)


def say(key: str, **values: Any) -> list[tuple[str, str]]:
    """`(language, text)` for every language shown, the readers' own first."""
    return [(code, text(code, key, **values)) for code in shown()]


def localise(formatted: str, decimal: str) -> str:
    """A number formatted the Python way ("1,234.5") written with `decimal` as the decimal sign ("1.234,5")."""
    if decimal == ".":
        return formatted
    return formatted.replace(",", "_").replace(".", decimal).replace("_", ".")


def number(code: str, value: float, spec: str) -> str:
    """`value` formatted by `spec` (e.g. "+.3f") in language `code`'s way (Dutch: a decimal comma)."""
    decimal = str(((texts(code).get("receipt") or {}).get("decimal")) or ".")
    return localise(format(value, spec), decimal)
