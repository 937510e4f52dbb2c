"""Accountants: independent reference values, history compression, and what is never offered."""
from __future__ import annotations

import random

import numpy as np
import pytest
from opacus.accountants import PRVAccountant as OpacusPRV
from opacus.accountants import RDPAccountant as OpacusRDP

from dp_accounting import PRVAccountant, RDPAccountant, Release, compress, get_accountant
from federation.errors import ConfigError

DELTA = 1e-5


def schedule(sigma: float, q: float, steps: int, round_: int = 0, run_id: str = "ref") -> Release:
    return Release(noise_multiplier=sigma, sample_rate=q, steps=steps, run_id=run_id, round=round_, kind="test")


# (q, sigma, steps, RDP, PRV from Opacus 1.6 with its default eps_error 0.01, PLD from Google's
# dp-accounting 0.6): independent published values, see FLOWER_NOTES.md.
REFERENCES = [
    (0.01, 1.0, 1000, 2.101, 1.838, 1.828),
    (0.01, 1.0, 10000, 6.713, 6.198, 6.188),
    (0.1, 2.0, 1000, 8.944, 8.29, 8.279),
]


@pytest.mark.parametrize("q, sigma, steps, rdp_ref, prv_ref, pld_ref", REFERENCES)
def test_reference_values(q, sigma, steps, rdp_ref, prv_ref, pld_ref):
    history = [schedule(sigma, q, steps)]
    rdp = get_accountant("rdp").epsilon(history, DELTA)
    prv_accountant = get_accountant("prv")
    prv = prv_accountant.epsilon(history, DELTA)
    eps_error = prv_accountant.eps_error_for(tuple(compress(history)), DELTA)
    assert eps_error <= 0.005 * prv  # small relative to the result (0.25% of the RDP value)
    # RDP is deterministic: the reference is rounded to three decimals.
    assert abs(rdp - rdp_ref) <= 6e-4
    # PRV reports the upper end of its interval: at least the PLD value (up to PLD's own mesh error),
    # at most PLD + this accountant's eps_error + the delta_error effect.
    assert pld_ref - 0.002 <= prv <= pld_ref + eps_error + 0.003
    # Both PRV values are upper ends: they differ by at most the larger of the two eps_errors.
    assert abs(prv - prv_ref) <= max(0.01, eps_error)
    assert prv < rdp


def test_prv_error_is_relative_to_the_result():
    history = [schedule(1.0, 0.01, 1000)]
    coarse = PRVAccountant(eps_error=0.01).epsilon(history, DELTA)
    adaptive = PRVAccountant().epsilon(history, DELTA)
    # 0.25% of the RDP value 2.10 is ~0.0053 < 0.01: tighter, and still above the PLD value 1.828.
    assert 1.828 - 0.002 <= adaptive < coarse


def test_compression_sums_steps_per_noise_and_rate_in_a_fixed_order():
    releases = [schedule(1.2, 0.02, 10, r) for r in range(3)] + [schedule(0.9, 0.05, 7, 3)]
    shuffled = releases[:]
    random.Random(4).shuffle(shuffled)
    assert compress(releases) == compress(shuffled) == [(0.9, 0.05, 7), (1.2, 0.02, 30)]


def test_compressed_history_gives_the_epsilon_of_the_uncompressed_one():
    # Interleaved rounds of two schedules, as two concurrent runs would record them.
    releases = [schedule(1.0 if r % 2 else 1.3, 0.01 if r % 2 else 0.02, 50, r) for r in range(12)]
    raw = [(r.noise_multiplier, r.sample_rate, r.steps) for r in releases]
    opacus_prv, opacus_rdp = OpacusPRV(), OpacusRDP()
    opacus_prv.history, opacus_rdp.history = list(raw), list(raw)
    assert len(compress(releases)) == 2
    assert abs(PRVAccountant(eps_error=0.01).epsilon(releases, DELTA)
               - opacus_prv.get_epsilon(DELTA, eps_error=0.01)) <= 1e-6
    assert abs(RDPAccountant().epsilon(releases, DELTA) - opacus_rdp.get_epsilon(DELTA)) <= 1e-9


def test_epsilon_does_not_depend_on_recording_order():
    releases = [schedule(1.0 + 0.1 * (r % 3), 0.01, 20 + r, r) for r in range(9)]
    shuffled = releases[::-1]
    for name in ("prv", "rdp"):
        accountant = get_accountant(name)
        assert accountant.epsilon(releases, DELTA) == accountant.epsilon(shuffled, DELTA)


def test_empty_history_spends_nothing():
    for name in ("prv", "rdp"):
        assert get_accountant(name).epsilon([], DELTA) == 0.0


def test_gaussian_dp_is_never_offered_and_bad_delta_is_refused():
    with pytest.raises(ConfigError, match="not a bound"):
        get_accountant("gdp")
    with pytest.raises(ConfigError, match="unknown accountant"):
        get_accountant("moments")
    for delta in (0.0, 1.0, -1e-5):
        with pytest.raises(ConfigError, match="delta"):
            get_accountant("rdp").epsilon([schedule(1.0, 0.01, 10)], delta)
    assert get_accountant(" PRV ").name == "prv"


def test_shared_rdp_curves_give_opacus_numbers_bit_for_bit():
    """The one-step RDP curve is computed once per (noise, rate) and scaled by the steps; Opacus's own
    computation gives the very same array, and a second history with the same pair reuses the curve."""
    from opacus.accountants import RDPAccountant as OpacusRDP

    from dp_accounting import accountants

    accountants._share_rdp_curves()
    original = accountants._OPACUS_COMPUTE_RDP[0]
    orders = OpacusRDP.DEFAULT_ALPHAS
    for steps in (1, 7, 600):
        shared = accountants._curve_times_steps(q=0.013, noise_multiplier=1.1, steps=steps, orders=orders)
        assert np.array_equal(shared, original(q=0.013, noise_multiplier=1.1, steps=steps, orders=orders))
    before = accountants.computed["curves"]
    get_accountant("prv").epsilon([Release(noise_multiplier=1.1, sample_rate=0.013, steps=40, run_id="r", round=1,
                                           kind="t")], 1e-5)
    assert accountants.computed["curves"] == before


def test_a_nodes_kept_accountant_values_travel_as_plain_data_and_give_the_same_epsilon():
    """What a node keeps in its run state (JSON) lets another process answer without recomputing, with the
    same numbers; values of other nodes' (noise, rate) pairs are not part of it."""
    import json

    from dp_accounting import accountants

    mine = [Release(noise_multiplier=1.3, sample_rate=0.021, steps=30, run_id="r", round=i, kind="t")
            for i in (1, 2)]
    other = [Release(noise_multiplier=0.9, sample_rate=0.05, steps=5, run_id="r", round=1, kind="t")]
    prv = get_accountant("prv")
    expected = [prv.epsilon(mine[:1], 1e-5), prv.epsilon(mine, 1e-5)]
    prv.epsilon(other, 1e-5)
    memo = json.loads(json.dumps(accountants.memo_of(mine)))
    assert all(sigma == 1.3 for sigma, _, _ in (e for entry in memo["prv"] for e in entry[0]))
    accountants._CURVES.clear()
    accountants._PRV.clear()
    accountants._rdp_epsilon.cache_clear()
    accountants.recall(memo)
    before = dict(accountants.computed)
    assert [prv.epsilon(mine[:1], 1e-5), prv.epsilon(mine, 1e-5)] == expected
    assert accountants.computed == before
