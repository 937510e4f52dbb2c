"""The twin's view over time of a finished run: `pulse-twin twin build RUN_DIR` and `pulse-twin twin serve`.

Everything is post-processing of a run's artefacts (released label history, forecasts, skill, warnings, the
nodes' privacy reports) and of public data shipped in `server/report/data` (CBS boundaries and populations,
the real Leefbaarometer as an outside reference): it charges no budget and reads no raw record.
Modules: `geography` (buurt, wijk, stadsdeel, city, postcodes), `uncertainty` (noise per area, intervals per
population band, their coverage, changes beyond the noise, roll-ups), `build` (the page's data and the
single offline HTML file), `lang` (texts per language), `serve` (the read-only HTTPS server with login).
"""
from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent
