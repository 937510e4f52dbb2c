"""Defaults of `pulse-twin generate`, importable without the generator (the CLI shows them in --help)."""
from __future__ import annotations

from pathlib import Path

from server.report import CBS_FILE

DEFAULT_PROFILES = Path(__file__).resolve().parent / "profiles"
DEFAULT_CBS = CBS_FILE   # the public CBS file that ships with the package (also in an installed wheel)
DEFAULT_CITIES: tuple[str, ...] = ("heerlen", "genk", "sant_boi", "piraeus")
DEFAULT_RECORDS = 250_000  # a quick demo (and `pulse-twin demo`'s): a few seconds for all four cities over the 36-month window
