"""Language files, the one way every page and sentence people read gets its words.

A folder holds one YAML file per language, `<code>.yaml`: a mapping of texts, possibly nested (a dotted key
such as `naive.persistence` names a nested text). Dutch (`nl`) is the twin's first language: it must be
there, it comes first, and every other file must hold every text Dutch holds, so that a half-translated
page never tells one reader less than another. A new language is a new file, checked when it is read;
a mistake is one message naming the file and the text.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import yaml

from federation.errors import ConfigError

DUTCH = "nl"


def read(folder: Path, code: str) -> dict[str, Any]:
    """The texts of one language file (`folder/<code>.yaml`)."""
    path = Path(folder) / f"{code}.yaml"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: language file not found") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise ConfigError(f"{path}: not a readable language file ({err})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: not a mapping of texts")
    return data


def text_keys(texts: Mapping[str, Any], prefix: str = "") -> Iterable[str]:
    """Every text's dotted key (a nested mapping's texts under `parent.child`)."""
    for key, value in texts.items():
        if isinstance(value, Mapping):
            yield from text_keys(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}"


def languages(folder: Path, codes: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
    """{code: texts} of Dutch and the languages `codes` (default: every file in `folder`), Dutch first and the
    others in the order given (default: alphabetical); each file must hold every text the Dutch one holds."""
    folder = Path(folder)
    if codes is None:
        codes = sorted(p.stem for p in folder.glob("*.yaml"))
    out = {code: read(folder, code) for code in [DUTCH, *(c for c in codes if c != DUTCH)]}
    dutch = set(text_keys(out[DUTCH]))
    for code, texts in out.items():
        missing = sorted(dutch - set(text_keys(texts)))
        if missing:
            raise ConfigError(f"{folder / (code + '.yaml')}: no text '{missing[0]}' (the Dutch file has it)"
                              + (f", and {len(missing) - 1} more" if len(missing) > 1 else ""))
    return out


def lookup(texts: Mapping[str, Any], key: str, where: str) -> Any:
    """The text at dotted `key`; a missing one is an error naming `where` (the file)."""
    node: Any = texts
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            raise ConfigError(f"{where}: no text '{key}'")
        node = node[part]
    return node
