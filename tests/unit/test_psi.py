"""Two-party PSI (federation.psi): correctness against plain set intersection, nothing readable in what a
partner sends, fresh keys per run, the false-positive rate, and clear refusals."""
from __future__ import annotations

import importlib.util
import random

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from federation import psi
from federation.errors import ConfigError, ContractError
from federation.psi import (
    CoordinatorPsi,
    PsiReply,
    decode_key,
    describe_setup,
    encode_key,
    partner_reply,
    psi_message_sizes,
)


def key_sets(seed: int, n_coord: int, n_partner: int, overlap: int) -> tuple[list, list]:
    """Two key lists (coordinator, partner) sharing exactly `overlap` keys, each in random order."""
    rng = random.Random(seed)
    universe = rng.sample(range(10**7), n_coord + n_partner - overlap)
    keys = [(f"BU0917{i // 120:05d}", f"{2010 + i % 120 // 12}-{i % 12 + 1:02d}") for i in universe]
    coordinator, partner = keys[:n_coord], keys[n_coord - overlap:]
    rng.shuffle(coordinator)
    rng.shuffle(partner)
    return coordinator, partner


def exchange(coordinator: list, partner: list, fpr: float = 1e-9) -> tuple[CoordinatorPsi, bytes, PsiReply]:
    coord = CoordinatorPsi(coordinator, fpr=fpr)
    request = coord.request()
    return coord, request, partner_reply(partner, request, coord.set_size, fpr=fpr)


# --- keys --------------------------------------------------------------------------------------------

area_codes = st.text(st.characters(blacklist_characters="|", blacklist_categories=("Cs",)), min_size=1)
periods = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1)


@given(area_codes, periods)
def test_key_encoding_round_trips(area_code: str, period: str) -> None:
    assert decode_key(encode_key((area_code, period))) == (area_code, period)


@pytest.mark.parametrize(
    "key, field",
    [(("BU|0917", "2019-01"), "area_code"), (("", "2019-01"), "area_code"), (("BU0917", ""), "period"),
     (("BU0917", 201901), "period"), (("BU0917", "2019-01", "x"), "pair"), ("BU0917|2019-01", "pair")],
)
def test_malformed_keys_are_refused_naming_the_field(key, field: str) -> None:
    with pytest.raises(ContractError, match=field):
        encode_key(key)


@pytest.mark.parametrize("text", ["BU0917", "|2019-01", "BU0917|", 42])
def test_malformed_encoded_keys_are_refused(text) -> None:
    with pytest.raises(ContractError, match="encoded key"):
        decode_key(text)


# --- correctness ---------------------------------------------------------------------------------------

@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32),
    n_coord=st.integers(1, 3000),
    n_partner=st.integers(1, 3000),
    share=st.floats(0.0, 1.0),
)
@example(seed=0, n_coord=3000, n_partner=2500, share=0.5)
def test_intersection_equals_plain_set_intersection(seed: int, n_coord: int, n_partner: int, share: float) -> None:
    overlap = int(share * min(n_coord, n_partner))
    coordinator, partner = key_sets(seed, n_coord, n_partner, overlap)
    coord, _, reply = exchange(coordinator, partner)
    found = coord.intersect(reply.setup, reply.response)
    assert found == sorted(set(coordinator) & set(partner))
    assert len(found) == overlap


