"""Budget caps: refusals name the rule and record nothing; the yearly window; no overspending races."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from dp_accounting import BudgetCaps, PrivacyLedger, Release, get_accountant, ledger_path
from federation.errors import BudgetExceeded, ConfigError, PolicyRefusal

REPO = Path(__file__).resolve().parents[2]
DELTA = 1e-5


def release(round_: int, sigma: float = 1.0, steps: int = 200, **fields) -> Release:
    return Release(noise_multiplier=sigma, sample_rate=0.02, steps=steps, run_id="run-a", round=round_,
                   kind="horizontal-update", **fields)


def test_caps_are_validated():
    with pytest.raises(ConfigError, match="epsilon_lifetime"):
        BudgetCaps(epsilon_per_year=1.0, epsilon_lifetime=-2.0, delta=DELTA)
    with pytest.raises(ConfigError, match="delta"):
        BudgetCaps(epsilon_per_year=1.0, epsilon_lifetime=2.0, delta=0.5 + 0.5)
    with pytest.raises(ConfigError, match="not a bound"):
        BudgetCaps(epsilon_per_year=1.0, epsilon_lifetime=2.0, delta=DELTA, accountant="gdp")


def test_release_past_the_lifetime_cap_is_refused_naming_the_rule_and_nothing_is_recorded(tmp_path):
    with PrivacyLedger(ledger_path(tmp_path)) as ledger:
        ledger.record(release(0))
        spent = ledger.epsilon(DELTA)
        candidate = [release(1)]
        after = ledger.projected_epsilon(candidate, DELTA)
        caps = BudgetCaps(epsilon_per_year=None, epsilon_lifetime=(spent + after) / 2, delta=DELTA)
        for attempt in (lambda: ledger.check(candidate, caps), lambda: ledger.charge(candidate, caps)):
            with pytest.raises(BudgetExceeded) as refused:
                attempt()
            message = str(refused.value)
            assert "site policy rule 'privacy.epsilon_lifetime'" in message
            assert f"> cap {caps.epsilon_lifetime:.4g}" in message
            assert "PRV, delta 1e-05, unit area-period row" in message
            assert refused.value.rule == "privacy.epsilon_lifetime"
            assert isinstance(refused.value, PolicyRefusal)
        assert ledger.history() == [release(0, created_at=ledger.history()[0].created_at)]
        assert ledger.epsilon(DELTA) == spent


def test_allowed_charge_records_and_returns_both_projections(tmp_path):
    with PrivacyLedger(ledger_path(tmp_path)) as ledger:
        ledger.record(release(0))
        candidate = [release(1)]
        expected = ledger.projected_epsilon(candidate, DELTA)
        caps = BudgetCaps(epsilon_per_year=expected * 1.01, epsilon_lifetime=expected * 2, delta=DELTA)
        checked = ledger.check(candidate, caps)
        assert len(ledger.history()) == 1  # check only reads
        charged = ledger.charge(candidate, caps)
        assert len(ledger.history()) == 2
        assert checked.epsilon_lifetime == charged.epsilon_lifetime == expected == ledger.epsilon(DELTA)
        assert charged.epsilon_year == expected
        assert charged.lifetime_left == pytest.approx(expected * 2 - expected)


def test_releases_older_than_a_year_do_not_count_for_the_yearly_cap(tmp_path):
    now = datetime.now(timezone.utc)
    candidate = [release(5)]
    alone = get_accountant("prv").epsilon(candidate, DELTA)
    with PrivacyLedger(ledger_path(tmp_path)) as ledger:
        ledger.record(release(0, sigma=0.9, steps=400, created_at=(now - timedelta(days=400)).isoformat()))
        lifetime = ledger.projected_epsilon(candidate, DELTA)
        caps = BudgetCaps(epsilon_per_year=alone * 1.05, epsilon_lifetime=lifetime * 2, delta=DELTA)
        projection = ledger.charge(candidate, caps)  # the old release is outside the window
        assert projection.epsilon_year == alone
        assert projection.epsilon_lifetime == lifetime > alone

    with PrivacyLedger(tmp_path / "recent" / "ledger.sqlite") as ledger:
        ledger.record(release(0, sigma=0.9, steps=400, created_at=(now - timedelta(days=300)).isoformat()))
        with pytest.raises(BudgetExceeded, match="rule 'privacy.epsilon_per_year'.*per 365 days"):
            ledger.charge(candidate, caps)
        assert len(ledger.history()) == 1


_CHARGE = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    import opacus.accountants  # loaded before the start signal, so both processes race the charge itself
    from dp_accounting import BudgetCaps, PrivacyLedger, Release
    from federation.errors import BudgetExceeded
    ledger_file, go, ready, cap = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), float(sys.argv[4])
    ledger = PrivacyLedger(ledger_file)
    ready.touch()
    while not go.exists():
        time.sleep(0.005)
    try:
        ledger.charge([Release(noise_multiplier=1.0, sample_rate=0.02, steps=200, run_id=ready.name,
                               round=0, kind="horizontal-update")],
                      BudgetCaps(epsilon_per_year=None, epsilon_lifetime=cap, delta=1e-5))
    except BudgetExceeded:
        sys.exit(3)
    """
)


def test_two_processes_charging_at_once_cannot_overspend(tmp_path):
    one = get_accountant("prv").epsilon([release(0)], DELTA)
    two = get_accountant("prv").epsilon([release(0), release(1)], DELTA)
    cap = (one + two) / 2  # room for exactly one of the two charges
    path, go = ledger_path(tmp_path), tmp_path / "go"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    readies = [tmp_path / f"ready-{i}" for i in range(2)]
    procs = [subprocess.Popen([sys.executable, "-c", _CHARGE, str(path), str(go), str(ready), str(cap)], env=env)
             for ready in readies]
    try:
        deadline = time.monotonic() + 120
        while not all(r.exists() for r in readies) and time.monotonic() < deadline:
            if any(p.poll() is not None for p in procs):
                break
            time.sleep(0.01)
        go.touch()
        codes = sorted(p.wait(timeout=120) for p in procs)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert codes == [0, 3]
    with PrivacyLedger(path, create=False) as ledger:
        assert len(ledger.history()) == 1
        assert ledger.epsilon(DELTA) <= cap
