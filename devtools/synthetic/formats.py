"""Vectorised rendering of days, datetimes, months, numbers and identifiers into a city's own formats.

Values are rendered through small lookup tables (one string per distinct day or second of the day),
so tens of millions of rows cost one array index and one string concatenation each.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd

from federation.errors import ConfigError
from devtools.synthetic.timeline import Window

MISSING_DAY = np.iinfo(np.int64).min  # sentinel for an empty date (e.g. a case still open)


def _strftime(days: np.ndarray, fmt: str, where: str) -> np.ndarray:
    try:
        return np.asarray(pd.DatetimeIndex(days.astype("datetime64[ns]")).strftime(fmt), dtype=object)
    except ValueError as err:
        raise ConfigError(f"{where}: date format '{fmt}' is invalid: {err}") from None


def days(window: Window, offsets: np.ndarray, fmt: str, where: str) -> np.ndarray:
    """Day offsets rendered with a strftime format; MISSING_DAY becomes an empty string."""
    out = np.full(offsets.shape, "", dtype=object)
    present = offsets != MISSING_DAY
    if present.any():
        lo, hi = int(offsets[present].min()), int(offsets[present].max())
        table = _strftime(window.origin + np.arange(lo, hi + 1), fmt, where)
        out[present] = table[offsets[present] - lo]
    return out


def datetimes(window: Window, offsets: np.ndarray, seconds: np.ndarray, fmt: str, where: str) -> np.ndarray:
    """Day offsets plus seconds of the day, rendered with a format whose time part starts at %H."""
    cut = fmt.find("%H")
    if cut < 0:
        raise ConfigError(f"{where}: datetime format '{fmt}' has no %H (hour)")
    date_part, time_part = fmt[:cut], fmt[cut:]
    step = 1 if "%S" in time_part else 60
    return days(window, offsets, date_part, where) + _clock(time_part, step, where)[seconds // step]


@lru_cache(maxsize=8)
def _clock(fmt: str, step: int, where: str) -> np.ndarray:
    """Every time of day at `step`-second resolution, rendered once per format."""
    ticks = np.datetime64("2000-01-01T00:00:00") + (np.arange(0, 86400, step)).astype("timedelta64[s]")
    return _strftime(ticks, fmt, where)


def numbers(values: np.ndarray, decimals: int, decimal_sep: str = ".") -> np.ndarray:
    """Floats rounded to `decimals` places (no '-0'); NaN becomes an empty string."""
    rounded = np.round(np.asarray(values, dtype=np.float64), decimals) + 0.0
    text = [("" if v != v else f"{v:.{decimals}f}") for v in rounded.tolist()]
    if decimal_sep != ".":
        text = [s.replace(".", decimal_sep) for s in text]
    return np.asarray(text, dtype=object)


def sequence_ids(template: str, years: np.ndarray, where: str) -> np.ndarray:
    """Identifiers from a template with {seq} (numbered per year when it has {year}, else overall).

    Rows must already be in time order, so numbers rise with time as in a real registration system.
    """
    n = len(years)
    if "{year" in template:
        starts = np.r_[0, np.flatnonzero(np.diff(years)) + 1]
        first = np.repeat(starts, np.diff(np.r_[starts, n]))
        seq = np.arange(n) - first + 1
    else:
        seq = np.arange(1, n + 1)
    try:
        return np.asarray([template.format(year=y, seq=s) for y, s in zip(years.tolist(), seq.tolist())], dtype=object)
    except (KeyError, ValueError, IndexError) as err:
        raise ConfigError(f"{where}: id template '{template}' cannot be formatted: {err}") from None


def pseudonyms(template: str, values: np.ndarray, key: int, where: str) -> np.ndarray:
    """Household pseudonyms: a keyed bijection of household numbers (same household, same pseudonym)."""
    scrambled = (values.astype(np.uint64) * np.uint64(0x9E3779B1) + np.uint64(key)) % np.uint64(2**40)
    try:
        return np.asarray([template.format(value=int(v)) for v in scrambled.tolist()], dtype=object)
    except (KeyError, ValueError, IndexError) as err:
        raise ConfigError(f"{where}: pseudonym template '{template}' cannot be formatted: {err}") from None


def check(spec: dict, where: str) -> None:
    """Render one sample of every template and format a table section names, before anything is written."""
    probe = np.array([2019])
    for key in ("id_template",):
        if key in spec:
            sequence_ids(str(spec[key]), probe, where)
    if "household_template" in spec:
        pseudonyms(str(spec["household_template"]), np.array([1]), 1, where)
    for key in ("date_format", "datetime_format", "month_format"):
        if key in spec and not isinstance(spec[key], str):
            raise ConfigError(f"{where}: field '{key}' must be a text such as '%d/%m/%Y'")
