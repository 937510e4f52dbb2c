"""Language files (`server.languages`): Dutch first, every file holds every Dutch text, one clear message for a
mistake; and every set of language files PULSE-TWIN ships passes that check."""
from pathlib import Path

import pytest

from federation.config import configs_dir
from federation.errors import ConfigError
from server.languages import languages, lookup, text_keys

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = [ROOT / "configs" / "lang" / page for page in ("report", "twin", "feedback", "forecast")]


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
    assert list(languages(tmp_path, ("en",))) == ["en"]
    assert list(languages(tmp_path, ("ca", "en"))) == ["ca", "en"]   # a city's own first; Dutch not shown


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


def test_a_language_not_shown_is_still_checked_against_dutch(tmp_path):
    """Piraeus shows [el, en]: Dutch stays the reference every file must match."""
    write(tmp_path, "nl", "title: Titel\nno_change: geen verandering\n")
    write(tmp_path, "el", "title: Τίτλος\n")
    write(tmp_path, "en", "title: Title\nno_change: no change\n")
    with pytest.raises(ConfigError, match=r"el\.yaml: no text 'no_change' \(the Dutch file has it\)"):
        languages(tmp_path, ("el", "en"))


@pytest.mark.parametrize("content, message", [
    ("shown: [el, en]\n", None),
    ("shown: []\n", "shown: give a list of language codes"),
    ("shown: nl\n", "shown: give a list of language codes"),
    ("shown: [nl, Dutch]\n", "shown: give a list of language codes"),
    ("shown: [nl, nl]\n", "shown: a language is listed twice"),
    ("shown: [nl\n", "not readable"),
])
def test_the_languages_shown_are_one_checked_setting(tmp_path, monkeypatch, content, message):
    from server.languages import shown

    (tmp_path / "languages.yaml").write_text(content, encoding="utf-8")
    monkeypatch.setenv("PULSE_TWIN_CONFIGS", str(tmp_path))
    if message is None:
        assert shown() == ("el", "en")
    else:
        with pytest.raises(ConfigError, match=message):
            shown()


def test_pages_are_shown_in_a_city_s_own_language_first_with_no_code_change(tmp_path, monkeypatch):
    """A transfer city adds a file per page and lists its language first: the gate's verdict, the report's
    words and the twin's texts follow, Dutch still the reference."""
    import importlib
    import shutil

    forecast_gate, report_lang, twin_lang = (importlib.import_module(f"server.{m}")
                                             for m in ("forecast.gate", "report.lang", "twin.lang"))

    configs = tmp_path / "configs"
    shutil.copytree(configs_dir(), configs)
    for page in ("report", "twin", "feedback", "forecast"):
        shutil.copy(configs / "lang" / page / "en.yaml", configs / "lang" / page / "ca.yaml")
    (configs / "languages.yaml").write_text("shown: [ca, en]\n", encoding="utf-8")
    monkeypatch.setenv("PULSE_TWIN_CONFIGS", str(configs))
    forecast_gate.texts.cache_clear()
    report_lang.texts.cache_clear()
    try:
        verdict = forecast_gate.gate(3, 0.1, 0.02, 0.2, "trailing_mean")
        assert [k for k in verdict if k.startswith("verdict_")] == ["verdict_ca", "verdict_en"]
        assert [code for code, _ in report_lang.say("warnings_none")] == ["ca", "en"]
        assert list(twin_lang.languages()) == ["ca", "en"]
    finally:
        forecast_gate.texts.cache_clear()
        report_lang.texts.cache_clear()
