"""City profiles: `devtools/synthetic/profiles/<city>.yaml` holds everything that makes a city (areas, latent
parameters, nodes, tables, column names and formats), so a new synthetic city needs YAML only."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from federation.errors import ConfigError

KINDS: tuple[str, ...] = ("events", "cases", "survey", "register")
_SAFE = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class Profile:
    city: str
    path: Path
    data: dict

    @property
    def where(self) -> str:
        return str(self.path)

    @property
    def nodes(self) -> dict[str, dict[str, dict]]:
        return self.data["nodes"]


def available(directory: Path) -> list[str]:
    return sorted(p.stem for p in directory.glob("*.yaml"))


def load(directory: Path, city: str) -> Profile:
    """Read and check one city profile; every problem names the file and the field."""
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
    return Profile(city, path, data)
