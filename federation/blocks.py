"""Block schemas: a block's features in input order and their public scaling constants.

The project's blocks are `configs/block/<block>.yaml`. A node may declare its own next to its contract, in
`blocks/<block>.yaml` of its node directory, so a transfer city with data no project block fits joins by
YAML alone. Nodes that hold a block and nodes that lack it must build the same model, so a run carries the
node-local schemas it uses (`schemas_json`) and its proposal names every schema by hash (`BlockSchema.sha256`):
a node's approval then covers its own local blocks, and a changed one needs a new approval.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

from federation.config import configs_dir, load_yaml
from federation.errors import ConfigError
from federation.grammar import Key, Section

LOCAL_DIR = "blocks"     # a node's own block schemas: <node dir>/blocks/<block>.yaml, next to contract.yaml
_NAME = re.compile(r"^[A-Za-z0-9_]+$")


@dataclass(frozen=True, eq=False)
class BlockSchema:
    """Feature names of one block, in model input order, with their public scaling constants."""

    name: str
    features: tuple[str, ...]
    log1p: np.ndarray
    center: np.ndarray
    scale: np.ndarray
    source: str = ""   # the file it was read from, for messages

    def scale_values(self, values: np.ndarray) -> np.ndarray:
        out = np.where(self.log1p, np.log1p(np.clip(values, 0.0, None)), values)
        return ((out - self.center) / self.scale).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        """The schema as plain data, in the shape of its YAML file."""
        return {"name": self.name, "features": {
            f: {"transform": "log1p" if lg else "identity", "center": float(c), "scale": float(s)}
            for f, lg, c, s in zip(self.features, self.log1p, self.center, self.scale)}}

    @property
    def sha256(self) -> str:
        """Hash of what the schema means (not of its file's comments or layout): what an approval names."""
        text = json.dumps(self.to_dict(), sort_keys=False, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


def parse_block_schema(data: Any, source: str, name: str | None = None) -> BlockSchema:
    """A block schema from its YAML mapping; one ConfigError naming `source` and the key for anything wrong."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: a block schema must be a mapping with `name` and `features`")
    BLOCK.check(data, source, ConfigError)
    block = str(data["name"])
    if not _NAME.match(block):
        raise ConfigError(f"{source}: name {block!r} must be letters, digits and '_' (it names the block's files)")
    if name is not None and block != name:
        raise ConfigError(f"{source}: name {block!r} must be the file name without .yaml ('{name}')")
    feats = data["features"]
    if not isinstance(feats, Mapping) or not feats:
        raise ConfigError(f"{source}: `features` must map at least one feature name to its scaling")
    names, log1p, center, scale = [], [], [], []
    for feature, spec in feats.items():
        where = f"{source}: feature '{feature}'"
        if not isinstance(spec, Mapping):
            raise ConfigError(f"{where} must be a mapping {{transform, center, scale}}")
        BLOCK_FEATURE.check(spec, where, ConfigError)
        if not float(BLOCK_FEATURE.get(spec, "scale")) > 0:
            raise ConfigError(f"{where}: scale must be positive")
        names.append(str(feature))
        log1p.append(BLOCK_FEATURE.get(spec, "transform") == "log1p")
        center.append(float(BLOCK_FEATURE.get(spec, "center")))
        scale.append(float(BLOCK_FEATURE.get(spec, "scale")))
    return BlockSchema(block, tuple(names), np.array(log1p), np.array(center), np.array(scale), source)


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(configs_dir().parent))
    except ValueError:
        return str(path)


@lru_cache(maxsize=None)
def project_block(name: str) -> BlockSchema | None:
    """The project's schema of block `name` (configs/block/<name>.yaml), or None if there is none."""
    path = configs_dir() / "block" / f"{name}.yaml"
    if not _NAME.match(name) or not path.is_file():
        return None
    return parse_block_schema(load_yaml(path), _shown(path), name)


def local_blocks(directory: Path) -> dict[str, BlockSchema]:
    """The node-local block schemas in `directory`/blocks/ (a node directory, or the folder of a contract)."""
    folder = Path(directory) / LOCAL_DIR
    out: dict[str, BlockSchema] = {}
    for path in sorted(folder.glob("*.yaml")) if folder.is_dir() else []:
        schema = parse_block_schema(load_yaml(path), str(path), path.stem)
        project = project_block(schema.name)
        if project is not None:
            raise ConfigError(f"{path}: a node-local block may not reuse the name of the project's block "
                              f"{project.source}; give it a name of its own")
        out[schema.name] = schema
    return out


def block_schema(name: str, local: Mapping[str, BlockSchema] | None = None) -> BlockSchema:
    """The schema of block `name`: the project's, else one of `local` (node-local schemas)."""
    schema = project_block(name) or (local or {}).get(name)
    if schema is None:
        raise ConfigError(f"block '{name}': no block schema configs/block/{name}.yaml"
                          + (f" nor a node-local {LOCAL_DIR}/{name}.yaml" if local is not None else ""))
    return schema


def block_widths(blocks: Iterable[str], local: Mapping[str, BlockSchema] | None = None) -> dict[str, int]:
    return {name: len(block_schema(name, local).features) for name in blocks}


def schemas_json(schemas: Mapping[str, BlockSchema]) -> str:
    """Node-local schemas as one text, for a run's settings ("" for none)."""
    return json.dumps({n: s.to_dict() for n, s in schemas.items()}, separators=(",", ":")) if schemas else ""


def schemas_from_json(text: str, source: str) -> dict[str, BlockSchema]:
    """The schemas of `schemas_json`, checked like files."""
    if not text:
        return {}
    try:
        data = json.loads(text)
    except ValueError as err:
        raise ConfigError(f"{source}: block schemas are not valid JSON ({err})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: block schemas must be an object of block name -> schema")
    return {str(n): parse_block_schema(d, f"{source}, block '{n}'", str(n)) for n, d in data.items()}


def federation_local_blocks(fed: Mapping[str, Any]) -> dict[str, BlockSchema]:
    """The node-local schemas of a horizontal federation's blocks, read from its nodes' directories.

    Several nodes may declare the same block (e.g. copies written by `pulse-twin partition`); they must
    then mean the same, or the model's inputs would differ between nodes.
    """
    wanted = [b for b in fed.get("blocks") or () if project_block(str(b)) is None]
    if not wanted:
        return {}
    found: dict[str, BlockSchema] = {}
    for spec in (fed.get("nodes") or {}).values():
        if not isinstance(spec, Mapping) or not spec.get("node_dir"):
            continue
        for name, schema in local_blocks(Path(str(spec["node_dir"]))).items():
            if name not in wanted:
                continue
            if name in found and found[name].sha256 != schema.sha256:
                raise ConfigError(f"federation '{fed.get('name')}': block '{name}' is declared differently by "
                                  f"{found[name].source} and {schema.source}; one block must mean the same on "
                                  "every node")
            found.setdefault(name, schema)
    missing = [b for b in wanted if b not in found]
    if missing:
        raise ConfigError(f"federation '{fed.get('name')}': block '{missing[0]}' is neither configs/block/"
                          f"{missing[0]}.yaml nor a node-local {LOCAL_DIR}/{missing[0]}.yaml in any node directory "
                          "of the federation")
    return found


BLOCK = Section("block schema", (
    "A block's features in the model's input order and their public scaling, one YAML file per block: the "
    "project's in configs/block/<block>.yaml, or a node's own in blocks/<block>.yaml next to its contract (in "
    "the node directory, where `pulse-twin node init` puts contract.yaml). A node-local block may not reuse a "
    "project block's name. The node's approval covers it: the hash of every block schema a horizontal run uses "
    "is in the run's proposal, so a node whose local block changed after approval refuses the run until its "
    "proposal is approved again. Nodes whose blocks differ train together: a node without a block trains with "
    "it masked. The coordinator reads each node-local block from the node directory the federation config "
    "names (its values are public constants, never fitted on rows)."), (
    Key("name", "text", "The block's name: the file name without .yaml (letters, digits and `_`).", required=True),
    Key("features", "mapping", "The features, in input order: `{feature: {transform, center, scale}}` (see "
                               "`block schema features.<feature>`).", required=True),
), example="""\
# blocks/la_housing.yaml in the node directory, next to contract.yaml
name: la_housing
features:
  share_owner_occupied: {transform: identity, center: 0.6, scale: 0.15}
  overcrowded_per_1000:  {transform: log1p, center: 3.0, scale: 1.0}""")

BLOCK_FEATURE = Section("block schema features.<feature>", (
    "How one feature is scaled for the model: (transform(value) - center) / scale, with public constants "
    "(center and scale in transformed units)."), (
    Key("transform", "text", "Applied first.", default="identity", choices=("identity", "log1p")),
    Key("center", "number", "Subtracted after the transform.", default=0.0),
    Key("scale", "number", "Divides after centring; must be > 0.", default=1.0),
), example="overcrowded_per_1000: {transform: log1p, center: 3.0, scale: 1.0}")
