"""Person-level DP releases: bounds on raw records, calibrated noise, independent draws, honest epsilon."""
import math

import numpy as np
import pytest
from scipy.optimize import brentq
from scipy.stats import norm

from clients.release import opendp_gaussian
from dp_accounting import Release, get_accountant
from clients.contracts.parsing import parse_privacy
from clients.contracts.series import bound_pairs
from clients.contracts.spec import ColumnSpec, TablePrivacy
from federation.errors import ContractError
from tests.support.contract_fixtures import WINDOW


def analytic_gaussian_epsilon(z: float, delta: float) -> float:
    """Closed form of the Gaussian mechanism (Balle & Wang 2018): the smallest eps with delta(eps) <= delta."""
    def delta_at(eps: float) -> float:
        return norm.cdf(0.5 / z - eps * z) - math.exp(eps) * norm.cdf(-0.5 / z - eps * z)
    return brentq(lambda e: delta_at(e) - delta, 1e-9, 100.0)


@pytest.mark.parametrize("z", [0.7, 1.4, 3.0])
def test_ledger_epsilon_of_a_gaussian_release_matches_the_closed_form(z):
    release = Release(mechanism="gaussian", noise_multiplier=z, sample_rate=1.0, steps=1, run_id="r", round=0,
                      kind="dp-aggregate", table="t", sensitivity=2.0)
    assert get_accountant("prv").epsilon([release], 1e-5) == pytest.approx(analytic_gaussian_epsilon(z, 1e-5), abs=0.01)


@pytest.mark.parametrize("integer", [True, False])
def test_noise_matches_its_calibration_and_draws_are_independent(integer):
    values = np.full(20_000, 50.0)
    first = opendp_gaussian(values, 3.0, integer=integer) - values
    second = opendp_gaussian(values, 3.0, integer=integer) - values
    # Standard deviation within 3% and mean within 0.1 (about 5 standard errors at n = 20,000).
    assert first.std() == pytest.approx(3.0, rel=0.03) and abs(first.mean()) < 0.1
    assert abs(np.corrcoef(first, second)[0, 1]) < 0.05 and not np.array_equal(first, second)


def test_bounds_cut_a_unit_over_its_cells_and_per_cell_records_and_say_so():
    privacy = TablePrivacy(unit="hh", max_cells=2, max_per_cell=1)
    unit = np.array([0, 0, 0, 0, 1])                       # unit 0: records in 3 cells, two in one cell
    row = np.arange(5)
    cell = np.array([10, 11, 12, 12, 10])
    period = np.array([0, 1, 2, 2, 0])
    keep, stats = bound_pairs(unit, row, cell, period, privacy)
    # Unit 0 keeps its two most recent cells (periods 2 and 1) and one record in cell 12; unit 1 is untouched.
    assert keep.tolist() == [False, True, True, False, True]
    assert stats["units_cut"] == 1 and stats["pairs_cut"] == 2 and stats["share_cut"] == pytest.approx(0.4)


def test_public_unit_is_refused_for_a_table_with_a_person_column():
    columns = {"hh": ColumnSpec(name="hh", type="string")}
    with pytest.raises(ContractError, match="refused for a table with a person column"):
        parse_privacy({"unit": "public"}, "table 'x'", columns, ("hh",), ContractError)
    with pytest.raises(ContractError, match="`privacy` is required"):
        parse_privacy(None, "table 'x'", columns, (), ContractError)


def test_max_events_bounds_a_units_dated_records_and_lowers_the_sensitivity_it_justifies(tmp_path):
    """Benefit starts: a household adds at most `max_events` of them; the bound cuts the rest, is reported,
    and the table's sensitivity follows the formula in clients.contracts.series."""
    from clients.contracts import build_features, load_contract
    from clients.contracts.series import _bound_events
    from devtools.synthetic.generator import generate

    # The bound itself: unit 0 has four dated records (periods 0..3), two survive; unit 1 keeps its one.
    unit = np.array([0, 0, 0, 0, 1])
    keep, cut = _bound_events(unit, np.arange(5), np.arange(5), np.array([0, 1, 2, 3, 0]), np.ones(5, bool),
                              TablePrivacy(unit="hh", max_cells=24, max_events=2))
    assert keep.tolist() == [False, False, True, True, True] and cut == 2

    generate(out=tmp_path, cities=["heerlen"], seed=3, records=40_000, months=6)
    node = tmp_path / "municipality"
    bounded = build_features(load_contract("municipality", ["periods.end=2019-06", "tables.uitkeringen.privacy.max_events=1"]), node)
    loose = build_features(load_contract("municipality", ["periods.end=2019-06", "~tables.uitkeringen.privacy.max_events"]), node)
    b, lo = bounded.aggregates["uitkeringen"], loose.aggregates["uitkeringen"]
    # Active benefit and debt cases (open months) and new benefit cases (start dates) fall in one series each.
    assert lo.sensitivity == pytest.approx(math.sqrt(24 * 2))
    assert b.sensitivity == pytest.approx(math.sqrt(24 * 1 * 1 * 1 + 1 * 1 * 1))
    new = next(s.key for s in b.series if s.placement[0] == "time")
    active = next(s.key for s in b.series if s.placement[0] == "interval")
    assert b.values[new].sum() <= lo.values[new].sum()
    assert b.stats["events_cut"] == lo.values[new].sum() - b.values[new].sum()
    assert np.array_equal(b.values[active], lo.values[active])


