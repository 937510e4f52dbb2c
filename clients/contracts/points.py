"""Points (longitude, latitude) turned into areas on the node, against a public boundary file.

A community export (Signalen, Open311) places a report by a buurt code or by coordinates. Coordinates
locate a person's door far better than an area does, so a `point` column only ever does one thing: on the
node, before anything is aggregated, each point is looked up in the polygons of a public boundary file
(GeoJSON, e.g. CBS buurten) named in the contract, and the row gets that area's code. The point itself is
never read by an op (its type is in `UNREADABLE_TYPES`), so it cannot become a feature or leave the node.
Point in polygon is the even-odd rule over every ring of an area (holes included), vectorised over points.
"""
from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from clients.contracts.spec import UNREADABLE_TYPES
from federation.errors import ContractError

DEFAULT_PROPERTY = "buurtcode"
_NUMBER = r"[-+]?\d+(?:\.\d+)?"
_PATTERNS = (re.compile(rf"^\s*({_NUMBER})\s*[,; ]\s*({_NUMBER})\s*$"),
             re.compile(rf"^\s*POINT\s*\(\s*({_NUMBER})\s+({_NUMBER})\s*\)\s*$", re.IGNORECASE))


def point_boundaries(ctype: str, value: Any, where: str, fail: Any) -> Mapping[str, str] | None:
    """The `boundaries` of a column declaration: required on a point column, refused on any other."""
    if ctype != "point":
        if value is not None:
            raise fail(f"{where}: `boundaries` is for point columns only")
        return None
    if not isinstance(value, Mapping) or not isinstance(value.get("path"), str):
        raise fail(f"{where}: a point column needs `boundaries: {{path: public/<file>.geojson, property: "
                   f"{DEFAULT_PROPERTY}}}`, the public boundary file that turns points into areas")
    if Path(value["path"]).is_absolute() or ".." in Path(value["path"]).parts:
        raise fail(f"{where}: `boundaries.path` {value['path']!r} must be a path inside the node directory "
                   "(e.g. public/buurten.geojson)")
    unknown = sorted(set(value) - {"path", "property"})
    if unknown:
        raise fail(f"{where}: unknown key(s) {', '.join(unknown)} in `boundaries` (path, property)")
    return {"path": value["path"], "property": str(value.get("property", DEFAULT_PROPERTY))}


def parse_points(series: pd.Series, missing: np.ndarray) -> tuple[pd.Series, np.ndarray]:
    """(lon, lat) per row (None where missing or unreadable) and the mask of cells that are not a point."""
    lon = np.full(len(series), np.nan)
    lat = np.full(len(series), np.nan)
    bad = np.zeros(len(series), dtype=bool)
    for i, cell in enumerate(series.to_numpy(dtype=object)):
        if missing[i]:
            continue
        match = next((m for m in (p.match(str(cell)) for p in _PATTERNS) if m), None)
        x, y = (float(match.group(1)), float(match.group(2))) if match else (np.nan, np.nan)
        if match is None or not (-180 <= x <= 180 and -90 <= y <= 90):
            bad[i] = True
            continue
        lon[i], lat[i] = x, y
    points = [None if np.isnan(x) else (x, y) for x, y in zip(lon, lat)]
    return pd.Series(points, index=series.index, dtype=object), bad


def read_boundaries(path: str, prop: str) -> tuple[tuple[str, tuple[np.ndarray, ...]], ...]:
    """(code, rings) of every feature of a GeoJSON file; rings as (n, 2) lon/lat arrays (read again when
    the file changes)."""
    try:
        stamp = Path(path).stat().st_mtime_ns
    except OSError:
        stamp = -1
    return _read_boundaries(path, prop, stamp)


