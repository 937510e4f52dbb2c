"""The drivers of one area's forecast: the run's drivers (`server.report.drivers.run_drivers`, the one measure
the report, the twin and the feedback pages read), for that area's rows only, kept per run in memory (read
once per version of the file)."""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from server.ask.store import RunStore
from server.report.drivers import WORDS, area_rows, run_drivers
from server.report.inputs import ReportInputError


def _stamp(run_dir: Path) -> float:
    """The newest modification time of what the drivers are read from (a rewritten file is read again)."""
    paths = [run_dir / "forecast" / "drivers.csv", run_dir / "model.pt", run_dir / "config.json"]
    return max((p.stat().st_mtime for p in paths if p.is_file()), default=0.0)


@lru_cache(maxsize=4)
def _loaded(run_dir: Path, stamp: float):
    config = json.loads((run_dir / "config.json").read_text()) if (run_dir / "config.json").is_file() else {}
    try:
        return run_drivers(run_dir, config)
    except ReportInputError:
        return None


def attribution_row(run_dir: Path, area: str) -> dict[str, Any] | None:
    """feature -> (block, points, level against the city median) for one area, or None when the run kept no
    drivers; a driver the model does not use is left out."""
    frame = _loaded(Path(run_dir), _stamp(Path(run_dir)))
    if frame is None:
        return None
    found = area_rows(frame, area)
    return {d.feature: (d.block, d.value, d.level) for d in found} if found else None


def area_drivers(store: RunStore, area: str, top: int) -> list[dict[str, Any]] | None:
    """The `top` drivers by size of their share of the area's forecast, in plain words."""
    row = attribution_row(store.run_dir, area)
    if row is None:
        return None
    fed = store.federation
    owners = {b: p for p, spec in (fed.get("partners") or {}).items() for b in spec.get("blocks", [])}
    owners["history"] = store.label_partner      # the label's own released history: its partner's release
    ranked = sorted(row.items(), key=lambda kv: -abs(kv[1][1]))[:top]
    return [{"feature": f, "words": WORDS.get(f, f.replace("_", " ")), "block": b, "owner": owners.get(b, ""),
             "value": v, "level": lvl} for f, (b, v, lvl) in ranked if abs(v) > 0]
