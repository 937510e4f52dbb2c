"""The twin's texts per language (`lang/<code>.yaml`, read as every language file is: `server.languages`),
Dutch first; every file must hold Dutch's keys, and the page's texts are flat (key: text)."""
from __future__ import annotations

from typing import Any

from federation.errors import ConfigError
from server.languages import languages as read_languages
from server.twin import HERE

LANG_DIR = HERE / "lang"


def languages() -> dict[str, dict[str, Any]]:
    """{code: texts} for every language file, Dutch first; a key of Dutch missing elsewhere is an error."""
    out = read_languages(LANG_DIR)
    for code, texts in out.items():
        if not all(isinstance(v, str) for v in texts.values()):
            raise ConfigError(f"{LANG_DIR / (code + '.yaml')}: a flat mapping of key: text expected")
    return out
