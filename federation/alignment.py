"""Multi-party key alignment built on the two-party PSI of `federation.psi`.

The coordinator runs one PSI exchange per partner and keeps the keys that every partner holds (each
per-partner result is already a subset of its label keys). It then tells each partner the aligned keys
in canonical order; the partner accepts them only if they are its own keys, so that a PSI false positive
or a coordinator error can never make a node train on, or send about, a key it does not hold.
"""
from __future__ import annotations

from collections.abc import Sequence

from federation.errors import ConfigError, ContractError
from federation.psi import Key, encode_keys


def canonical_order(keys: Sequence[Key]) -> list[Key]:
    """The one order in which aligned keys travel: sorted by (area_code, period)."""
    return sorted(keys)


def align(partner_results: Sequence[Sequence[Key]]) -> list[Key]:
    """Keys present in every partner's intersection with the label keys, in canonical order."""
    if not partner_results:
        raise ConfigError("alignment: no partner took part; the federation needs at least one partner")
    common = set(partner_results[0])
    for result in partner_results[1:]:
        common &= set(result)
    return canonical_order(list(common))


def accept_aligned(
    aligned: Sequence[Key], own_keys: Sequence[Key], *, source: str = "aligned keys"
) -> list[Key]:
    """Partner side: check the coordinator's aligned keys before using them.

    They must be unique, in canonical order and all among this node's own keys; otherwise the node
    refuses (`source` names the message in the error)."""
    if not aligned:
        raise ContractError(f"{source}: empty; the partners share no (area_code, period) with the labels")
    encode_keys(aligned, source)  # well-formed and unique
    aligned = list(aligned)
    if aligned != canonical_order(aligned):
        raise ContractError(f"{source}: not in canonical order (sorted by area_code, then period)")
    own = set(own_keys)
    for position, key in enumerate(aligned):
        if key not in own:
            raise ContractError(
                f"{source}, key {position}: {key!r} is not among this node's keys (a PSI false positive "
                "or a coordinator error); the node refuses the alignment"
            )
    return aligned
