"""The colleague's configuration: `configs/ask/default.yaml` and the files it names (places, refusals,
lexicon, one language file per language). Read once per process; overrides come from the command line."""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

from federation.config import configs_dir, load_yaml
from federation.errors import ConfigError
from server.languages import languages as read_languages, lookup


@dataclass(frozen=True)
class Settings:
    values: dict[str, Any]
    places: dict[str, Any]
    refusals: dict[str, Any]
    lexicon: dict[str, Any]
    texts: dict[str, dict[str, Any]]     # language -> its texts
    folder: Path

    @property
    def level(self) -> float:
        return float(self.values["interval_level"])

    def text(self, lang: str, key: str) -> str:
        """One text of a language file by dotted key (Dutch for a language not configured; every configured
        file holds every Dutch text, `server.languages`)."""
        code = lang if lang in self.texts else "nl"
        node = lookup(self.texts[code], key, str(self.folder / "lang" / f"{code}.yaml"))
        if not isinstance(node, str):
            raise ConfigError(f"{self.folder / 'lang' / (code + '.yaml')}: '{key}' is not a text")
        return node

    def action_log(self, run_dir: Path) -> Path | None:
        """The action log: the configured path, else RUN_DIR/actions.yaml, else actions.yaml beside the runs."""
        configured = str(self.values.get("action_log") or "").strip()
        if configured:
            path = Path(configured)
            return path if path.is_absolute() else (self.folder / path).resolve()
        for candidate in (run_dir / "actions.yaml", run_dir.parent / "actions.yaml"):
            if candidate.is_file():
                return candidate
        return None


def load_settings(overrides: Sequence[str] = ()) -> Settings:
    """The settings with `KEY=VALUE` overrides of default.yaml (composed like every other configuration)."""
    return _overridden(tuple(overrides)) if overrides else _default()


@lru_cache(maxsize=1)
def _default() -> Settings:
    folder = configs_dir() / "ask"
    return _with(load_yaml(folder / "default.yaml"), folder)


@lru_cache(maxsize=8)
def _overridden(overrides: tuple[str, ...]) -> Settings:
    from federation.config import compose, to_container

    folder = configs_dir() / "ask"
    return _with(to_container(compose("default", list(overrides), group="ask")), folder)


def _with(values: dict[str, Any], folder: Path) -> Settings:
    def named(key: str) -> dict[str, Any]:
        name = values.get(key)
        if not name:
            raise ConfigError(f"{folder / 'default.yaml'}: '{key}' names no file")
        path = Path(str(name))
        return load_yaml(path if path.is_absolute() else folder / path)

    languages = [str(x) for x in values.get("languages") or ["nl", "en"]]
    if "nl" not in languages:
        raise ConfigError(f"{folder / 'default.yaml'}: languages must include nl (the fallback)")
    texts = read_languages(folder / "lang", languages)
    return Settings(values, named("places"), named("refusals"), named("lexicon"), texts, folder)
