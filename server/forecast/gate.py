"""The gate: a model whose skill over the best naive forecast has a 90% interval whose lower end is not
above 0, at the configured horizon, is NOT RELEASABLE; the verdict is said in every language the pages are
shown in (`configs/languages.yaml`), from the language files `configs/lang/forecast/<code>.yaml` (read as every
language file is: `server.languages`)."""
from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

from federation.errors import ConfigError
from server.languages import DUTCH, folder, languages, shown

PAGE = "forecast"
REQUIRED: tuple[str, ...] = ("releasable", "not_releasable", "no_change", "naive_names")


@lru_cache(maxsize=1)
def texts() -> dict[str, dict[str, Any]]:
    """The forecast words of every language file ({code: texts}, Dutch first)."""
    out = languages(folder(PAGE))
    missing = [key for key in REQUIRED if key not in out[DUTCH]]
    if missing:
        raise ConfigError(f"{folder(PAGE) / 'nl.yaml'}: no text '{missing[0]}'")
    return out


def releasable(skill_lo: float | None) -> bool:
    """True only if the interval's lower end is a number above 0 (an unknown interval refuses)."""
    return skill_lo is not None and math.isfinite(skill_lo) and skill_lo > 0


def _pct(value: float | None) -> str:
    return "?" if value is None or not math.isfinite(value) else f"{100 * value:.0f}"


def gate(horizon: int, skill: float | None, skill_lo: float | None, skill_hi: float | None,
         best_naive: str) -> dict[str, Any]:
    """The gate's verdict at `horizon` (the `gate` object of skill.json)."""
    ok = releasable(skill_lo)
    words = texts()
    verdict = {}
    for lang in shown():
        if lang not in words:
            raise ConfigError(f"{folder(PAGE) / (lang + '.yaml')}: language file not found (configs/languages.yaml "
                              "shows it)")
        part = words[lang]
        verdict[f"verdict_{lang}"] = " ".join(part["releasable" if ok else "not_releasable"].format(
            horizon=horizon, best_naive=part["naive_names"].get(best_naive, best_naive), skill=_pct(skill),
            skill_lo=_pct(skill_lo), skill_hi=_pct(skill_hi)).split())
    return {"horizon": int(horizon), "releasable": ok, "skill": skill, "skill_lo": skill_lo,
            "skill_hi": skill_hi, "best_naive": best_naive, **verdict}


def verdicts(gate_object: dict[str, Any]) -> dict[str, str]:
    """{language: the verdict in it} of a gate object (skill.json's `gate`), in the order it was written."""
    return {key[len("verdict_"):]: str(text) for key, text in gate_object.items() if key.startswith("verdict_")}


def no_change_text(lang: str = "nl") -> str:
    """"no change beyond the noise" in `lang` (the report's words for it too)."""
    return str(texts()[lang]["no_change"])
