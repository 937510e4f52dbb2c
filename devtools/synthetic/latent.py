"""The latent liveability process that drives every table of a city.

Each area has, per Leefbaarometer dimension, a static level and monthly dynamics. The static level is
either the area's real Leefbaarometer score (`latent.levels`, Heerlen) or composed from a city shift,
weighted standardised register covariates and an area random effect (the transfer cities). The dynamics
are a stationary AR(1) deviation per dimension plus the effects of named lead drivers (`latent.leads`):
a driver (e.g. economic strain) is an AR(1) process per area that partners' records read at once (its
loading in a table's `loadings`), while liveability responds `lag_months` later. So partners' records
carry information about FUTURE liveability that the label's own history does not (see
docs/synthetic-world.md). Liveability is the reference level plus the sum of the five dimension scores.
Every table reads the dimensions and drivers through its own loadings (see `intensity.py`).

Two switches make a null world (profiles/worlds/null.yaml): `leads_visible: false` gives the partners an
independent copy of each driver (same law, no relation to liveability), and `partners_read: level` lets
partners read only the static level of the dimensions, not their changes.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from federation.errors import ConfigError
from devtools.synthetic.areas import AreaSet

DIMENSIONS: tuple[str, ...] = (
    "housing_stock",
    "physical_environment",
    "amenities",
    "social_cohesion",
    "nuisance_unsafety",
)


@dataclass
class LatentPath:
    """Dimension scores (A, T, 5) in Leefbaarometer points and their standardised form `z`."""

    reference_level: float
    scores: np.ndarray
    z: np.ndarray
    drivers: np.ndarray | None = None      # (A, T, J) standardised lead drivers as partners' records see them
    driver_names: tuple[str, ...] = ()

    def modulation(self, loadings: dict | None, where: str) -> np.ndarray:
        """(A, T) log-rate modulation of one quantity: its loadings on the dimensions and on the drivers."""
        loadings = dict(loadings or {})
        drivers = {k: loadings.pop(k) for k in list(loadings) if k in self.driver_names}
        log = self.z @ loadings_vector(loadings, where, self.driver_names)
        for name, weight in drivers.items():
            log = log + float(weight) * self.drivers[:, :, self.driver_names.index(name)]
        return log

    def liveability(self) -> np.ndarray:
        """(A, T) reference level plus the sum of the five dimension scores."""
        return self.reference_level + self.scores.sum(axis=2)


def per_dimension(spec: dict, key: str, where: str) -> np.ndarray:
    """A (5,) vector from a mapping dimension -> number; every dimension must be given."""
    values = spec.get(key)
    if not isinstance(values, dict):
        raise ConfigError(f"{where}: field 'latent.{key}' must map each dimension to a number")
    unknown = set(values) - set(DIMENSIONS)
    if unknown:
        raise ConfigError(f"{where}: field 'latent.{key}' names unknown dimension '{sorted(unknown)[0]}'")
    missing = [d for d in DIMENSIONS if d not in values]
    if missing:
        raise ConfigError(f"{where}: field 'latent.{key}.{missing[0]}' is missing")
    return np.array([float(values[d]) for d in DIMENSIONS])


def loadings_vector(loadings: dict | None, where: str, drivers: tuple[str, ...] = ()) -> np.ndarray:
    """(5,) loadings of one quantity on the standardised dimensions (absent dimensions are 0)."""
    loadings = loadings or {}
    unknown = set(loadings) - set(DIMENSIONS)
    if unknown:
        known = ", ".join(DIMENSIONS + tuple(drivers))
        raise ConfigError(f"{where}: loading on unknown dimension or lead driver '{sorted(unknown)[0]}' "
                          f"(known: {known})")
    return np.array([float(loadings.get(d, 0.0)) for d in DIMENSIONS])


def _standardise(columns: np.ndarray) -> np.ndarray:
    """z-scores clipped at +-2.5, so that a tiny area with an extreme rate does not dominate."""
    sd = columns.std(axis=0)
    return np.clip((columns - columns.mean(axis=0)) / np.where(sd > 0, sd, 1.0), -2.5, 2.5)


def _random_effects(rng: np.random.Generator, count: int, x: np.ndarray | None) -> np.ndarray:
    """(A, 5) area effects: independent of the covariates and of each other, with unit variance.

    A city has only some 50-70 areas, too few for sampling variation in the effects to be negligible;
    drawing normals and then whitening them (after removing the covariates) keeps the realised share
    of each dimension in the liveability variance at the profile's value, whatever the seed.
    """
    u = rng.standard_normal((count, 5))
    design = np.column_stack([np.ones(count)] + ([x] if x is not None else []))
    if count <= design.shape[1] + 5:
        return u
    u -= design @ np.linalg.lstsq(design, u, rcond=None)[0]
    q, r = np.linalg.qr(u)
    return q * np.sign(np.diag(r)) * np.sqrt(count)


def _composed_static(areas: AreaSet, spec: dict, rng: np.random.Generator, where: str) -> np.ndarray:
    """(A, 5) static levels: city shift + weighted standardised covariates + whitened area effects."""
    covariates = list(spec.get("covariates", []))
    x = _standardise(np.column_stack([areas.static(c) for c in covariates])) if covariates else None
    weights = spec.get("static_weights", {}) or {}
    static = np.tile(per_dimension(spec, "shift", where), (areas.count, 1))
    for k, dim in enumerate(DIMENSIONS):
        w = weights.get(dim, {}) or {}
        unknown = set(w) - set(covariates)
        if unknown:
            raise ConfigError(f"{where}: field 'latent.static_weights.{dim}' uses '{sorted(unknown)[0]}', "
                              f"which is not in 'latent.covariates'")
        for j, name in enumerate(covariates):
            static[:, k] += float(w.get(name, 0.0)) * x[:, j]
    return static + per_dimension(spec, "random_effect_sd", where) * _random_effects(rng, areas.count, x)


# Leefbaarometer dimension columns of a levels file, in DIMENSIONS order
LEVEL_COLUMNS: tuple[str, ...] = ("won", "fys", "vrz", "soc", "onv")


def _real_static(areas: AreaSet, levels: dict, where: str, base: Path | None) -> np.ndarray:
    """(A, 5) each area's mean real Leefbaarometer dimension scores over the file's years with dimensions."""
    if not isinstance(levels, dict) or not isinstance(levels.get("file"), str):
        raise ConfigError(f"{where}: field 'latent.levels.file' must name a CSV of Leefbaarometer scores per area")
    path = (base or Path(".")) / levels["file"]
    try:
        frame = pd.read_csv(path, dtype={"bu_code": str})
    except (OSError, ValueError) as err:
        raise ConfigError(f"{where}: field 'latent.levels.file': cannot read '{path}': {err}") from None
    missing = [c for c in ("bu_code", *LEVEL_COLUMNS) if c not in frame.columns]
    if missing:
        raise ConfigError(f"{where}: '{path}' has no column '{missing[0]}' (needs bu_code, {', '.join(LEVEL_COLUMNS)})")
    means = frame.dropna(subset=list(LEVEL_COLUMNS)).groupby("bu_code")[list(LEVEL_COLUMNS)].mean()
    absent = [c for c in areas.codes if c not in means.index]
    if absent:
        raise ConfigError(f"{where}: '{path}' has no Leefbaarometer dimensions for area '{absent[0]}' "
                          f"({len(absent)} area(s) missing)")
    return means.loc[list(areas.codes)].to_numpy(dtype=np.float64)


@dataclass(frozen=True)
class Lead:
    """A named driver: partners' records read it at month t, liveability responds at t + lag_months."""

    name: str
    ar_phi: float
    lag_months: int
    effect: np.ndarray   # (5,) Leefbaarometer points per standard deviation of the driver
    episodes_per_year: float = 0.0   # chance per area and year of an episode: a shock `episode_size` times larger
    episode_size: float = 1.0


