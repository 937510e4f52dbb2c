"""The check before anything is read: a question about a person, an address or street, a household, a
group of residents defined by a protected attribute, or a difference of areas ("X minus its neighbours")
is refused, with the reason and what can be asked instead (the texts are in the language files).

The lexicon is `configs/ask/refusals.yaml` plus the protected concepts of `configs/protected.yaml`, matched
by the same normalisation the data contracts use (clients/contracts/protected.py), word by word and for
each pair of adjacent words (so "niet westerse" and "non-western" match the stem "nietwester"). A protected
group's word of refusals.yaml is also recognised misspelt ("Marrokanen", "Morrocans", "statushoudrs"), with
the tolerance place names get (difflib ratio >= `fuzzy_cutoff`, words of six letters or more), unless the
misspelt word is an ordinary word the colleague knows (its lexicon, language files and place names).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Mapping, Sequence

from clients.contracts.protected import load_rules, normalise
from server.ask.text import fold, typo_of

KINDS = ("protected_group", "person", "address", "household", "differencing")
PARTICLES = {"van", "de", "der", "den", "ter", "te", "el", "al", "ben", "von", "la", "le", "di", "da", "bin"}


@dataclass(frozen=True)
class Refusal:
    kind: str        # one of KINDS
    said: str        # the words of the question that made it so


@lru_cache(maxsize=8)
def _patterns(spec: tuple[str, ...]) -> tuple[re.Pattern, ...]:
    return tuple(re.compile(p) for p in spec)


def _words_hit(cfg: Mapping, tokens: Sequence[str], joined: str) -> str | None:
    for word in cfg.get("words") or []:
        word = fold(str(word))
        if (" " in word and re.search(r"(?<![a-z])" + re.escape(word) + r"(?![a-z])", joined)) or word in tokens:
            return word
    return None


def _pattern_hit(cfg: Mapping, folded: str) -> str | None:
    for pattern in _patterns(tuple(str(p) for p in cfg.get("patterns") or [])):
        m = pattern.search(folded)
        if m:
            return m.group(0)
    return None


def protected_concept(tokens: Sequence[str]) -> str | None:
    """A protected concept of configs/protected.yaml in one word or two adjacent words."""
    rules = load_rules()
    plain = [normalise(t) for t in tokens]
    for i, word in enumerate(plain):
        for candidate in (word, word + plain[i + 1] if i + 1 < len(plain) else ""):
            if candidate and rules.concept_in(candidate) is not None:
                return tokens[i] if candidate == word else f"{tokens[i]} {tokens[i + 1]}"
    return None


@lru_cache(maxsize=8)
def _fuzzy_targets(spec: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(sorted({fold(w) for w in spec if " " not in fold(w) and len(fold(w)) >= 6}))


def misspelt_group(cfg: Mapping, tokens: Sequence[str], cutoff: float, known: frozenset[str] | set[str]) -> str | None:
    """A word of the question that is a protected group's word (refusals.yaml `words`) with a typo: difflib
    ratio >= `cutoff` (as place names are matched), six letters or more, not an ordinary word in `known`, and
    a typo rather than another word (`server.ask.text.typo_of`: "Marrokanen", "Morrocans", "Tukren"; not
    "national" for "nationality" or "travelled" for "travellers")."""
    targets = _fuzzy_targets(tuple(str(w) for w in cfg.get("words") or []))
    for token in tokens:
        if len(token) < 6 or token in known or not re.fullmatch(r"[a-z]+(?:['-][a-z]+)*", token):
            continue
        if typo_of(token, targets, cutoff):
            return token
    return None


def person_name(question: str, first_names: Sequence[str], masked: Sequence[str]) -> str | None:
    """A capitalised first name followed by a capitalised word or a name particle ('Jan de Vries')."""
    text = question
    for said in masked:
        text = re.sub(re.escape(said), " ", text, flags=re.IGNORECASE)
    names = {fold(n) for n in first_names}
    raw = re.findall(r"[A-Za-zÀ-ÿ'’-]+", text)
    for i, word in enumerate(raw[:-1]):
        nxt = raw[i + 1]
        if word[:1].isupper() and fold(word) in names and (nxt[:1].isupper() or nxt.lower() in PARTICLES):
            return f"{word} {nxt}"
    return None


def check(question: str, tokens: Sequence[str], refusals: Mapping, places_said: Sequence[str],
          cutoff: float | None = None, known: frozenset[str] | set[str] = frozenset()) -> Refusal | None:
    """The first reason to refuse the question, or None. `places_said`: the words that named places; `cutoff`
    (the place names' fuzzy cutoff) also refuses a misspelt protected group's word that is not in `known`."""
    folded = fold(question)
    joined = " ".join(tokens)
    token_set = set(tokens)
    group = refusals.get("protected_group") or {}
    said = _words_hit(group, token_set, joined) or _pattern_hit(group, folded) or protected_concept(tokens)
    if not said and cutoff is not None:
        said = misspelt_group(group, tokens, cutoff, known)
    if said:
        return Refusal("protected_group", said)
    person = refusals.get("person") or {}
    said = (_words_hit(person, token_set, joined) or _pattern_hit(person, folded)
            or person_name(question, person.get("first_names") or [], places_said))
    if said:
        return Refusal("person", said)
    address = refusals.get("address") or {}
    said = _words_hit(address, token_set, joined) or _pattern_hit(address, folded)
    if said:
        return Refusal("address", said)
    said = _household(refusals.get("household") or {}, list(tokens))
    if said:
        return Refusal("household", said)
    said = _differencing(refusals.get("differencing") or {}, folded, places_said)
    if said:
        return Refusal("differencing", said)
    return None


def _household(cfg: Mapping, tokens: list[str]) -> str | None:
    words = {fold(str(w)) for w in cfg.get("words") or []}
    after = {fold(str(w)) for w in cfg.get("allowed_after") or []}
    before = {fold(str(w)) for w in cfg.get("allowed_before") or []}
    joined = " ".join(tokens)
    for word in (w for w in words if " " in w):
        if re.search(r"(?<![a-z])" + re.escape(word) + r"(?![a-z])", joined):
            return word
    for i, token in enumerate(tokens):
        if token in words:
            if (i + 1 < len(tokens) and tokens[i + 1] in after) or (i and tokens[i - 1] in before):
                continue
            return token
    return None


def _differencing(cfg: Mapping, folded: str, places_said: Sequence[str]) -> str | None:
    targets = {fold(str(w)) for w in cfg.get("targets") or []}
    for pattern in _patterns(tuple(str(p) for p in cfg.get("patterns") or [])):
        for m in pattern.finditer(folded):
            rest = folded[m.end():m.end() + 80]
            rest_words = set(re.findall(r"[a-z0-9'-]+", rest))
            if rest_words & targets or any(fold(s) in rest for s in places_said):
                return m.group(0)
    return None