@lru_cache(maxsize=8)
def _read_boundaries(path: str, prop: str, stamp: int) -> tuple[tuple[str, tuple[np.ndarray, ...]], ...]:
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
        out = []
        for feature in doc["features"]:
            geometry = feature["geometry"]
            polygons = geometry["coordinates"] if geometry["type"] == "MultiPolygon" else [geometry["coordinates"]]
            code = feature["properties"][prop]
            out.append((str(code), tuple(np.asarray(ring, dtype=float)[:, :2] for poly in polygons for ring in poly)))
    except FileNotFoundError:
        raise ContractError(f"{path}: the boundary file of a point column does not exist (put the public "
                            f"boundaries, e.g. the CBS buurten as GeoJSON, there)") from None
    except (OSError, ValueError, KeyError, TypeError, IndexError) as err:
        raise ContractError(f"{path}: not a GeoJSON FeatureCollection of polygons with property '{prop}' "
                            f"({type(err).__name__}: {err})") from None
    return tuple(out)


def inside(lon: np.ndarray, lat: np.ndarray, rings: tuple[np.ndarray, ...]) -> np.ndarray:
    """Even-odd rule: a point is inside when a ray to the east crosses the rings an odd number of times."""
    inside = np.zeros(len(lon), dtype=bool)
    for ring in rings:
        x0, y0 = ring[:-1, 0], ring[:-1, 1]
        x1, y1 = ring[1:, 0], ring[1:, 1]
        for a, b, c, d in zip(x0, y0, x1, y1):
            crosses = (b > lat) != (d > lat)
            with np.errstate(divide="ignore", invalid="ignore"):
                x_at = a + (lat - b) * (c - a) / (d - b)
            inside ^= crosses & (lon < x_at)
    return inside


def locate(lon: np.ndarray, lat: np.ndarray, boundaries: Mapping[str, str], node_dir: Path,
           prefix: str = "") -> np.ndarray:
    """The area code of each point (None outside every polygon or where the point is missing)."""
    codes = np.full(len(lon), None, dtype=object)
    known = ~np.isnan(lon)
    for code, rings in read_boundaries(str(node_dir / boundaries["path"]), boundaries["property"]):
        hit = known & (codes == None) & inside(lon, lat, rings)  # noqa: E711 (element-wise)
        codes[hit] = prefix + code
    return codes


def point_column(columns: Mapping[str, Any]) -> str | None:
    """The table's point column, if it has one."""
    names = [name for name, col in columns.items() if col.type == "point"]
    return names[0] if names else None


def fill_areas(area: np.ndarray | None, data: pd.DataFrame, columns: Mapping[str, Any], node_dir: Path,
               area_prefix: str = "") -> np.ndarray | None:
    """The table's area codes: its area column where given, else the area of its point (on the node).

    The parsed point column is then replaced by a marker, so the coordinates are gone from the table that
    ops read as soon as they have been used."""
    name = point_column(columns)
    if name is None:
        return area
    pairs = [(np.nan, np.nan) if p is None else p for p in data[name].to_numpy(dtype=object)]
    lon, lat = (np.array([p[i] for p in pairs], dtype=float) for i in (0, 1))
    located = locate(lon, lat, columns[name].boundaries, node_dir, area_prefix)
    data[name] = pd.Series(np.where(np.isnan(lon), None, "located"), index=data.index, dtype=object)
    if area is None:
        return located
    have = pd.notna(pd.Series(area, dtype=object)).to_numpy()
    return np.where(have, area, located)


def refuse_unreadable(table: Any, where: str, fail: Any) -> None:
    """Free text, contact data and points may not be a pseudonym, an id, a row filter or a clipped value:
    their only use is to be declared (and, for a point, to place the row in an area)."""
    named = [("person_columns", c) for c in table.person_columns] + [("id", c) for c in [table.id] if c]
    named += [("where", f.column) for f in table.where] + [("privacy.clip", c) for c in table.privacy.clip]
    for role, name in named:
        col = table.columns.get(name)
        if col is not None and col.type in UNREADABLE_TYPES:
            raise fail(f"{where}: column '{name}' is of type {col.type}, which nothing may read; it cannot be "
                       f"used in {role}")
    points = [c.name for c in table.columns.values() if c.type == "point"]
    if len(points) > 1:
        raise fail(f"{where}: at most one point column per table; got {', '.join(points)}")
