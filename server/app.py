"""The ServerApp the coordinator runs: composes the configuration and runs the chosen topology.

Run config keys (from `flwr run --run-config` or pyproject defaults): `overrides` (Hydra overrides
as a JSON list, e.g. '["federation=cities", "dp.target_epsilon=3"]'; see federation/flower_config.py), `run-name`, `run-dir`, `resume` ("true":
a horizontal run continues after its checkpoint's round). The run's
outcome is written to `<run-dir>/status.json`, because `flwr run` itself exits 0 even on failure.
"""
from __future__ import annotations

import time
import traceback
from pathlib import Path
from typing import Any

from flwr.app import Context
from flwr.serverapp import Grid, ServerApp

from federation import profile
from federation.config import compose, to_container
from federation.errors import PulseTwinError
from federation.flower_config import overrides
from federation.output import setup_logging
from server.queries import NodeRefused
from server.run_record import RunRecord

app = ServerApp()


def run(grid: Grid, run_config: dict[str, Any]) -> RunRecord:
    """Run one federation from its run config; returns the record (status written either way)."""
    cfg = to_container(compose("config", overrides(run_config)))
    name = str(run_config.get("run-name") or f"{cfg['federation']['name']}-{time.strftime('%Y%m%d-%H%M%S')}")
    record = RunRecord(Path(str(run_config.get("run-dir") or Path(cfg["runs_dir"]) / name)))
    record.config(cfg)
    profile.note(record_started=record.started)   # rounds.json counts from here; the profile from main()
    topology = cfg["federation"]["topology"]
    record.say(f"run '{name}': {topology} federation '{cfg['federation']['name']}' -> {record.run_dir}")
    try:
        if topology == "horizontal":
            from server.horizontal import run_horizontal

            summary = run_horizontal(grid, cfg, record, name, resume=str(run_config.get("resume", "")) == "true")
        elif topology == "vertical":
            from server.vertical import run_vertical

            summary = run_vertical(grid, cfg, record, name)
        else:
            raise PulseTwinError(f"federation '{cfg['federation']['name']}': unknown topology '{topology}'")
    except NodeRefused as err:
        record.say(f"run REFUSED: {err}")
        record.status("refused", error=str(err), refusals=err.refusals)
        return record
    except PulseTwinError as err:
        record.say(f"run FAILED: {err}")
        record.status("failed", error=str(err))
        return record
    except Exception as err:  # a bug: keep the trace in the record, then fail loudly
        record.status("failed", error=f"{type(err).__name__}: {err}", trace=traceback.format_exc())
        raise
    state = "completed" if not summary.get("refusals") else "completed-with-refusals"
    record.say(f"run {state}: {record.run_dir}")
    record.status(state, **summary)   # last: whoever follows the run stops at its outcome
    return record


@app.main()
def main(grid: Grid, context: Context) -> None:
    from server.polling import PromptGrid

    setup_logging()   # progress on stderr, which Flower keeps in the run's log (`flwr log`)
    run_config = dict(context.run_config)
    path = Path(str(run_config["run-dir"])) / profile.FILE if run_config.get("run-dir") else None
    with profile.collect(path, party="serverapp", phase="run", process_started=profile.process_started()):
        run(PromptGrid(grid, path), run_config)
