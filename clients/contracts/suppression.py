"""Small-area suppression: areas with fewer residents than `min_population` leave every block and the label.

An area is suppressed as a whole when its register population (year of the period) is below the
threshold in ANY covered period: an area that flickers in and out of the output month by month would
reveal more than one that is simply absent.
"""
from __future__ import annotations

import numpy as np

from clients.contracts.register import Grid
from clients.contracts.spec import Contract


def suppressed_areas(contract: Contract, grid: Grid) -> list[str]:
    """Sorted codes of the areas to drop (none without a threshold or without populations)."""
    if contract.min_population is None or grid.population is None:
        return []
    small = (grid.population < contract.min_population).any(axis=1) | np.isnan(grid.population).any(axis=1)
    return [str(a) for a in grid.areas[small]]
