"""Area names and boundaries for the map: Heerlen's 57 CBS buurten ship with the project.

`data/heerlen_buurten_2019.geojson` is CBS "Wijk- en buurtkaart 2019", generalised (CBS / Kadaster via
PDOK, CC BY 4.0), WGS84 lon/lat. A city whose areas have no boundaries here gets the ranked table only.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass

from server.report import DATA_DIR

BOUNDARY_FILES = ("heerlen_buurten_2019.geojson",)
CREDIT = "Boundaries: CBS / Kadaster, Wijk- en buurtkaart 2019 (generalised), CC BY 4.0"


@dataclass(frozen=True)
class Area:
    code: str
    name: str
    rings: tuple[tuple[tuple[float, float], ...], ...]   # lon/lat rings of its polygons


def boundaries() -> dict[str, Area]:
    """Every area with a shipped boundary, by code."""
    out: dict[str, Area] = {}
    for name in BOUNDARY_FILES:
        data = json.loads((DATA_DIR / name).read_text(encoding="utf-8"))
        for feature in data["features"]:
            props, geometry = feature["properties"], feature["geometry"]
            polygons = geometry["coordinates"] if geometry["type"] == "MultiPolygon" else [geometry["coordinates"]]
            rings = tuple(tuple((float(x), float(y)) for x, y in ring) for polygon in polygons for ring in polygon)
            out[str(props["buurtcode"])] = Area(str(props["buurtcode"]), str(props["buurtnaam"]), rings)
    return out


def svg_paths(areas: list[Area], width: float = 760.0) -> tuple[dict[str, str], float]:
    """SVG path data per area code in a `width`-wide box (equirectangular at the areas' mean latitude)."""
    points = [p for a in areas for ring in a.rings for p in ring]
    lon0, lon1 = min(p[0] for p in points), max(p[0] for p in points)
    lat0, lat1 = min(p[1] for p in points), max(p[1] for p in points)
    kx = math.cos(math.radians((lat0 + lat1) / 2))
    scale = width / ((lon1 - lon0) * kx)
    height = (lat1 - lat0) * scale

    def xy(p: tuple[float, float]) -> str:
        return f"{(p[0] - lon0) * kx * scale:.1f},{(lat1 - p[1]) * scale:.1f}"

    return {a.code: " ".join("M" + " L".join(xy(p) for p in ring) + "Z" for ring in a.rings) for a in areas}, height