def leads_of(spec: dict, where: str) -> list[Lead]:
    """The profile's `latent.leads`, checked; every lead must state the basis of its values."""
    section = spec.get("leads") or {}
    if not isinstance(section, dict):
        raise ConfigError(f"{where}: field 'latent.leads' must map driver names to their sections")
    out = []
    for name, lead in section.items():
        at = f"{where}: field 'latent.leads.{name}"
        if not isinstance(lead, dict):
            raise ConfigError(f"{at}' must be a mapping with ar_phi, lag_months, effect and basis")
        if name in DIMENSIONS:
            raise ConfigError(f"{at}' has the name of a dimension; give the driver its own name")
        for key in ("ar_phi", "lag_months", "effect", "basis"):
            if key not in lead:
                raise ConfigError(f"{at}.{key}' is missing")
        phi, lag = lead["ar_phi"], lead["lag_months"]
        if not isinstance(phi, (int, float)) or not -1 < float(phi) < 1:
            raise ConfigError(f"{at}.ar_phi' must lie strictly between -1 and 1")
        if not isinstance(lag, int) or isinstance(lag, bool) or not 0 <= lag <= 36:
            raise ConfigError(f"{at}.lag_months' must be a whole number of months in 0..36")
        if not isinstance(lead["basis"], str) or not lead["basis"].strip():
            raise ConfigError(f"{at}.basis' must say where the values come from (literature, data or assumption)")
        episodes = lead.get("episodes", {"per_year": 0.0, "size": 1.0})
        ok = isinstance(episodes, dict) and all(isinstance(episodes.get(k), (int, float)) for k in ("per_year", "size"))
        if not ok or not 0 <= episodes["per_year"] <= 12 or episodes["size"] < 1:
            raise ConfigError(f"{at}.episodes' must be {{per_year: 0..12, size: >= 1}} (episodes per area and "
                              f"year, and their shock in standard deviations of an ordinary month's)")
        out.append(Lead(str(name), float(phi), int(lag), loadings_vector(lead["effect"], f"{at}.effect'"),
                        float(episodes["per_year"]), float(episodes["size"])))
    return out


