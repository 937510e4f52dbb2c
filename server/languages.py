"""Language files, the one way every page and sentence people read gets its words.

A folder holds one YAML file per language, `<code>.yaml`: a mapping of texts, possibly nested (a dotted key
such as `naive.persistence` names a nested text). Dutch (`nl`) is the reference language: it must be
there, and every other file must hold every text Dutch holds, so that a half-translated page never tells one
reader less than another. Which languages a page shows, and in which order, is one setting for every page:
`configs/languages.yaml` (`shown`), the readers' own first. A new language is a new file in each folder,
checked when it is read; a mistake is one message naming the file and the text.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import yaml

from federation.config import configs_dir
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


SETTINGS = "languages.yaml"
CODE = re.compile(r"[a-z]{2,3}")


def folder(page: str) -> Path:
    """A page's language files: `configs/lang/<page>/` (report, twin, forecast, feedback)."""
    return configs_dir() / "lang" / page


def shown() -> tuple[str, ...]:
    """The languages pages and answers are shown in, the readers' own first (`configs/languages.yaml`)."""
    path = configs_dir() / SETTINGS
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: not found (it lists the languages pages are shown in: shown: [nl, en])") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise ConfigError(f"{path}: not readable ({err})") from None
    codes = data.get("shown") if isinstance(data, dict) else None
    if not (isinstance(codes, list) and codes and all(isinstance(c, str) and CODE.fullmatch(c) for c in codes)):
        raise ConfigError(f"{path}: shown: give a list of language codes, the readers' own first (e.g. [nl, en])")
    if len(set(codes)) != len(codes):
        raise ConfigError(f"{path}: shown: a language is listed twice")
    return tuple(codes)


def languages(folder: Path, codes: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
    """{code: texts} of the languages `codes` in the order given (default: every file in `folder`, Dutch first,
    the others alphabetical); each file must hold every text the Dutch one holds, Dutch being read as the
    reference whether it is shown or not."""
    folder = Path(folder)
    if codes is None:
        codes = [DUTCH, *sorted(p.stem for p in folder.glob("*.yaml") if p.stem != DUTCH)]
    reference = read(folder, DUTCH)
    out = {code: reference if code == DUTCH else read(folder, code) for code in codes}
    dutch = set(text_keys(reference))
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
