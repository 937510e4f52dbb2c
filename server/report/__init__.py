"""The Social Digital Twin's view of a finished run: `pulse-twin report RUN_DIR`.

Everything here is post-processing of what a run already released (predictions, held-out predictions,
the nodes' own privacy reports, the released model): it charges no budget and reads no raw record.
One module per role: `inputs` (reading the run), `intervals`, `drivers`, `fairness`, `mia`, `receipt`,
`card`, `gate`, `figures`, `html`, and `build` which puts them together.
"""
from __future__ import annotations

from pathlib import Path

# Public CBS open data that ships with the package (CC BY 4.0, attribution in data/SOURCES.md): the same in a
# checkout and in an installed wheel.
DATA_DIR = Path(__file__).resolve().parent / "data"
CBS_FILE = DATA_DIR / "heerlen_cbs_kwb_2016_2020.csv"   # CBS kerncijfers wijken en buurten, Heerlen 2016-2020
