"""The colleague's configuration: `configs/ask/default.yaml` and the files it names (places, refusals,
lexicon, one language file per language). Read once per process; overrides come from the command line."""
from __future__ import annotations

import re
import string
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from federation.config import configs_dir, load_yaml
from federation.errors import ConfigError
from server.ranges import PROBABILITY_OPEN, Range
from server.languages import DUTCH, languages as read_languages, lookup, read, shown, text_keys

# Every numeric setting of default.yaml and the values it may take: (whole number?, low, high, low allowed,
# high allowed). A value outside is one message naming the setting and this range, before any question is read.
LIMITS: dict[str, Range] = {
    "interval_level": PROBABILITY_OPEN,                     # a two-sided interval's coverage: strictly in (0, 1)
    "window_months": Range(1, 24, whole=True),             # the months averaged into one level
    "fuzzy_cutoff": Range(0.5, 1.0),                        # difflib ratio; below 0.5 nearly any word matches
    "ambiguity_margin": Range(0.0, 0.5),
    "max_listed_areas": Range(1, 100, whole=True),
}


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

    def file(self, lang: str) -> Path:
        """The language file a language's texts come from (the first language shown for one not shown)."""
        return self.folder / "lang" / f"{lang if lang in self.texts else next(iter(self.texts))}.yaml"

    def format(self, lang: str, key: str, **fields: Any) -> str:
        """A text with its placeholders filled; a placeholder the colleague does not fill for that text (a
        language file edited by hand) is one message naming the file and the text, never a KeyError."""
        text = self.text(lang, key)
        try:
            return text.format(**fields)
        except (KeyError, IndexError, AttributeError, ValueError) as err:
            named = err.args[0] if isinstance(err, KeyError) and err.args else err
            filled = ", ".join("{" + f + "}" for f in sorted(fields)) or "none"
            raise ConfigError(f"{self.file(lang)}: text '{key}' has the placeholder {{{named}}}, which the "
                              f"colleague does not fill (it fills: {filled})") from None

    @cached_property
    def vocabulary(self) -> frozenset[str]:
        """Ordinary words the colleague knows (folded): every word of the lexicon, of the places file, of the
        person check's first names, of refusals.yaml's `protected_group.ordinary` and of the language files
        except the refusal reasons (which name protected attributes). A word of this set is never read as an
        unknown place or a misspelt protected group."""
        from server.ask.text import words

        found: set[str] = set()
        refusals = self.refusals
        for source in (self.lexicon, self.places, (refusals.get("person") or {}).get("first_names") or [],
                       (refusals.get("protected_group") or {}).get("ordinary") or [],
                       *({k: v for k, v in texts.items() if k != "refusal"} for texts in self.texts.values())):
            for item in _strings(source):
                found.update(words(item.replace("_", " ").replace("*", "")))
        return frozenset(found)

    def text(self, lang: str, key: str) -> str:
        """One text of a language file by dotted key (in the first language shown for a language not shown;
        every file holds every Dutch text, `server.languages`)."""
        code = lang if lang in self.texts else next(iter(self.texts))
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
    return _with(load_yaml(folder / "default.yaml"), folder, str(folder / "default.yaml"))


@lru_cache(maxsize=8)
def _overridden(overrides: tuple[str, ...]) -> Settings:
    from federation.config import compose, to_container

    folder = configs_dir() / "ask"
    return _with(to_container(compose("default", list(overrides), group="ask")), folder,
                 f"{folder / 'default.yaml'} (as overridden on the command line)")


def _with(values: dict[str, Any], folder: Path, where: str) -> Settings:
    check_values(values, where)
    def named(key: str) -> dict[str, Any]:
        name = values.get(key)
        if not name:
            raise ConfigError(f"{folder / 'default.yaml'}: '{key}' names no file")
        path = Path(str(name))
        return load_yaml(path if path.is_absolute() else folder / path)

    texts = read_languages(folder / "lang", shown())   # the languages shown, the readers' own first
    _check_placeholders(folder / "lang", texts)
    return Settings(values, named("places"), named("refusals"), named("lexicon"), texts, folder)


def check_values(values: Mapping[str, Any], where: str) -> None:
    """Every numeric setting within its range (LIMITS): one message naming the setting and the range."""
    for key, allowed in LIMITS.items():
        if key not in values:
            raise ConfigError(f"{where}: setting {key} is missing")
        if not allowed.admits(values[key]):
            raise ConfigError(f"{where}: {key}={values[key]} is outside its range: give {allowed.words()}")


def placeholders(text: str) -> set[str]:
    """The names of a text's {placeholders} ({place}, {n:.2f} -> place, n); ValueError for a broken brace."""
    return {re.split(r"[.\[!:]", name)[0] for _, name, _, _ in string.Formatter().parse(text) if name is not None}


def _check_placeholders(folder: Path, texts: Mapping[str, Mapping[str, Any]]) -> None:
    """Every text of every language file has well-formed, named placeholders, and only ones its Dutch text uses
    (the colleague fills what the Dutch text asks for): one message naming the file and the text key."""
    dutch = texts[DUTCH] if DUTCH in texts else read(folder, DUTCH)   # the reference, shown or not
    for code, mine in texts.items():
        where = folder / f"{code}.yaml"
        for key in text_keys(mine):
            text = lookup(mine, key, str(where))
            if not isinstance(text, str):
                continue
            try:
                used = placeholders(text)
            except ValueError as err:
                raise ConfigError(f"{where}: text '{key}' has a broken {{placeholder}} ({err})") from None
            if "" in used or any(name.isdigit() for name in used):
                raise ConfigError(f"{where}: text '{key}' has a placeholder without a name ({{}}); name it as the "
                                  f"Dutch text does")
            if code == DUTCH:
                continue
            try:
                reference = lookup(dutch, key, str(folder / f"{DUTCH}.yaml"))
            except ConfigError:
                continue            # a text Dutch does not have is never asked for
            allowed = placeholders(reference) if isinstance(reference, str) else set()
            extra = sorted(used - allowed)
            if extra:
                raise ConfigError(
                    f"{where}: text '{key}' has the placeholder {{{extra[0]}}}, which the Dutch text of "
                    f"{folder / (DUTCH + '.yaml')} does not use (it uses: "
                    f"{', '.join('{' + n + '}' for n in sorted(allowed)) or 'none'}); a text may only use the "
                    f"placeholders of its Dutch text, the ones the colleague fills")


def _strings(node: Any) -> Iterable[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, Mapping):
        for key, value in node.items():
            yield str(key)
            yield from _strings(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            yield from _strings(value)
