"""Generated tampering, clocks and proposals: the guard never releases from a budget it cannot vouch for, the
log's times never go back and the year window follows them, and a proposal is approved only as the node will run
it or refused in one line. Fixed seed (derandomised), bounded examples, so `make test` stays fast."""
from __future__ import annotations

import datetime as dt
import json
import math
import shutil
import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from clients.admission import node_schedule
from clients.egress import EgressGuard, LogTampered, clock
from clients.egress.log import CHECKPOINT_FILE
from dp_accounting import get_accountant, ledger_path, noise_multiplier
from federation.errors import ConfigError, PolicyRefusal
from federation.pki import create_node_keypair
from federation.proposal import RunProposal
from federation.units import steps_per_round
from tests.integration.test_approval_schedule import policy  # noqa: F401  (the default site policy)
from tests.integration.test_egress_guard import dp_update, ledger_history, log_records, make_node

SETTINGS = dict(derandomize=True, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
REAL = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.timezone.utc)


@pytest.fixture(scope="module")
def charged(tmp_path_factory) -> Path:
    """A keyed node with three releases through its guard (and its signed checkpoint)."""
    node = make_node(tmp_path_factory.mktemp("charged"))
    create_node_keypair(node)
    with EgressGuard.open(node) as guard:
        for r in range(1, 4):
            guard.release(dp_update(r))
    return node


CHECKPOINT_EDITS = st.lists(st.tuples(
    st.sampled_from(["count", "hash", "bytes", "prefix_sha256", "ledger_count", "ledger_digest", "last_time",
                     "signature", "whole"]),
    st.one_of(st.integers(-5, 10**6), st.text(max_size=20), st.none(), st.sampled_from(["0" * 64, "", "2999-01-01T00:00:00+00:00"]))),
    min_size=1, max_size=3)
LEDGER_EDITS = st.sampled_from(["none", "emptied", "deleted", "one row deleted", "noise raised"])


def _tamper_ledger(node: Path, how: str) -> None:
    if how == "deleted":
        ledger_path(node).unlink()
        return
    statements = {"emptied": ["DROP TRIGGER IF EXISTS releases_no_delete", "DELETE FROM releases"],
                  "one row deleted": ["DROP TRIGGER IF EXISTS releases_no_delete", "DELETE FROM releases WHERE id = 1"],
                  "noise raised": ["DROP TRIGGER IF EXISTS releases_no_update",
                                   "UPDATE releases SET noise_multiplier = noise_multiplier * 100"]}.get(how, [])
    db = sqlite3.connect(ledger_path(node))
    for statement in statements:
        db.execute(statement)
    db.commit()
    db.close()


@settings(max_examples=60, **SETTINGS)
@given(edits=CHECKPOINT_EDITS, ledger=LEDGER_EDITS)
def test_a_tampered_checkpoint_never_resets_the_budget(charged: Path, tmp_path_factory, edits, ledger, monkeypatch):
    monkeypatch.setattr(clock, "now", lambda: dt.datetime.now(dt.timezone.utc))
    node = Path(shutil.copytree(charged, tmp_path_factory.mktemp("cp") / "node"))
    before = [r.to_dict() for r in ledger_history(node)]
    path = node / CHECKPOINT_FILE
    content = json.loads(path.read_text())
    for field, value in edits:
        if field == "whole":
            content = value
        elif isinstance(content, dict):
            content[field] = value
    path.write_text(json.dumps(content))
    _tamper_ledger(node, ledger)
    try:
        with EgressGuard.open(node) as guard:
            guard.release(dp_update(4))
    except (LogTampered, PolicyRefusal):
        return   # refused: nothing left
    after = [r.to_dict() for r in ledger_history(node)]
    # released: only on the ledger the log vouches for, which still holds every earlier release
    assert after[:len(before)] == before and len(after) == len(before) + 1 and ledger == "none"


