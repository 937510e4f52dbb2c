"""Plain text for matching: lower case, accents dropped, words, and cue lists (words, phrases, stems)."""
from __future__ import annotations

import re
import unicodedata
from typing import Iterable

WORD = re.compile(r"[a-z0-9\u0370-\u03ff\u00df]+(?:['’-][a-z0-9\u0370-\u03ff]+)*|ε")


def fold(text: str) -> str:
    """Lower case with accents dropped ("Versiliënbosch" -> "versilienbosch"); separators kept."""
    decomposed = unicodedata.normalize("NFKD", str(text).lower())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).replace("’", "'")


def words(text: str) -> list[str]:
    """The words of a folded text, hyphenated words kept whole ("heerlen-noord")."""
    return WORD.findall(fold(text))


def has_cue(folded: str, tokens: set[str], cue: str) -> bool:
    """A cue from a lexicon: a phrase (with a space) anywhere, a stem ('verslechter*') as a word's
    beginning, else a whole word."""
    cue = fold(cue)
    if " " in cue:
        return re.search(r"(?<![a-z])" + re.escape(cue.rstrip("*")), folded) is not None
    if cue.endswith("*"):
        stem = cue[:-1]
        return any(t.startswith(stem) for t in tokens)
    return cue in tokens


def count_cues(folded: str, tokens: set[str], cues: Iterable[str]) -> int:
    return sum(1 for cue in cues if has_cue(folded, tokens, cue))
