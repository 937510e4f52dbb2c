"""An allowed range of a numeric setting, and its words: how every settings file of the coordinator's pages
(the report's, the colleague's, the twin's) checks a number before anything is built from it."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Range:
    low: float
    high: float
    low_open: bool = False     # the low end itself is not allowed
    high_open: bool = False
    whole: bool = False        # a whole number

    def holds(self, value: float) -> bool:
        if self.whole and value != int(value):
            return False
        above = value > self.low if self.low_open else value >= self.low
        below = value < self.high if self.high_open else value <= self.high
        return above and below

    def words(self) -> str:
        what = "a whole number" if self.whole else "a number"
        if math.isinf(self.high) and not self.high_open:
            return f"{what} {'above' if self.low_open else 'at least'} {self.low:g}"
        if math.isinf(self.low):
            return f"{what} {'below' if self.high_open else 'at most'} {self.high:g}"
        return (f"{what} in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}"
                f"{')' if self.high_open else ']'}")

    def admits(self, value: Any) -> bool:
        """Whether `value` is a finite number (not a bool) inside the range."""
        return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value) \
            and self.holds(float(value))


PROBABILITY_OPEN = Range(0, 1, low_open=True, high_open=True)   # a level strictly between 0 and 1
