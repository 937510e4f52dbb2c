"""The gate: a model whose skill over the best naive forecast has a 90% interval whose lower end is not
above 0, at the configured horizon, is NOT RELEASABLE; the verdict is said in Dutch and English from the
language file `configs/forecast_texts.yaml`."""
from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

import yaml

from federation.config import configs_dir
from federation.errors import ConfigError

LANGUAGES: tuple[str, ...] = ("nl", "en")   # Dutch first


@lru_cache(maxsize=4)
def texts(path: str | None = None) -> dict[str, Any]:
    """The forecast sentences per language (`configs/forecast_texts.yaml` unless `path`)."""
    file = Path(path) if path else configs_dir() / "forecast_texts.yaml"
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"{file}: cannot read the forecast texts ({err})") from err
    for lang in LANGUAGES:
        for key in ("releasable", "not_releasable", "no_change", "naive_names"):
            if not isinstance(data, Mapping) or key not in (data.get(lang) or {}):
                raise ConfigError(f"{file}: '{lang}.{key}' is missing")
    return data


def releasable(skill_lo: float | None) -> bool:
    """True only if the interval's lower end is a number above 0 (an unknown interval refuses)."""
    return skill_lo is not None and math.isfinite(skill_lo) and skill_lo > 0


def _pct(value: float | None) -> str:
    return "?" if value is None or not math.isfinite(value) else f"{100 * value:.0f}"


def gate(horizon: int, skill: float | None, skill_lo: float | None, skill_hi: float | None,
         best_naive: str, text_path: str | None = None) -> dict[str, Any]:
    """The gate's verdict at `horizon` (the `gate` object of skill.json)."""
    ok = releasable(skill_lo)
    words = texts(text_path)
    verdict = {}
    for lang in LANGUAGES:
        part = words[lang]
        verdict[f"verdict_{lang}"] = " ".join(part["releasable" if ok else "not_releasable"].format(
            horizon=horizon, best_naive=part["naive_names"].get(best_naive, best_naive), skill=_pct(skill),
            skill_lo=_pct(skill_lo), skill_hi=_pct(skill_hi)).split())
    return {"horizon": int(horizon), "releasable": ok, "skill": skill, "skill_lo": skill_lo,
            "skill_hi": skill_hi, "best_naive": best_naive, **verdict}


def no_change_text(lang: str = "nl", text_path: str | None = None) -> str:
    """"no change beyond the noise" in `lang` (the report's words for it too)."""
    return str(texts(text_path)[lang]["no_change"])
