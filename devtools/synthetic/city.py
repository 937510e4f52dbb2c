"""One city: its areas, its latent path and the table builders of each of its nodes."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from devtools.synthetic.areas import AreaSet, synthetic_areas
from devtools.synthetic.cases import CasesTable
from server.report.cbs import CBS_YEARS, load_heerlen
from devtools.synthetic.context import CityContext, Demand
from devtools.synthetic.events import EventsTable
from devtools.synthetic.latent import simulate
from devtools.synthetic.profile import Profile
from devtools.synthetic.register import RegisterTable
from devtools.synthetic.seeds import rng_for
from devtools.synthetic.survey import SurveyTable
from devtools.synthetic.timeline import Window

BUILDERS = {"events": EventsTable, "cases": CasesTable, "survey": SurveyTable, "register": RegisterTable}
AREAS_FILE = "public/areas.csv"


def _areas(profile: Profile, window: Window, seed: int, cbs_path: Path) -> AreaSet:
    spec = profile.data["areas"]
    if spec["source"] == "cbs":
        years = list(range(min(CBS_YEARS[0], window.years[0]), max(CBS_YEARS[-1], window.years[-1]) + 1))
        return load_heerlen(cbs_path, years, str(spec.get("prefix", "")))
    return synthetic_areas(spec, window.years, rng_for(seed, profile.city, "areas"), profile.where)


class City:
    """All table builders of a city, constructed (and so checked) before anything is written."""

    def __init__(self, profile: Profile, window: Window, seed: int, cbs_path: Path):
        self.profile = profile
        areas = _areas(profile, window, seed, cbs_path)
        latent = simulate(areas, profile.data["latent"], window.months, rng_for(seed, profile.city, "latent"),
                          profile.where, Path(profile.path).parent, window.start_year + (window.start_month - 1) / 12)
        self.ctx = CityContext(profile.city, profile.where, seed, window, areas, latent)
        self.tables = [BUILDERS[spec["kind"]](self.ctx, node, name, spec)
                       for node, tables in profile.nodes.items() for name, spec in tables.items()]

    def demands(self) -> dict[tuple[str, str, str], Demand]:
        out = {(self.profile.city, t.node, t.name): t.demand() for t in self.tables}
        areas_rows = float(self.ctx.areas.count * len(self.ctx.areas.years))
        for node in self.profile.nodes:
            out[(self.profile.city, node, AREAS_FILE)] = Demand(fixed=areas_rows)
        return out

    def areas_table(self) -> dict[str, np.ndarray]:
        """public/areas.csv: area_code,area_name,year,population (one row per area and year)."""
        a = self.ctx.areas
        idx, yr = np.meshgrid(np.arange(a.count), np.arange(len(a.years)), indexing="ij")
        idx, yr = idx.ravel(), yr.ravel()
        return {
            "area_code": np.asarray(a.keys, dtype=object)[idx],
            "area_name": np.asarray(a.names, dtype=object)[idx],
            "year": np.asarray(a.years).astype(str).astype(object)[yr],
            "population": a.population[idx, yr].astype(str).astype(object),
        }
