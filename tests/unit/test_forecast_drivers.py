"""server/forecast/sensitivity: a driver's shift at the city median with known answers, the driver that leads
the label found among noise, the artefact's rows and its reader (the one the report, twin and ask share)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from server.forecast.evaluate import Learned
from server.forecast.models import Ridge
from server.forecast.panel import Panel
from server.forecast.run import ForecastConfig
from server.forecast.sensitivity import DRIVER_COLUMNS, driver_table, median_shifts, write_drivers
from server.report.drivers import drivers_per_area, run_drivers
from server.report.inputs import ReportInputError
from server.twin.whatif import sensitivities

MONTHS = tuple(str(p) for p in pd.period_range("2020-01", periods=30, freq="M"))


def test_a_linear_models_shift_is_its_coefficient_times_the_distance_to_the_median():
    x = np.array([[1.0, 10.0], [2.0, 20.0], [6.0, 30.0]])
    shifts = median_shifts(lambda m: 3.0 * m[:, 0] - 0.5 * m[:, 1], x, [[0], [1]])
    assert shifts[:, 0] == pytest.approx(3.0 * (2.0 - x[:, 0]))
    assert shifts[:, 1] == pytest.approx(-0.5 * (20.0 - x[:, 1]))
    assert shifts[1].tolist() == [0.0, 0.0]          # the median area moves nowhere


@pytest.fixture(scope="module")
def world():
    """40 areas: a partner's feature `lead` moves the label three months later, `noise` never does."""
    rng = np.random.default_rng(3)
    n, t = 40, len(MONTHS)
    lead = np.cumsum(rng.normal(0, 1, (n, t)), axis=1)
    noise = rng.normal(0, 1, (n, t))
    label = np.full((n, t), 4.0)
    for k in range(3, t):
        label[:, k] = 4.0 + 0.05 * lead[:, k - 3] + rng.normal(0, 0.01, n)
    areas = tuple(f"BU{i:04d}" for i in range(n))
    partners = {"p": {"b.lead": Panel(areas, MONTHS, lead, True, name="b.lead"),
                      "b.noise": Panel(areas, MONTHS, noise, True, name="b.noise")}}
    cfg = ForecastConfig(horizons=(3,), configured_horizon=3, folds=4, min_history=6)
    learned = Learned(("history", "p"), lambda w, s: Ridge(seed=s))
    return lead, driver_table(Panel(areas, MONTHS, label, True), partners, cfg, learned)


def test_the_driver_that_leads_the_label_moves_the_expectation_and_noise_does_not(world):
    lead, frame = world
    assert list(frame.columns) == DRIVER_COLUMNS
    assert set(frame["driver"]) == {"lead", "noise", "own_level", "own_trend"}
    assert (frame["origin"] == MONTHS[-1]).all() and (frame["target"] == "2022-09").all()
    rows = frame[frame["driver"] == "lead"].set_index("area_code")
    far = (rows["value"] - rows["city_median"]).abs() > 2
    # above the median, the label rises with it: back at the median, the expectation falls (and the reverse)
    assert (np.sign(rows.loc[far, "shift"]) == -np.sign(rows.loc[far, "value"] - rows.loc[far, "city_median"])).all()
    assert far.sum() > 10
    assert (rows["shift_lo"] <= rows["shift"]).all() and (rows["shift"] <= rows["shift_hi"]).all()
    noise = frame[frame["driver"] == "noise"]["shift"].abs()
    assert noise.max() < 0.2 * rows.loc[far, "shift"].abs().median()
    assert rows["value"].tolist() == pytest.approx(lead[:, -1].tolist())   # its released last value


def test_every_reader_reads_the_same_drivers_and_a_bad_file_is_one_message(world, tmp_path):
    _, frame = world
    write_drivers(tmp_path, frame)
    read = run_drivers(tmp_path)
    per_area = drivers_per_area(read, {"b": "police"}, top=1)
    whatif, horizon = sensitivities(tmp_path, {}, top=1)
    assert horizon == 3 and set(whatif) == set(per_area) == set(frame["area_code"])
    for area, rows in whatif.items():
        mine = frame[frame["area_code"] == area]
        top = mine.loc[mine["shift"].abs().idxmax()]
        assert rows[0][0] == top["driver"] and rows[0][1] == pytest.approx(top["shift"], abs=1e-4)
        assert sum(per_area[area]["blocks"].values()) == pytest.approx(-mine["shift"].sum(), abs=1e-3)
    (tmp_path / "forecast" / "drivers.csv").write_text(",".join(DRIVER_COLUMNS) + "\nBU1,2020-01,2020-04,3,p,b,x,1,1,up,0,0\n")
    with pytest.raises(ReportInputError, match="drivers.csv: line 2, column 'shift': not a number"):
        run_drivers(tmp_path)
