"""Defaults of `pulse-twin generate`, importable without the generator (the CLI shows them in --help)."""
from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_PROFILES = Path(__file__).resolve().parent / "profiles"
DEFAULT_CBS = REPO_ROOT.parent / "shared" / "data" / "heerlen_cbs_kwb_2016_2020.csv"
DEFAULT_CITIES: tuple[str, ...] = ("heerlen", "genk", "sant_boi", "piraeus")
DEFAULT_RECORDS = 150_000  # a quick demo (and `pulse-twin demo`'s): about 2 s for all four cities over 24 months