def test_emphasis_moves_noise_between_a_tables_series_and_the_sensitivity_still_bounds_every_record(tmp_path):
    """A feature's `emphasis` a divides its series' noise by a; the table's sensitivity counts a^2 per series a
    record falls in (never less than any real record's), so the one charged Gaussian release keeps its
    guarantee: the ledger's epsilon is the target, whatever the split."""
    from clients.release import DpRelease
    from clients.contracts import build_features, load_contract
    from clients.contracts.builder import read_tables
    from clients.contracts.series import _record_mask, max_hits, max_load
    from devtools.synthetic.generator import generate

    generate(out=tmp_path, cities=["heerlen"], seed=5, records=30_000, months=6)
    node = tmp_path / "buurtteams"
    six = "periods.end=2019-06"   # the six generated months
    contract = load_contract("buurtteams", [six, "+blocks.care.mean_contact_hours.emphasis=0.25"])
    even = load_contract("buurtteams", [six])
    dp = DpRelease(node, 2.0, 1e-5, "t", keep=False)
    built = build_features(contract, node, release=dp)
    plain = build_features(even, node)
    agg, flat = built.aggregates["casussen"], plain.aggregates["casussen"]
    contact = [s for s in agg.series if s.emphasis != 1.0]
    assert len(contact) == 2 and {s.emphasis for s in contact} == {0.25}
    # six domains (a case may hold all) + 2 contact series at 0.25^2 in 24 months; 4 intakes per household
    assert agg.sensitivity == pytest.approx(math.sqrt(24 * (6 + 2 * 0.0625) + 4))
    assert flat.sensitivity == pytest.approx(math.sqrt(24 * 8 + 4))
    # Every real record's load (sum of a^2 over the series it falls in) is within the bound the release uses.
    _, tables = read_tables(contract, node)
    table = tables["casussen"]
    masks = np.stack([_record_mask(table, s) for s in agg.series], axis=1)
    a2 = np.array([s.emphasis ** 2 for s in agg.series])
    spec = table.spec
    assert (masks @ a2).max() <= max_load(agg.series, spec) + 1e-12
    assert masks.sum(axis=1).max() <= max_hits(agg.series, spec)
    # Noise: z x sensitivity x weight / a, as the release reports and draws it.
    z = dp.noise_multiplier()
    sd = dp.report["casussen"]["noise_sd"]
    for s in agg.series:
        assert sd[s.key] == pytest.approx(z * agg.sensitivity * s.weight(agg.privacy) / s.emphasis)
        assert np.allclose(agg.noise_sd[s.key], sd[s.key])
    count = next(s for s in contact if s.values is None)
    drawn = agg.values[count.key] - flat.values[count.key]
    assert drawn.std() == pytest.approx(sd[count.key], rel=0.2)
    domain = next(s for s in agg.series if s.domain is not None)
    assert sd[domain.key] < z * flat.sensitivity            # the domains got the budget the contact hours gave up
    # Each feature's noise per cell, for the coordinator's shrinkage: a rate's is its series' x 1,000 / residents
    # (the same for every domain of an area-month), a mean's is not known in closed form, an exact build has none.
    noise = built.noise["care"]
    rate = noise["open_debt_per_1000"] / sd[domain.key]
    assert (rate > 0).all() and np.allclose(rate, noise["open_youth_per_1000"] / sd[domain.key])
    assert noise["mean_contact_hours"].isna().all() and plain.noise is None
    assert noise[["area_code", "period"]].equals(built.blocks["care"][["area_code", "period"]])
    # One charge per table, at the target: the split is inside the table's one Gaussian release.
    charges = [c for c in dp.charges if c.table == "casussen"]
    assert len(charges) == 1 and charges[0].sensitivity == pytest.approx(agg.sensitivity)
    assert get_accountant("prv").epsilon(charges, 1e-5) == pytest.approx(2.0, abs=0.05)


def test_emphasis_must_be_a_positive_number():
    from clients.contracts import load_contract

    for bad in ("0", "-1", "'x'"):
        with pytest.raises(ContractError, match="emphasis"):
            load_contract("buurtteams", [*WINDOW, f"+blocks.care.mean_contact_hours.emphasis={bad}"])
