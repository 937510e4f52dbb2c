"""Person pseudonyms, normalised before any bound is applied: one person, one unit, whatever the spelling.

The contribution bounds (max_cells, max_events, k) count per pseudonym. An export that writes one household
as "HH-12", "hh-12" and " HH-12 " would count it three times under a bound of one, and so dodge the
person-level guarantee by its formatting. Every pseudonym is therefore folded to one canonical text first
(Unicode NFKC, so full-width and compatibility characters become their plain form; lower case; all whitespace
removed), checked against the contract's declared form, and pseudonyms that still differ only in punctuation
("hh-12" and "hh12") are counted and reported as near-duplicates for the partner to look at. Folding can only
merge units, never split one: the bounds can only become stricter.
"""
from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

_WHITESPACE = re.compile(r"\s+", flags=re.UNICODE)
_PUNCTUATION = re.compile(r"[\W_]+", flags=re.UNICODE)


def check_pattern(pattern: str, where: str, fail: Any) -> str:
    """A pseudonym format: a valid regular expression (matched in full against the normalised form)."""
    try:
        re.compile(pattern)
    except re.error as err:
        raise fail(f"{where}: {pattern!r} is not a regular expression ({err})") from None
    return pattern


def _fold(text: str) -> str:
    import unicodedata

    return _WHITESPACE.sub("", unicodedata.normalize("NFKC", text).casefold())


def normalise(values: pd.Series) -> pd.Series:
    """The canonical form of each pseudonym (missing stays missing); computed per distinct value."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    folded = np.array([_fold(str(u)) for u in uniques], dtype=object)
    out = np.where(codes >= 0, folded[np.maximum(codes, 0)] if len(folded) else None, None)
    return pd.Series(out, index=values.index, dtype=object)


def bad_format(normalised: pd.Series, pattern: str) -> np.ndarray:
    """Mask of pseudonyms whose normalised form does not match `pattern` in full (an empty one never does)."""
    present = normalised.notna().to_numpy()
    text = normalised.fillna("").astype(str)
    ok = text.str.fullmatch(pattern).fillna(False).to_numpy(dtype=bool) & (text != "").to_numpy()
    return present & ~ok


def spelling_stats(raw: pd.Series, normalised: pd.Series) -> dict[str, int]:
    """Counts only (no pseudonym leaves this function): distinct spellings, persons after folding, and the
    near-duplicates that remain (distinct folded pseudonyms equal once punctuation is dropped)."""
    spellings = int(raw.dropna().nunique())
    folded = normalised.dropna().unique()
    skeleton = pd.Series([_PUNCTUATION.sub("", str(v)) for v in folded], dtype=object)
    near = int(skeleton.duplicated(keep=False).sum())
    return {"spellings": spellings, "units": len(folded), "merged_spellings": spellings - len(folded),
            "near_duplicates": near}
