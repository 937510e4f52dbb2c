"""Dates and horizons in a question, resolved against the run's latest released month (the twin's "now":
a question is about the data a run holds, so "since last summer" means the summer before that month).

Months are 'YYYY-MM' strings. `Period(start, end)`: for a change, start and end are the two months
compared; for a figure, the months averaged.
"""
from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from typing import Iterable, Mapping

from server.ask.text import typo_of

NUMBERS = {"een": 1, "one": 1, "a": 1, "twee": 2, "two": 2, "drie": 3, "three": 3, "vier": 4, "four": 4,
           "vijf": 5, "five": 5, "zes": 6, "six": 6, "zeven": 7, "seven": 7, "acht": 8, "eight": 8, "negen": 9,
           "nine": 9, "tien": 10, "ten": 10, "elf": 11, "eleven": 11, "twaalf": 12, "twelve": 12,
           "achttien": 18, "eighteen": 18, "vierentwintig": 24}
COUNT = r"(\d{1,2}|" + "|".join(sorted(NUMBERS, key=len, reverse=True)) + r")"
AMBIGUOUS = {"may", "mar", "jan", "dec", "sep"}   # month words that are also ordinary words
UNIT = r"(maanden|maand|months|month|jaar|jaren|years|year|kwartaal|kwartalen|quarters|quarter|weken|weeks)"
# "sinds/since ..." must be followed by a date the reader knows; between the word and the date these may stand.
SINCE = ("sinds", "since", "sedert", "vanaf")
FILLERS = {"de", "het", "the", "a", "an", "een", "last", "vorige", "vorig", "afgelopen", "previous", "past", "begin",
           "start", "eind", "einde", "end", "midden", "mid", "of", "van", "this", "dit", "deze", "jongstleden",
           "beginning", "early", "late"}
# Words after which a month or season is expected (a misspelt one there is read as place names are read).
OPENERS = {*SINCE, *FILLERS, "in", "tot", "until", "till", "from", "tussen", "between", "en", "and", "t/m", "na",
           "after", "voor", "before", "sinds", "since"}
DATE_WORDS = {"maand", "maanden", "month", "months", "jaar", "jaren", "year", "years", "kwartaal", "kwartalen",
              "quarter", "quarters", "week", "weken", "weeks", "dag", "dagen", "day", "days", "half", "halfjaar",
              "nu", "now", "toen", "then", "gisteren", "yesterday", "vandaag", "today"}


@dataclass(frozen=True)
class Period:
    start: str
    end: str

    def as_list(self) -> list[str]:
        return [self.start, self.end]


def shift(month: str, by: int) -> str:
    year, mon = int(month[:4]), int(month[5:7])
    index = year * 12 + (mon - 1) + by
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def months_between(a: str, b: str) -> int:
    return (int(b[:4]) * 12 + int(b[5:7])) - (int(a[:4]) * 12 + int(a[5:7]))


def _count(word: str) -> int:
    return int(word) if word.isdigit() else NUMBERS[word]


def _months(count: int, unit: str) -> int:
    if unit.startswith(("jaar", "jaren", "year")):
        return 12 * count
    if unit.startswith(("kwarta", "quarter")):
        return 3 * count
    if unit.startswith(("week", "weken")):
        return max(1, round(count / 4.3))
    return count


