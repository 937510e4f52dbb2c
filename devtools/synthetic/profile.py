"""City profiles: `devtools/synthetic/profiles/<city>.yaml` holds everything that makes a city (areas, latent
parameters, nodes, tables, column names and formats), so a new synthetic city needs YAML only.

A world (`profiles/worlds/<world>.yaml`) overrides fields of every city's `latent` section: `default`
changes nothing; `null` cuts every relation between partners' records and liveability's changes (a world
in which no forecast can beat the label's own history).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from federation.errors import ConfigError

KINDS: tuple[str, ...] = ("events", "cases", "survey", "register")
_SAFE = re.compile(r"^[a-z][a-z0-9_]*$")


DEFAULT_WORLD = "default"
# the fields of a profile's `latent` section (devtools/synthetic/latent.py), which a world may override
LATENT_FIELDS = ("reference_level", "covariates", "shift", "static_weights", "random_effect_sd", "levels", "trend",
                 "ar_phi", "ar_sd", "leads", "leads_visible", "partners_read")


@dataclass(frozen=True)
class Profile:
    city: str
    path: Path
    data: dict
    world: str = DEFAULT_WORLD

    @property
    def window(self) -> tuple[str, int] | None:
        """The profile's own window (first month, number of months), if it sets one."""
        window = self.data.get("window")
        if window is None:
            return None
        if not isinstance(window, dict) or not isinstance(window.get("start"), str) \
                or not isinstance(window.get("months"), int):
            raise ConfigError(f"{self.path}: field 'window' must be {{start: YYYY-MM, months: N}}")
        return window["start"], int(window["months"])

    @property
    def where(self) -> str:
        return str(self.path)

    @property
    def nodes(self) -> dict[str, dict[str, dict]]:
        return self.data["nodes"]


def available(directory: Path) -> list[str]:
    return sorted(p.stem for p in directory.glob("*.yaml"))


def worlds(directory: Path) -> list[str]:
    return sorted({DEFAULT_WORLD} | {p.stem for p in (directory / "worlds").glob("*.yaml")})


def _world(directory: Path, world: str) -> dict:
    """The world's overrides of the `latent` section ({} for the default world without a file)."""
    path = directory / "worlds" / f"{world}.yaml"
    if not _SAFE.match(world) or not path.is_file():
        if world == DEFAULT_WORLD:
            return {}
        raise ConfigError(f"--world: no world '{world}' in '{directory / 'worlds'}' "
                          f"(available: {', '.join(worlds(directory))})")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    if not isinstance(data, dict) or set(data) - {"description", "latent"} or not isinstance(data.get("latent", {}), dict):
        raise ConfigError(f"{path}: a world has fields 'description' and 'latent' (a mapping of latent fields) only")
    unknown = sorted(set(data.get("latent") or {}) - set(LATENT_FIELDS))
    if unknown:
        raise ConfigError(f"{path}: field 'latent.{unknown[0]}' is not a latent field ({', '.join(LATENT_FIELDS)})")
    return data.get("latent") or {}


def load(directory: Path, city: str, world: str = DEFAULT_WORLD) -> Profile:
    """Read and check one city profile in a world; every problem names the file and the field."""
    path = directory / f"{city}.yaml"
    if not _SAFE.match(city) or not path.is_file():
        raise ConfigError(f"--cities: no profile '{path}' for city '{city}' "
                          f"(available: {', '.join(available(directory)) or 'none'})")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: must be a mapping with fields city, areas, latent, nodes")
    for key in ("city", "areas", "latent", "nodes"):
        if key not in data:
            raise ConfigError(f"{path}: field '{key}' is missing")
    if data["city"] != city:
        raise ConfigError(f"{path}: field 'city' is '{data['city']}' but the file is named for '{city}'")
    source = data["areas"].get("source") if isinstance(data["areas"], dict) else None
    if source not in ("cbs", "synthetic"):
        raise ConfigError(f"{path}: field 'areas.source' must be 'cbs' or 'synthetic'")
    nodes = data["nodes"]
    if not isinstance(nodes, dict) or not nodes:
        raise ConfigError(f"{path}: field 'nodes' must map node names to their tables")
    surveys = 0
    for node, tables in nodes.items():
        if not isinstance(node, str) or not _SAFE.match(node):
            raise ConfigError(f"{path}: node name '{node}' must be lower-case letters, digits and '_'")
        if not isinstance(tables, dict) or not tables:
            raise ConfigError(f"{path}: field 'nodes.{node}' must map table names to table sections")
        for name, spec in tables.items():
            kind = spec.get("kind") if isinstance(spec, dict) else None
            if kind not in KINDS:
                raise ConfigError(f"{path}: field 'nodes.{node}.{name}.kind' must be one of {', '.join(KINDS)}")
            file = str(spec.get("file", ""))
            if not file.startswith("raw/") or ".." in file:
                raise ConfigError(f"{path}: field 'nodes.{node}.{name}.file' must be a path under raw/")
            surveys += kind == "survey"
    if surveys != 1:
        raise ConfigError(f"{path}: exactly one table of kind 'survey' is needed (the label's source), found {surveys}")
    if not isinstance(data["latent"], dict):
        raise ConfigError(f"{path}: field 'latent' must be a mapping")
    data["latent"].update(_world(directory, world))
    return Profile(city, path, data, world)