@settings(max_examples=25, deadline=None)
@given(
    coordinator=st.sets(st.tuples(area_codes, periods), min_size=1, max_size=25),
    partner=st.sets(st.tuples(area_codes, periods), min_size=1, max_size=25),
)
def test_intersection_of_arbitrary_text_keys(coordinator: set, partner: set) -> None:
    partner = partner | set(list(coordinator)[: len(coordinator) // 2])
    coord, _, reply = exchange(list(coordinator), list(partner))
    assert coord.intersect(reply.setup, reply.response) == sorted(coordinator & partner)


def test_empty_intersection_gives_no_keys() -> None:
    coordinator, partner = key_sets(1, 300, 400, 0)
    coord, _, reply = exchange(coordinator, partner)
    assert coord.intersect(reply.setup, reply.response) == []


def test_sets_too_large_for_a_gcs_fall_back_to_raw_and_stay_exact() -> None:
    # 1000 x 1000 keys at fpr 1e-13 would overflow openmined-psi's int64 GCS hash range.
    coordinator, partner = key_sets(2, 1000, 1000, 400)
    coord, _, reply = exchange(coordinator, partner, fpr=1e-13)
    assert reply.data_structure == "raw" and describe_setup(reply.setup).data_structure == "raw"
    assert reply.false_positive_bound == 0.0
    assert coord.intersect(reply.setup, reply.response) == sorted(set(coordinator) & set(partner))


# --- what a partner's bytes reveal ----------------------------------------------------------------------

def readable_in(text: str, blob: bytes) -> bool:
    return any(text.encode(codec) in blob for codec in ("utf-8", "utf-16-le", "utf-16-be"))


@pytest.mark.parametrize("fpr", [1e-9, 1e-13], ids=["gcs", "raw"])
def test_partner_bytes_hold_no_key_outside_the_intersection_in_plain_text(fpr: float) -> None:
    coordinator, partner = key_sets(3, 1000, 1000, 300)
    coord, _, reply = exchange(coordinator, partner, fpr=fpr)
    outside = (set(coordinator) | set(partner)) - (set(coordinator) & set(partner))
    sent = reply.setup + b"\x00" + reply.response
    assert readable_in(encode_key(next(iter(outside))), sent + encode_key(next(iter(outside))).encode())
    for key in outside:
        assert not readable_in(encode_key(key), sent), key
        assert not readable_in(key[0], sent), key


# --- fresh keys ------------------------------------------------------------------------------------------

def test_every_run_uses_fresh_keys() -> None:
    coordinator, partner = key_sets(4, 200, 200, 100)
    coord_a, request_a, reply_a = exchange(coordinator, partner)
    coord_b, request_b, reply_b = exchange(coordinator, partner)
    assert request_a != request_b
    assert reply_a.setup != reply_b.setup
    assert reply_a.response != reply_b.response
    assert coord_a.intersect(reply_a.setup, reply_a.response) == coord_b.intersect(reply_b.setup, reply_b.response)


def test_one_coordinator_sends_the_same_request_to_every_partner() -> None:
    coord = CoordinatorPsi(key_sets(5, 50, 1, 0)[0])
    assert coord.request() == coord.request()
    sizes = psi_message_sizes(coord.request(), partner_reply([("BU1", "2019-01")], coord.request(), coord.set_size))
    assert set(sizes) == {"request", "setup", "response"} and sizes["request"] == len(coord.request())


# --- false-positive rate -------------------------------------------------------------------------------

@pytest.mark.parametrize("n_coord, n_partner, fpr", [(200, 300, 1e-9), (300, 200, 1e-9), (50, 50, 1e-3)])
def test_setup_honours_the_requested_fpr(n_coord: int, n_partner: int, fpr: float) -> None:
    coordinator, partner = key_sets(6, n_coord, n_partner, 20)
    _, _, reply = exchange(coordinator, partner, fpr=fpr)
    info = describe_setup(reply.setup)
    assert info.data_structure == "gcs"
    # Each coordinator key falsely matches with probability n_partner / hash_range.
    expected_false_matches = n_coord * n_partner / info.hash_range
    assert expected_false_matches <= fpr * (1 + 1e-9)  # the int64 hash range is rounded down
    assert expected_false_matches > fpr / 10  # sized for this fpr, not for an arbitrary stricter one
    assert reply.false_positive_bound == pytest.approx(expected_false_matches)
    assert reply.revealed_set_size == n_partner


@pytest.mark.parametrize("fpr", [0, 1, 1.5, -1e-9, float("nan"), float("inf"), "1e-9", True, None])
def test_fpr_outside_zero_one_is_a_config_error(fpr) -> None:
    with pytest.raises(ConfigError, match="fpr"):
        CoordinatorPsi([("BU1", "2019-01")], fpr=fpr)
    request = CoordinatorPsi([("BU1", "2019-01")]).request()
    with pytest.raises(ConfigError, match="fpr"):
        partner_reply([("BU1", "2019-01")], request, 1, fpr=fpr)


def test_coordinator_refuses_a_setup_sized_for_a_looser_fpr() -> None:
    coordinator, partner = key_sets(7, 100, 100, 50)
    coord = CoordinatorPsi(coordinator, fpr=1e-9)
    reply = partner_reply(partner, coord.request(), coord.set_size, fpr=1e-3)
    with pytest.raises(ContractError, match="police.*false-positive rate"):
        coord.intersect(reply.setup, reply.response, partner="police")


# --- refusals ------------------------------------------------------------------------------------------

def test_empty_partner_set_is_refused() -> None:
    coord = CoordinatorPsi([("BU1", "2019-01")])
    with pytest.raises(ContractError, match="safety block: no keys"):
        partner_reply([], coord.request(), coord.set_size, source="safety block")


def test_empty_coordinator_set_is_refused() -> None:
    with pytest.raises(ContractError, match="label keys: no keys"):
        CoordinatorPsi([], source="label keys")


@pytest.mark.parametrize("side", ["coordinator", "partner"])
def test_duplicate_keys_are_refused_naming_both_positions(side: str) -> None:
    keys = [("BU1", "2019-01"), ("BU2", "2019-01"), ("BU1", "2019-01")]
    with pytest.raises(ContractError, match=r"key 2: duplicate key \('BU1', '2019-01'\) \(first at key 0\)"):
        if side == "coordinator":
            CoordinatorPsi(keys)
        else:
            coord = CoordinatorPsi([("BU1", "2019-01")])
            partner_reply(keys, coord.request(), coord.set_size)


def test_request_not_matching_its_declared_size_is_refused() -> None:
    coord = CoordinatorPsi(key_sets(8, 10, 1, 0)[0])
    with pytest.raises(ContractError, match="holds 10 encrypted keys but the coordinator declared 9"):
        partner_reply([("BU1", "2019-01")], coord.request(), 9)


@pytest.mark.parametrize("junk", [b"\xff" * 7, b"\x12\x40abc"])
def test_malformed_messages_are_refused(junk: bytes) -> None:
    coord = CoordinatorPsi([("BU1", "2019-01")])
    with pytest.raises(ContractError, match="PSI request"):
        partner_reply([("BU1", "2019-01")], junk, 1)
    reply = partner_reply([("BU1", "2019-01")], coord.request(), 1)
    with pytest.raises(ContractError, match="PSI reply from police"):
        coord.intersect(junk, reply.response, partner="police")
    with pytest.raises(ContractError, match="PSI reply from police"):
        coord.intersect(reply.setup, junk, partner="police")


def test_response_to_another_request_is_refused() -> None:
    coordinator, partner = key_sets(9, 20, 20, 10)
    coord = CoordinatorPsi(coordinator)
    other = CoordinatorPsi(coordinator[:5])
    reply = partner_reply(partner, other.request(), other.set_size)
    with pytest.raises(ContractError, match="does not answer this run's request"):
        coord.intersect(reply.setup, reply.response)


def test_missing_extension_is_one_clear_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, package=None: None)
    with pytest.raises(ConfigError, match=r"_openmined_psi.*pip install --no-deps openmined-psi==2\.0\.6"):
        psi._load_extension()
