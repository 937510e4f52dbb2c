"""Language files (`server.languages`): Dutch first, every file holds every Dutch text, one clear message for a
mistake; and every set of language files PULSE-TWIN ships passes that check."""
from pathlib import Path

import pytest

from federation.config import configs_dir
from federation.errors import ConfigError
from server.languages import languages, lookup, text_keys

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = [ROOT / "server" / "report" / "lang", ROOT / "server" / "twin" / "lang",
           ROOT / "server" / "feedback" / "lang", ROOT / "server" / "forecast" / "lang"]


def write(folder: Path, code: str, text: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{code}.yaml").write_text(text, encoding="utf-8")


def test_dutch_comes_first_and_nested_texts_are_compared_by_dotted_key(tmp_path):
    write(tmp_path, "en", "title: Title\nnaive:\n  persistence: the same\n")
    write(tmp_path, "ca", "title: Títol\nnaive:\n  persistence: el mateix\n")
    write(tmp_path, "nl", "title: Titel\nnaive:\n  persistence: hetzelfde\n")
    out = languages(tmp_path)
    assert list(out) == ["nl", "ca", "en"]
    assert sorted(text_keys(out["nl"])) == ["naive.persistence", "title"]
    assert lookup(out["ca"], "naive.persistence", "ca.yaml") == "el mateix"
    assert list(languages(tmp_path, ("en",))) == ["nl", "en"]


def test_a_text_dutch_has_and_another_file_lacks_is_one_message_naming_the_file_and_the_text(tmp_path):
    write(tmp_path, "nl", "title: Titel\nnaive:\n  persistence: hetzelfde\n  seasonal: vorig jaar\n")
    write(tmp_path, "en", "title: Title\nnaive:\n  persistence: the same\n")
    with pytest.raises(ConfigError, match=r"en\.yaml: no text 'naive\.seasonal' \(the Dutch file has it\)"):
        languages(tmp_path)


@pytest.mark.parametrize("content, message", [
    (None, r"nl\.yaml: language file not found"),
    ("title: [unclosed\n", r"nl\.yaml: not a readable language file"),
    ("- a list\n- of texts\n", r"nl\.yaml: not a mapping of texts"),
])
def test_a_missing_or_broken_dutch_file_is_named(tmp_path, content, message):
    write(tmp_path, "en", "title: Title\n")
    if content is not None:
        write(tmp_path, "nl", content)
    with pytest.raises(ConfigError, match=message):
        languages(tmp_path)


def test_a_missing_text_is_named_on_lookup():
    with pytest.raises(ConfigError, match=r"nl\.yaml: no text 'naive\.weekly'"):
        lookup({"naive": {"persistence": "x"}}, "naive.weekly", "nl.yaml")


@pytest.mark.parametrize("folder", [*SHIPPED, configs_dir() / "ask" / "lang"], ids=lambda p: str(p.parent.name))
def test_every_shipped_set_of_language_files_is_complete(folder):
    out = languages(folder)
    assert list(out)[0] == "nl" and "en" in out
    assert set(text_keys(out["en"])) >= set(text_keys(out["nl"]))
