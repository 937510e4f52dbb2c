"""Privacy receipts for residents: plain words from the language files (Dutch first, English), the epsilon put in
context by what it bounds (how far a worst-case guess can move), and no English inside the Dutch text."""
from __future__ import annotations

import math
import re

import pytest

from dp_accounting import PrivacyLedger, Release, privacy_report
from server.report import receipt as receipt_module
from server.report.receipt import after_guess, receipt

ENGLISH = {"the", "and", "table", "one", "person", "household", "record", "row", "noise", "release", "released",
           "times", "likely", "unit", "model", "update", "steps", "with", "without", "resident", "area", "month"}


def _report(tmp_path, kind: str) -> dict:
    with PrivacyLedger(tmp_path / f"{kind}.sqlite") as ledger:
        if kind == "person":
            for t in ("enquete", "uitkeringen"):
                ledger.record(Release(mechanism="gaussian", noise_multiplier=1.4, sample_rate=1.0, steps=1,
                                      unit=f"one person or household (respondent_id), table {t}", run_id="demo#1",
                                      round=0, kind="dp-aggregate", table=t, sensitivity=1.0))
            ledger.record_fact("demo#1", "psi_revealed_set_size", 1219, "psi message")
        elif kind == "record":
            ledger.record(Release(mechanism="gaussian", noise_multiplier=1.4, sample_rate=1.0, steps=1,
                                  unit="one record (the export has no person link), table incidents", run_id="demo#1",
                                  round=0, kind="vertical-embeddings", table="incidents", sensitivity=1.0))
        else:
            for r in range(1, 4):
                ledger.record(Release(noise_multiplier=1.1, sample_rate=0.05, steps=20, unit="area-period row",
                                      run_id="demo#1", round=r, kind="horizontal-update"))
        return privacy_report(ledger, 1e-5, accountant="rdp").to_dict()


def _all_text(texts: dict) -> str:
    return " ".join([texts["intro"], *texts["left"], *texts["guarantee"], texts["meaning"]])


@pytest.mark.parametrize("kind", ["person", "record", "row"])
def test_no_english_inside_the_dutch_receipt(tmp_path, kind: str):
    r = receipt("municipality", _report(tmp_path, kind), "demo")
    words = lambda text: set(re.findall(r"[a-z]+", text.lower()))  # noqa: E731
    assert words(_all_text(r.texts["nl"])) & ENGLISH == set()
    assert len(words(_all_text(r.texts["en"])) & ENGLISH) >= 5   # control: the check finds English where it is


def test_the_epsilon_is_put_in_context_not_as_a_bare_multiplier(tmp_path):
    r = receipt("municipality", _report(tmp_path, "person"), "demo")
    for code, decimal in (("nl", ","), ("en", ".")):
        meaning = r.texts[code]["meaning"]
        assert "times more likely" not in meaning and f"{math.exp(r.epsilon):.1f}" not in meaning
        for before in (0.01, 0.5):
            shown = f"{100 * after_guess(r.epsilon, before):.1f}".replace(".", decimal) + "%"
            assert shown in meaning
        assert r.texts[code]["epsilon"] == f"{r.epsilon:.2f}".replace(".", decimal)
    # the bound itself: odds grow by at most e^epsilon
    p = after_guess(2.0, 0.01)
    assert p / (1 - p) == pytest.approx(math.exp(2.0) * 0.01 / 0.99)
    assert after_guess(0.0, 0.3) == pytest.approx(0.3) and after_guess(1e6, 0.01) == pytest.approx(1.0)


def test_plain_words_short_sentences(tmp_path):
    r = receipt("police", _report(tmp_path, "record"), "demo")
    for code in ("nl", "en"):
        sentences = [s for s in re.split(r"(?<=[.?!])\s+", r.texts[code]["meaning"]) if s]
        assert max(len(s.split()) for s in sentences) <= 30 and len(sentences) >= 6


def test_the_words_come_from_the_language_files(tmp_path, monkeypatch):
    report = _report(tmp_path, "row")
    original = receipt_module.words
    changed = dict(original("nl"), left="Gedeeld:")
    monkeypatch.setattr(receipt_module, "words", lambda code: changed if code == "nl" else original(code))
    assert receipt("x", report, "demo").texts["nl"]["intro"] == "Gedeeld:"
