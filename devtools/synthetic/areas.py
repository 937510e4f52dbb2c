"""The areas of one city: codes, names, populations per year and the register attributes behind them.

Heerlen's areas come from the CBS file (`server/report/cbs.py`); a transfer city's areas are drawn from its profile
(`synthetic_areas`). Both end up as one `AreaSet`, so everything downstream is city-agnostic.
"""
from __future__ import annotations

import numpy as np

from federation.errors import ConfigError
from server.report.cbs import ATTRIBUTES, AreaSet

def synthetic_areas(spec: dict, years: list[int], rng: np.random.Generator, where: str) -> AreaSet:
    """Draw a transfer city's areas: codes from a template, lognormal populations, register attributes.

    Attributes share one latent deprivation factor per area (loading `deprivation`, signed), so that
    income, low-income share, benefits and social housing are correlated as they are in real cities.
    """
    for key in ("count", "groups", "code_template", "population", "attributes"):
        if key not in spec:
            raise ConfigError(f"{where}: field 'areas.{key}' is missing")
    for key in ("median", "sigma", "min", "max"):
        if key not in spec["population"]:
            raise ConfigError(f"{where}: field 'areas.population.{key}' is missing")
    count = int(spec["count"])
    groups: dict = spec["groups"]
    if count < 2 or not isinstance(groups, dict) or not groups:
        raise ConfigError(f"{where}: field 'areas.count' must be at least 2 and 'areas.groups' a mapping")
    group_codes = list(groups)
    group_of = (np.arange(count) * len(group_codes)) // count
    codes, names = [], []
    for i in range(count):
        g = group_codes[group_of[i]]
        seq = int(np.sum(group_of[:i] == group_of[i])) + 1
        try:
            codes.append(str(spec["code_template"]).format(group=g, seq=seq))
        except (KeyError, ValueError, IndexError) as err:
            raise ConfigError(f"{where}: field 'areas.code_template' cannot be formatted: {err}") from None
        names.append(f"{groups[g]} {seq}")
    if len(set(codes)) != count:
        raise ConfigError(f"{where}: field 'areas.code_template' gives duplicate area codes")

    pop = spec["population"]
    base = np.exp(np.log(float(pop["median"])) + float(pop["sigma"]) * rng.standard_normal(count))
    base = np.clip(base, float(pop["min"]), float(pop["max"]))
    steps = np.asarray(years) - years[0]
    growth = (1.0 + float(pop.get("growth_per_year", 0.0))) ** steps
    wobble = np.exp(0.01 * rng.standard_normal((count, len(years))))
    population = np.round(base[:, None] * growth[None, :] * wobble).astype(np.int64)

    deprivation = rng.standard_normal(count)
    attributes: dict[str, np.ndarray] = {}
    for name in ATTRIBUTES:
        a = spec["attributes"].get(name)
        missing = [k for k in ("mean", "sd", "min", "max") if not isinstance(a, dict) or k not in a]
        if missing:
            raise ConfigError(f"{where}: field 'areas.attributes.{name}.{missing[0]}' is missing")
        load = float(a.get("deprivation", 0.0))
        own = rng.standard_normal(count)
        level = float(a["mean"]) + float(a["sd"]) * (load * deprivation + np.sqrt(1 - load**2) * own)
        drift = 0.05 * float(a["sd"]) * np.cumsum(rng.standard_normal((count, len(years))), axis=1)
        attributes[name] = np.clip(level[:, None] + drift, float(a["min"]), float(a["max"]))
    return AreaSet(str(spec.get("prefix", "")), codes, names, list(years), population, attributes)