def _ar1(rng: np.random.Generator, count: int, length: int, phi: float, episodes_per_year: float = 0.0,
         episode_size: float = 1.0) -> np.ndarray:
    """(count, length) stationary AR(1) paths with unit variance.

    With episodes, a month's shock is `episode_size` times larger with probability episodes_per_year / 12
    (a scale mixture, rescaled to unit variance): trouble that breaks out in some areas, not everywhere a
    little. The mixture is drawn either way, so that the other draws do not depend on it.
    """
    shocks = rng.standard_normal((count, length))
    q = episodes_per_year / 12.0
    scale = np.where(rng.random((count, length)) < q, episode_size, 1.0)
    shocks = shocks * scale / np.sqrt(1.0 - q + q * episode_size**2)
    out = np.empty((count, length))
    out[:, 0] = shocks[:, 0]
    for t in range(1, length):
        out[:, t] = phi * out[:, t - 1] + np.sqrt(1.0 - phi**2) * shocks[:, t]
    return out


def _standardised(scores: np.ndarray) -> np.ndarray:
    flat = scores.reshape(-1, scores.shape[-1])
    sd = flat.std(axis=0)
    return ((flat - flat.mean(axis=0)) / np.where(sd > 0, sd, 1.0)).reshape(scores.shape)


def _trend(spec: dict, months: int, start: float | None, where: str) -> np.ndarray:
    """(T, 5) the city's common trend: `trend.per_year` points per dimension, zero at `trend.centre_year`."""
    trend = spec.get("trend")
    if trend is None:
        return np.zeros((months, 5))
    if not isinstance(trend, dict) or not isinstance(trend.get("centre_year"), (int, float)):
        raise ConfigError(f"{where}: field 'latent.trend' must be {{per_year: {{dimension: points}}, centre_year: YYYY.y}}")
    if start is None:
        raise ConfigError(f"{where}: field 'latent.trend' needs the window's first month")
    years = start + np.arange(months) / 12.0 - float(trend["centre_year"])
    return years[:, None] * per_dimension(trend, "per_year", f"{where} (latent.trend)")[None, :]


def simulate(areas: AreaSet, spec: dict, months: int, rng: np.random.Generator, where: str,
             base: Path | None = None, start: float | None = None) -> LatentPath:
    """Static levels plus a common trend, stationary AR(1) deviations and lagged lead effects.

    `base` is the directory that `latent.levels.file` is relative to (the profile's directory); `start`
    the first month as a decimal year (2021.0 for January 2021), for the trend.
    """
    static = _real_static(areas, spec["levels"], where, base) if "levels" in spec \
        else _composed_static(areas, spec, rng, where)

    phi = per_dimension(spec, "ar_phi", where)
    if np.any(np.abs(phi) >= 1):
        raise ConfigError(f"{where}: field 'latent.ar_phi' must lie strictly between -1 and 1")
    sd = per_dimension(spec, "ar_sd", where)
    shocks = rng.standard_normal((months, areas.count, 5))
    deviation = np.empty((months, areas.count, 5))
    deviation[0] = sd * shocks[0]
    innovation = sd * np.sqrt(1.0 - phi**2)
    for t in range(1, months):
        deviation[t] = phi * deviation[t - 1] + innovation * shocks[t]
    scores = static[:, None, :] + deviation.transpose(1, 0, 2) + _trend(spec, months, start, where)[None]

    leads = leads_of(spec, where)
    visible = spec.get("leads_visible", True)
    if not isinstance(visible, bool):
        raise ConfigError(f"{where}: field 'latent.leads_visible' must be true or false")
    seen = []
    for lead in leads:  # driver path from `lag` months before the window: month t responds to D(t - lag)
        driver = _ar1(rng, areas.count, months + lead.lag_months, lead.ar_phi, lead.episodes_per_year,
                      lead.episode_size)
        scores += driver[:, :months, None] * lead.effect
        seen.append(driver[:, lead.lag_months:])
    for k, lead in enumerate(leads):  # always drawn, so that both worlds share every other draw
        copy = _ar1(rng, areas.count, months, lead.ar_phi, lead.episodes_per_year, lead.episode_size)
        if not visible:
            seen[k] = copy

    read = spec.get("partners_read", "state")
    if read not in ("state", "level"):
        raise ConfigError(f"{where}: field 'latent.partners_read' must be 'state' (the dimensions as they "
                          f"move) or 'level' (only each area's static level)")
    z = _standardised(scores if read == "state" else
                      np.repeat(static[:, None, :], months, axis=1) + _trend(spec, months, start, where)[None])
    drivers = np.stack(seen, axis=2) if seen else None
    return LatentPath(float(spec.get("reference_level", 4.10)), scores, z, drivers, tuple(l.name for l in leads))
