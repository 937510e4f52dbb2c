"""Plain text for matching: lower case, accents dropped, words, and cue lists (words, phrases, stems)."""
from __future__ import annotations

import difflib
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


def typo_of(word: str, targets: Iterable[str], cutoff: float) -> str | None:
    """The target `word` is a misspelling of, or None. The place names' tolerance (difflib ratio >= `cutoff`),
    kept to what a typo does: one edit (a letter added, dropped or changed), or two inside a word of eight
    letters or more that keeps its last two letters ("marrokanen", "morrocans"; not "national" for
    "nationality", three edits, nor "travelled" for "travellers", another ending); and, better than the ratio
    alone, two neighbouring letters swapped ("herfts", "tukren")."""
    targets = list(targets)
    for target in difflib.get_close_matches(word, targets, n=3, cutoff=cutoff):
        n = edits(word, target, 2)
        if n <= 1 or (n == 2 and len(word) >= 8 and word[-2:] == target[-2:]):
            return target
    for target in targets:
        if len(target) == len(word) and sorted(target) == sorted(word):
            diff = [i for i, (a, b) in enumerate(zip(word, target)) if a != b]
            if len(diff) == 2 and diff[1] == diff[0] + 1:
                return target
    return None


def edits(a: str, b: str, limit: int = 99) -> int:
    """The number of single-letter edits (insert, delete, change, swap two neighbours) from a to b; anything
    above `limit` is reported as limit + 1."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    before, row = None, list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            current[j] = min(row[j] + 1, current[j - 1] + 1, row[j - 1] + (ca != cb))
            if before is not None and i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                current[j] = min(current[j], before[j - 2] + 1)
        before, row = row, current
    return min(row[-1], limit + 1)