class DateReader:
    """Reads the dates of one question (folded text) against `anchor`, with the lexicon's month and season words."""

    def __init__(self, lexicon: Mapping, anchor: str):
        self.anchor = anchor
        self.month_words = {fold_word: int(m) for m, ws in lexicon["months"].items() for fold_word in ws}
        self.season_words = {w: int(m) for m, ws in lexicon["seasons"].items() for w in ws}
        month_alt = "|".join(sorted(self.month_words, key=len, reverse=True))
        season_alt = "|".join(sorted(self.season_words, key=len, reverse=True))
        self.point = re.compile(
            r"(?P<iso>(?:19|20)\d{2}-(?:0[1-9]|1[0-2]))(?!\d)"
            r"|(?P<mmyy>(?:0?[1-9]|1[0-2])[/-](?:19|20)\d{2})"
            rf"|(?P<mon>\b(?:{month_alt})\b\.?)(?:\s+(?P<monyear>(?:19|20)\d{{2}}))?"
            rf"|(?P<season>\b(?:{season_alt})\b)(?:\s+(?:van\s+|of\s+)?(?P<seasonyear>(?:19|20)\d{{2}}))?"
            r"|(?P<edge>\b(?:begin|start|eind|einde|end)\b(?:\s+(?:van|of))?\s+(?P<edgeyear>(?:19|20)\d{2}))"
            r"|(?P<year>\b(?:19|20)\d{2}\b)")

    # --- words the reader does not know -------------------------------------------------------------
    def is_date_word(self, word: str) -> bool:
        return (word in self.month_words or word in self.season_words or word in NUMBERS or word in DATE_WORDS
                or any(ch.isdigit() for ch in word))

    def typos(self, text: str, known: Iterable[str], cutoff: float) -> dict[str, str]:
        """Misspelt month and season names where a date is expected ("sinds de zomr", "since last sumer"):
        {typo: the month or season word}, with the tolerance of place names (`server.ask.text.typo_of`); words
        of four letters or more after a word that opens a date, never an ordinary word the colleague knows."""
        known = set(known)
        targets = [w for w in [*self.month_words, *self.season_words] if len(w) >= 4]
        tokens = re.findall(r"[a-z0-9/]+", text)
        found = {}
        for before, word in zip(tokens, tokens[1:]):
            if before not in OPENERS or len(word) < 4 or self.is_date_word(word) or word in known:
                continue
            close = typo_of(word, targets, cutoff)
            if close:
                found[word] = close
        return found

    @staticmethod
    def corrected(text: str, typos: Mapping[str, str]) -> str:
        for typo, word in typos.items():
            text = re.sub(rf"\b{re.escape(typo)}\b", word, text)
        return text

    def unread(self, text: str) -> str | None:
        """The words of a "sinds/since ..." that name no date the reader knows ("since the action"), or None."""
        for m in re.finditer(r"\b(" + "|".join(SINCE) + r")\b", text):
            rest = re.findall(r"[\w/'-]+", text[m.end():])
            taken = []
            for word in rest:
                taken.append(word)
                if word not in FILLERS:
                    break
            if taken and not self.is_date_word(taken[-1]) and taken[-1] not in FILLERS:
                return " ".join([m.group(1), *taken])
        return None

    # --- points in time -----------------------------------------------------------------------------
    def _before_anchor(self, month: int, strictly: bool) -> str:
        year = int(self.anchor[:4])
        candidate = f"{year:04d}-{month:02d}"
        while candidate > self.anchor or (strictly and candidate == self.anchor):
            year -= 1
            candidate = f"{year:04d}-{month:02d}"
        return candidate

    def points(self, text: str) -> list[tuple[int, str, str]]:
        """(position, first month, last month) of every date the text names."""
        out = []
        for m in self.point.finditer(text):
            if m.group("iso"):
                first = last = m.group("iso")
            elif m.group("mmyy"):
                mon, year = re.split(r"[/-]", m.group("mmyy"))
                first = last = f"{int(year):04d}-{int(mon):02d}"
            elif m.group("mon"):
                if m.group("mon").rstrip(".") in AMBIGUOUS and not m.group("monyear") and not re.search(
                        r"\b(sinds|since|in|from|vanaf|until|tot|begin|end|eind|of|van)\s+$", text[:m.start()]):
                    continue
                month = self.month_words[m.group("mon").rstrip(".")]
                first = last = (f"{m.group('monyear')}-{month:02d}" if m.group("monyear")
                                else self._before_anchor(month, strictly=False))
            elif m.group("season"):
                start = self.season_words[m.group("season")]
                if m.group("seasonyear"):
                    year = int(m.group("seasonyear")) - (1 if start == 12 else 0)
                    first = f"{year:04d}-{start:02d}"
                else:
                    first = self._before_anchor(start, strictly=True)
                last = shift(first, 2)
            elif m.group("edge"):
                year = m.group("edgeyear")
                first = last = f"{year}-01" if m.group("edge").startswith(("begin", "start")) else f"{year}-12"
            else:
                first, last = f"{m.group('year')}-01", f"{m.group('year')}-12"
            out.append((m.start(), first, last))
        return out

    # --- periods --------------------------------------------------------------------------------------
    def period(self, text: str, intent: str) -> Period | None:
        """The period a question asks about, for `intent` (a change compares two months, a figure averages)."""
        a, change = self.anchor, intent == "change"
        m = re.search(rf"\b(afgelopen|laatste|past|last|previous|vorige|recent(?:e)?)\s+(?:{COUNT}\s+)?{UNIT}", text)
        singular = m is not None and not m.group(2) and m.group(1) in ("vorige", "last", "previous")
        if m and not singular and not re.search(r"\b(vorig|vorige|last|previous)\s+(jaar|year)\b", m.group(0)):
            n = _months(_count(m.group(2)) if m.group(2) else 1, m.group(3))
            return Period(shift(a, -n), a) if change else Period(shift(a, -n + 1), a)
        m = re.search(rf"\b{COUNT}\s+{UNIT}\s+(geleden|ago)\b", text)
        if m:
            back = shift(a, -_months(_count(m.group(1)), m.group(2)))
            return Period(back, a) if change else Period(back, back)
        if re.search(r"\b(half jaar|half a year|halfjaar|six months)\b", text) and re.search(
                r"\b(afgelopen|laatste|past|last|sinds|since)\b", text):
            return Period(shift(a, -6), a) if change else Period(shift(a, -5), a)
        if re.search(r"\b(vorig jaar|vorige jaar|last year|previous year|een jaar geleden|a year ago)\b", text):
            if change or re.search(r"\b(sinds|since)\b", text):
                return Period(shift(a, -12), a)
            year = int(a[:4]) - 1
            return Period(f"{year}-01", f"{year}-12")
        if re.search(r"\b(vorige maand|last month|previous month)\b", text):
            return Period(shift(a, -1), a) if change else Period(shift(a, -1), shift(a, -1))
        if re.search(r"\b(dit jaar|this year|het lopende jaar)\b", text):
            return Period(f"{a[:4]}-01", a)
        points = self.points(text)
        between = re.search(r"\b(tussen|between|van|from)\b.*\b(en|and|tot|to|until|till|t/m)\b", text)
        if len(points) >= 2 and (between or change):
            return Period(points[0][1], points[1][2] if not change else points[1][1])
        if points:
            _, first, last = points[0]
            if change or re.search(r"\b(sinds|since|sedert|vanaf|from)\b", text):
                return Period(first, a)
            return Period(first, min(last, a))
        if re.search(r"\b(nu|now|currently|momenteel|op dit moment|deze maand|this month|latest|laatst bekende)\b", text):
            return Period(a, a)
        return None

    def horizon(self, text: str, horizon_words: Mapping) -> int | None:
        """Months ahead a forecast question names, else None."""
        m = re.search(rf"\b(?:over|in|within|binnen|komende|coming|next|de komende|the next)\s+(?:de\s+|the\s+)?"
                      rf"{COUNT}\s+{UNIT}", text)
        if m:
            return _months(_count(m.group(1)), m.group(2))
        m = re.search(rf"\b{COUNT}\s+{UNIT}\s+(?:vooruit|ahead|verder|from now)\b", text)
        if m:
            return _months(_count(m.group(1)), m.group(2))
        m = re.search(r"\b(?:h|horizon|horizont)\s*=?\s*(\d{1,2})\b", text)
        if m:
            return int(m.group(1))
        if re.search(r"\b(komend kwartaal|next quarter|coming quarter|volgend kwartaal)\b", text):
            return 3
        if re.search(r"\b(komend half jaar|next half year|coming half year|komende halfjaar|(over|in|binnen|within) "
                     r"(een |a )?half (jaar|year)|in half a year)\b", text):
            return 6
        for months, phrases in horizon_words.items():
            if any(re.search(r"\b" + re.escape(p) + r"\b", text) for p in phrases):
                return int(months)
        return None


