"""The features manifest (`features/manifest.json`): what a node's accepted build recorded about itself
(privacy unit and k, each table's unit and bounds, suppressed areas, proxy warnings, the build's id).

One reader for every command that needs it; written only by `output.write_features`."""
from __future__ import annotations

import json
from pathlib import Path

from federation.errors import ConfigError

MANIFEST = Path("features") / "manifest.json"


def read_manifest(path: Path, required: bool = False) -> dict:
    """The manifest as a mapping ({} when it is absent and not `required`); one clear error when unreadable."""
    if not path.is_file():
        if required:
            raise ConfigError(f"{path}: no features manifest (build the features with `pulse-twin features`)")
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ConfigError(f"{path}: the features manifest is unreadable ({err})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the features manifest is not a JSON object")
    return data
