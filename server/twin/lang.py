"""The twin's texts per language (`configs/lang/twin/<code>.yaml`, read as every language file is:
`server.languages`), in the languages the pages are shown in, the readers' own first; every file must hold
Dutch's keys, and the page's texts are flat (key: text)."""
from __future__ import annotations

from typing import Any

from federation.errors import ConfigError
from server.languages import folder, languages as read_languages, shown

PAGE = "twin"


def languages() -> dict[str, dict[str, Any]]:
    """{code: texts} for every language shown (`configs/languages.yaml`), in that order; a key of Dutch missing
    elsewhere is an error."""
    out = read_languages(folder(PAGE), shown())
    for code, texts in out.items():
        if not all(isinstance(v, str) for v in texts.values()):
            raise ConfigError(f"{folder(PAGE) / (code + '.yaml')}: a flat mapping of key: text expected")
    return out