def impossible_date(text: str, month_words: Mapping[str, int]) -> str | None:
    """A date in the (folded) text that no calendar has ("31-02-2021", "2020-13", "13/2021", "30 februari"),
    as written, or None. Read dates are only those that exist."""
    def exists(year: int, month: int, day: int = 1) -> bool:
        return 1 <= month <= 12 and 1 <= day <= calendar.monthrange(year, month)[1]

    for m in re.finditer(r"(?<![\d/.-])(\d{1,2})[-/.](\d{1,2})[-/.]((?:19|20)\d{2})(?![\d/.-])", text):
        if not exists(int(m.group(3)), int(m.group(2)), int(m.group(1))):
            return m.group(0)
    for m in re.finditer(r"(?<![\d/.-])((?:19|20)\d{2})[-/.](\d{1,2})(?:[-/.](\d{1,2}))?(?![\d/.-])", text):
        if not exists(int(m.group(1)), int(m.group(2)), int(m.group(3) or 1)):
            return m.group(0)
    for m in re.finditer(r"(?<![\d/.-])(\d{1,2})[-/]((?:19|20)\d{2})(?![\d/.-])", text):
        if not 1 <= int(m.group(1)) <= 12:
            return m.group(0)
    names = "|".join(sorted((re.escape(w) for w in month_words if w not in AMBIGUOUS), key=len, reverse=True))
    for m in re.finditer(rf"\b(\d{{1,2}})(?:e|ste|de|st|nd|rd|th)?\s+({names})\b\.?(?:\s+((?:19|20)\d{{2}}))?", text):
        if not exists(int(m.group(3) or 2000), month_words[m.group(2)], int(m.group(1))):
            return m.group(0)
    for m in re.finditer(rf"\b({names})\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?\b(?:,?\s+((?:19|20)\d{{2}}))?", text):
        if not exists(int(m.group(3) or 2000), month_words[m.group(1)], int(m.group(2))):
            return m.group(0)
    return None