@settings(max_examples=25, **SETTINGS)
@given(offsets=st.lists(st.integers(-800, 800), min_size=2, max_size=6))
def test_the_log_never_goes_back_in_time_and_the_year_window_follows_it(tmp_path_factory, offsets, monkeypatch):
    node = make_node(tmp_path_factory.mktemp("clock"))
    rdp = get_accountant("rdp")
    for i, days in enumerate(offsets, start=1):
        now = REAL + dt.timedelta(days=days)
        monkeypatch.setattr(clock, "now", lambda now=now: now)
        last = max((clock.parse(r["time"]) for r in log_records(node)), default=None)
        try:
            with EgressGuard.open(node) as guard:
                record = guard.release(dp_update(i))
        except PolicyRefusal as refusal:
            assert refusal.rule == "egress.clock" and last is not None and now < last - clock.TOLERANCE
            continue
        assert last is None or now >= last - clock.TOLERANCE
        history = ledger_history(node)
        at = clock.parse(record["time"])
        recent = [r for r in history if clock.parse(r.created_at) >= at - dt.timedelta(days=365)]
        assert record["epsilon_year"] == pytest.approx(rdp.epsilon(recent, 1e-5))
    times = [r["time"] for r in log_records(node)]
    assert times == sorted(times)   # monotonic, refusals included


ABSURD = st.sampled_from([0.0, -1.0, 1e-300, 1e308, 5e-324, 1.0, 2.0, 10**6])


@settings(max_examples=20, **SETTINGS)
@given(target=st.one_of(st.floats(0.5, 8), ABSURD), q=st.one_of(st.floats(0.02, 0.1), ABSURD),
       epochs=st.one_of(st.floats(0.5, 2), ABSURD), rounds=st.one_of(st.integers(1, 5), st.sampled_from([10**6])),
       steps=st.one_of(st.none(), st.integers(1, 10**6)), noise=st.one_of(st.none(), st.floats(0.3, 60), ABSURD))
def test_a_proposal_is_approved_as_the_node_will_run_it_or_refused_in_one_line(policy, target, q, epochs, rounds,
                                                                                 steps, noise):
    _approved_as_run_or_refused(policy, target, q, epochs, rounds, steps, noise)


def test_control_the_coordinators_schedule_is_approved_and_a_stated_noise_is_not(policy):
    """The property above holds both ways: a proposal as the coordinator writes it is approved (so the approved
    branch is reachable), the same with a made-up noise multiplier is refused."""
    assert _approved_as_run_or_refused(policy, 3.0, 0.05, 1.0, 3, None, None)
    assert not _approved_as_run_or_refused(policy, 3.0, 0.05, 1.0, 3, None, 50.0)


def _approved_as_run_or_refused(policy, target, q, epochs, rounds, steps, noise) -> bool:
    """Approve a generated horizontal proposal; True if approved (then as the node will run it), False if refused
    in one line."""
    data = {"run_name": "h1", "run_kind": "horizontal", "bundle_hash": "ab" * 32, "privacy": {
        "target_epsilon": target, "delta": 1e-5, "sample_rate": q, "rounds": rounds, "local_epochs": epochs,
        "unit": "area-period row", "steps_per_round": steps if steps is not None else 1, "noise_multiplier": 1.0}}
    try:   # the coordinator's own schedule for these settings, where it has one
        if steps is None:
            data["privacy"]["steps_per_round"] = steps_per_round(q, epochs)
        data["privacy"]["noise_multiplier"] = noise if noise is not None else noise_multiplier(
            target, 1e-5, q, data["privacy"]["steps_per_round"] * rounds)
    except (ConfigError, OverflowError, ValueError, ZeroDivisionError):
        assume(False)
    try:
        proposal = RunProposal.from_dict(data, "p.json")
        schedule = node_schedule(policy, proposal)
    except (ConfigError, PolicyRefusal) as err:   # anything else would be a traceback for the site's staff
        assert "\n" not in str(err) and len(str(err)) < 800
        return False
    # approved: exactly what the node computes when it trains (clients.horizontal.train)
    p = proposal.privacy
    assert schedule.steps_per_round == steps_per_round(p.sample_rate, p.local_epochs) == p.steps_per_round
    assert schedule.noise_multiplier == pytest.approx(
        noise_multiplier(p.target_epsilon, min(p.delta, policy.privacy.delta), p.sample_rate,
                         p.steps_per_round * p.rounds, policy.privacy.accountant), rel=1e-12)
    assert math.isclose(p.noise_multiplier, schedule.noise_multiplier, rel_tol=1e-6)
    return True
