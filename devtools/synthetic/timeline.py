"""The generated time window: months, days and calendar years, as day offsets from the window start.

Every table stores time as integer day offsets (and seconds of the day) from the first day of the
window, so that sampling stays vectorised and formatting happens once, through small lookup tables.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from federation.errors import ConfigError

_START = re.compile(r"^(\d{4})-(\d{2})$")


@dataclass(frozen=True)
class Window:
    """`months` consecutive calendar months starting at `start_year`-`start_month`."""

    start_year: int
    start_month: int
    months: int

    @classmethod
    def parse(cls, start: str, months: int) -> "Window":
        match = _START.match(start.strip())
        if not match or not 1 <= int(match.group(2)) <= 12:
            raise ConfigError(f"--start: '{start}' is not a month of the form YYYY-MM (e.g. 2019-01)")
        if months < 1 or months > 240:
            raise ConfigError(f"--months: {months} is outside 1..240")
        return cls(int(match.group(1)), int(match.group(2)), int(months))

    @property
    def origin(self) -> np.datetime64:
        return np.datetime64(f"{self.start_year:04d}-{self.start_month:02d}-01", "D")

    def month_starts(self, first: int = 0, count: int | None = None) -> np.ndarray:
        """Day offset of the first day of months first .. first+count-1 (may be negative)."""
        count = self.months if count is None else count
        base = np.datetime64(f"{self.start_year:04d}-{self.start_month:02d}", "M")
        months = base + np.arange(first, first + count + 1)
        days = (months.astype("datetime64[D]") - self.origin).astype(np.int64)
        return days

    @property
    def first_days(self) -> np.ndarray:
        """(T,) day offset of the first day of each window month."""
        return self.month_starts()[:-1]

    @property
    def month_lengths(self) -> np.ndarray:
        """(T,) number of days of each window month."""
        return np.diff(self.month_starts())

    @property
    def total_days(self) -> int:
        return int(self.month_starts()[-1])

    @property
    def month_years(self) -> np.ndarray:
        """(T,) calendar year of each window month."""
        index = self.start_month - 1 + np.arange(self.months)
        return self.start_year + index // 12

    @property
    def years(self) -> list[int]:
        return sorted(set(int(y) for y in self.month_years))

    def month_labels(self, fmt: str) -> list[str]:
        """Each window month formatted with strftime codes %Y and %m (e.g. '%Y-%m', '%m/%Y')."""
        index = self.start_month - 1 + np.arange(self.months)
        years, months = self.start_year + index // 12, index % 12 + 1
        return [fmt.replace("%Y", f"{y:04d}").replace("%m", f"{m:02d}") for y, m in zip(years, months)]

    def day_years(self, lo: int, hi: int) -> np.ndarray:
        """Calendar year of each day offset lo..hi (inclusive)."""
        days = self.origin + np.arange(lo, hi + 1)
        return days.astype("datetime64[Y]").astype(np.int64) + 1970
