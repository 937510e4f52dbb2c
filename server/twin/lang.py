"""The twin's texts per language (`lang/<code>.yaml`), Dutch first; every file must hold Dutch's keys."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from federation.errors import ConfigError
from server.twin import HERE

LANG_DIR = HERE / "lang"
DEFAULT = "nl"


def languages() -> dict[str, dict[str, Any]]:
    """{code: texts} for every language file, Dutch first; a key of Dutch missing elsewhere is an error."""
    out: dict[str, dict[str, Any]] = {}
    for path in sorted(LANG_DIR.glob("*.yaml"), key=lambda p: (p.stem != DEFAULT, p.stem)):
        out[path.stem] = _read(path)
    if DEFAULT not in out:
        raise ConfigError(f"{LANG_DIR / (DEFAULT + '.yaml')}: the Dutch texts are missing")
    for code, texts in out.items():
        missing = sorted(set(out[DEFAULT]) - set(texts))
        if missing:
            raise ConfigError(f"{LANG_DIR / (code + '.yaml')}: no text '{missing[0]}'")
    return out


def _read(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({err})") from None
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise ConfigError(f"{path}: a flat mapping of key: text expected")
    return data
