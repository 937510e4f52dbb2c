"""What every table builder of one city shares: window, areas, latent path and its random streams."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from federation.errors import ConfigError
from devtools.synthetic.areas import AreaSet
from devtools.synthetic.latent import LatentPath
from devtools.synthetic.seeds import rng_for
from devtools.synthetic.timeline import Window


@dataclass
class CityContext:
    city: str
    where: str  # the profile file, for error messages
    seed: int
    window: Window
    areas: AreaSet
    latent: LatentPath

    def rng(self, purpose: str) -> np.random.Generator:
        return rng_for(self.seed, self.city, purpose)

    @property
    def population(self) -> np.ndarray:
        """(A, T) inhabitants of each area in each window month (its calendar year's figure)."""
        return self.areas.by_month(self.areas.population, self.window.month_years)


@dataclass(frozen=True)
class Demand:
    """Rows a table will write: `fixed` regardless of --records, plus a share of the free volume.

    Tables with `weight` > 0 absorb the volume that --records asks for beyond the fixed tables; they
    need at least `minimum` rows to stay usable (e.g. a few survey respondents per area and month).
    """

    fixed: float
    minimum: float = 0.0
    weight: float = 0.0


def require(spec: dict, key: str, where: str, kind: type | tuple = object):
    """A mandatory field of a profile section, with one clear message when it is absent or wrong."""
    if not isinstance(spec, dict) or key not in spec:
        raise ConfigError(f"{where}: field '{key}' is missing")
    value = spec[key]
    if not isinstance(value, kind):
        raise ConfigError(f"{where}: field '{key}' has the wrong type ({type(value).__name__})")
    return value
