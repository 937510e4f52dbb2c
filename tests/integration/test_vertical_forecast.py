"""The coordinator's forecast in a real vertical run (in-process grid, real ServerApp/ClientApp code) on the
synthetic NULL world, where partners' records carry nothing about liveability's changes: the gate refuses
the model, and the report says so. The same run shows that the forecast reads released values only."""
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import server.vertical as vertical
from clients.app import app as client_app
from devtools.inprocess_grid import InProcessGrid
from devtools.synthetic.generator import generate
from federation.cli import main
from federation.flower_config import encode
from server.app import run
from tests.support.contract_fixtures import generated_window
from tests.support.federation_fixtures import write_policy

PARTNERS = ("police", "municipality", "buurtteams")
# Small but real: Heerlen's buurten over 21 months (7 survey waves), two horizons, three test origins (one
# of them a survey month, scored).
MONTHS = 21
SMALL = ["federation.label.horizons=[1,3]", "forecast.test_origins=3", "forecast.min_history=4"]


class ExactRead(AssertionError):
    pass


@pytest.fixture(scope="module")
def null_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("null") / "nodes"
    generate(out=root, cities=["heerlen"], seed=11, records=50_000, months=MONTHS, world="null")
    nodes = {}
    for i, partner in enumerate(PARTNERS, 1):
        assert main(["node", "init", "--partner", partner, "--node-dir", str(root / partner)]) == 0
        window = generated_window(root / partner, months=MONTHS)   # the run's window: the generated months
        assert main(["features", "--contract", partner, "--node-dir", str(root / partner), *window]) == 0
        write_policy(root / partner, partner)
        nodes[i] = {"partner": partner, "data-dir": str(root / partner)}
    seen: dict = {}
    real_forecast, real_read = vertical.run_forecast, pd.read_parquet

    def guarded_read(path, *args, **kwargs):
        # an exact table of a node (its built features or label) read while the coordinator forecasts
        if seen.get("forecasting") and "features" in Path(str(path)).parts:
            raise ExactRead(f"the coordinator's forecast read the exact table {path}")
        return real_read(path, *args, **kwargs)

    def spy(run_dir, cfg, label, blocks, noise, epsilon, say):
        seen.update(label=label.copy(), forecasting=True)
        try:
            return real_forecast(run_dir, cfg, label, blocks, noise, epsilon, say)
        finally:
            seen["forecasting"] = False

    mp = pytest.MonkeyPatch()
    mp.setattr(vertical, "run_forecast", spy)
    mp.setattr(pd, "read_parquet", guarded_read)
    run_dir = root.parent / "run"
    try:
        run(InProcessGrid(client_app, nodes), {
            "overrides": encode(["federation=heerlen", f"federation.data_root={root}", "node_wait_s=5", *SMALL]),
            "run-name": "run", "run-dir": str(run_dir)})
    finally:
        mp.undo()
    return root, run_dir, seen


def test_the_null_world_makes_the_gate_refuse_the_model(null_run, capsys):
    _, run_dir, _ = null_run
    status = json.loads((run_dir / "status.json").read_text())
    assert status["state"] == "completed", status
    skill = json.loads((run_dir / "forecast" / "skill.json").read_text())
    assert skill["configured_horizon"] == 3 and skill["gate"]["horizon"] == 3
    assert skill["gate"]["releasable"] is False and status["releasable"] is False
    row = next(r for r in skill["rows"] if r["model"] == "federated_dp" and r["horizon"] == 3)
    assert row["skill_lo"] is not None and row["skill_lo"] <= 0
    # the warning list is withheld: the naive ranking alone
    warnings = pd.read_csv(run_dir / "forecast" / "warnings.csv")
    assert warnings["model_rank"].isna().all() and warnings["naive_rank"].notna().any()
    # the report refuses it and says the naive forecast is the better guide, Dutch first
    assert main(["report", str(run_dir)]) == 3
    out = capsys.readouterr().out
    assert "NOT RELEASABLE: threshold forecast.min_skill_lo exceeded" in out
    assert out.index("NIET VRIJGEGEVEN") < out.index("naive forecast is the")


def test_the_forecast_reads_released_values_only(null_run):
    root, run_dir, seen = null_run
    # the guard above was armed during the forecast and never fired (the run completed)
    assert "label" in seen and json.loads((run_dir / "status.json").read_text())["state"] == "completed"
    released = seen["label"].assign(area_code=lambda f: f["area_code"].astype(str),
                                    period=lambda f: f["period"].astype(str)).set_index(["area_code", "period"])
    exact = pd.read_parquet(root / "municipality" / "features" / "label.parquet")
    exact = exact.assign(period=exact["period"].astype(str)).set_index(["area_code", "period"])["label"]
    # persistence at the current origin is the last SURVEYED released value of each area, not the exact one
    pred = pd.read_csv(run_dir / "forecast" / "predictions.csv", dtype={"area_code": str, "origin": str})
    now = pred[(pred["model"] == "persistence") & (pred["horizon"] == 3) & ~pred["held_out"].astype(bool)]
    last_wave = max(p for p in exact.index.get_level_values("period").unique())
    mine = released.xs(last_wave, level="period")["label"]
    got = now.set_index("area_code")["prediction"]
    common = sorted(set(got.index) & set(mine.index))
    assert len(common) > 40
    assert np.allclose(got[common], mine[common])
    assert not np.allclose(got[common], exact.xs(last_wave, level="period")[common], atol=1e-3)
    # months without a survey wave are released as noise; the label history leaves them out
    gaps = pred[(pred["held_out"].astype(bool)) & pred["truth"].notna()]["target"].str[5:].astype(int)
    assert set(gaps) <= {1, 4, 7, 10}


def test_the_forecast_keeps_the_models_drivers_for_every_area(null_run):
    """forecast/drivers.csv: every area with the label's own history and each partner's drivers, at the
    configured horizon from the last period; each shift inside its interval (the null world may leave the
    partners out: a shift of 0 is then what the model says)."""
    from server.forecast.sensitivity import DRIVER_COLUMNS

    _, run_dir, _ = null_run
    drivers = pd.read_csv(run_dir / "forecast" / "drivers.csv", dtype={"area_code": str, "origin": str})
    now = pd.read_csv(run_dir / "predictions.csv", dtype={"area_code": str, "period": str})
    assert list(drivers.columns) == DRIVER_COLUMNS
    assert set(drivers["area_code"]) == set(now["area_code"]) and (drivers["horizon"] == 3).all()
    assert set(drivers["origin"]) == set(now["period"])
    assert {"label", "police", "municipality", "buurtteams"} <= set(drivers["partner"])
    assert ((drivers["shift_lo"] <= drivers["shift"] + 1e-12) & (drivers["shift"] <= drivers["shift_hi"] + 1e-12)).all()
