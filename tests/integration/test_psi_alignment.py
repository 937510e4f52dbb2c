"""Multi-party key alignment (federation.alignment) over real PSI exchanges."""
from __future__ import annotations

import random

import pytest

from federation.alignment import accept_aligned, align
from federation.errors import ConfigError, ContractError
from federation.psi import CoordinatorPsi, partner_reply


def random_keys(rng: random.Random, universe: list, share: float) -> list:
    keys = [key for key in universe if rng.random() < share]
    rng.shuffle(keys)
    return keys


def test_three_partners_align_on_the_plain_intersection_of_all_sets() -> None:
    rng = random.Random(11)
    universe = [(f"BU0917{a:04d}", f"2019-{m:02d}") for a in range(60) for m in range(1, 13)]
    labels = random_keys(rng, universe, 0.8)
    partners = {name: random_keys(rng, universe, 0.7) for name in ("police", "municipality", "buurtteams")}

    coord = CoordinatorPsi(labels)
    request = coord.request()
    results = []
    for name, own in partners.items():
        reply = partner_reply(own, request, coord.set_size)
        results.append(coord.intersect(reply.setup, reply.response, partner=name))
    aligned = align(results)

    expected = set(labels).intersection(*partners.values())
    assert len(expected) > 50  # the case is not degenerate
    assert aligned == sorted(expected)
    for name, own in partners.items():
        assert accept_aligned(aligned, own, source=f"aligned keys for {name}") == aligned


def test_empty_intersection_aligns_to_nothing() -> None:
    assert align([[("BU1", "2019-01")], [("BU2", "2019-01")]]) == []


def test_alignment_without_partners_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="no partner"):
        align([])


OWN = [("BU1", "2019-01"), ("BU1", "2019-02"), ("BU2", "2019-01")]


@pytest.mark.parametrize(
    "aligned, message",
    [
        ([("BU1", "2019-01"), ("BU3", "2019-01")], r"key 1: \('BU3', '2019-01'\) is not among this node's keys"),
        ([("BU2", "2019-01"), ("BU1", "2019-01")], "canonical order"),
        ([("BU1", "2019-01"), ("BU1", "2019-01")], "duplicate key"),
        ([], "empty"),
    ],
)
def test_partner_refuses_a_bad_alignment(aligned: list, message: str) -> None:
    with pytest.raises(ContractError, match=message):
        accept_aligned(aligned, OWN)
