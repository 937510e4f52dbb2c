"""The guarantee for a person present in every node of a federation, composed from the nodes' ledgers.

Each node's ledger states what that node released; a resident who is a unit in the tables of several nodes
(the police's, the municipality's and the buurtteams') is protected by all of those releases together, not
by the largest of them. Their noise is drawn independently on each node, so the releases compose like one
history (adaptive composition holds whatever order they happened in): the federation-level epsilon is the
accountant's on the union of the nodes' histories, recomputed now from the ledgers, never stored. For plain
Gaussian releases the composition is exact (mu = sqrt(sum of mu_i^2), `accountants.gaussian_epsilon`).
The unit is one person who is at most one unit in every table of every node (and, where DP-SGD ran, at most
one area-period row); a person in several records of a record-unit table needs group privacy on top.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from dp_accounting.accountants import check_delta, get_accountant
from dp_accounting.opendp_bound import opendp_epsilon
from dp_accounting.release import Release
from dp_accounting.report import GAUSSIAN, RECORD_UNIT_PREFIX



@dataclass(frozen=True)
class NodeLine:
    """One node's own epsilon (all its releases composed), as its ledger gives it."""

    node: str
    releases: int
    tables: tuple[str, ...]
    epsilon: float


@dataclass(frozen=True)
class FederationGuarantee:
    """Epsilon for one person who is a unit in every table of every node, next to each node's own."""

    delta: float
    accountant: str
    nodes: tuple[NodeLine, ...]
    releases: int
    tables: tuple[str, ...]          # "node/table", every table with a DP aggregate release
    row_level: bool                  # some node released DP-SGD updates (area-period rows) too
    epsilon: float                   # all releases of all nodes composed
    highest_node_epsilon: float
    opendp_epsilon: float | None     # OpenDP's proven bound for the Gaussian releases (see opendp_bound)
    record_tables: tuple[str, ...] = ()   # "node/table" whose unit is one record (no person link)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["nodes"] = [asdict(n) for n in self.nodes]
        data["sentence"] = self.sentence()
        return data

    def sentence(self) -> str:
        unit = ("one person who is at most one unit in every table of every node and at most one area-period row"
                if self.row_level else "one person who is at most one unit in every table of every node")
        tail = "" if self.opendp_epsilon is None else (
            f"; OpenDP's proven map for its discrete Gaussian gives {self.opendp_epsilon:.4f} for the aggregates")
        if self.record_tables:
            tail += (f"; in {', '.join(self.record_tables)} the unit is one record (no person link): a person in "
                     "several of its records is covered by the exact Gaussian group bound on that node's report")
        return (f"Federation level ({len(self.nodes)} nodes, {self.releases} releases, tables "
                f"{', '.join(self.tables) or 'none'}): ({self.epsilon:.4f}, {self.delta:g})-DP for adding or removing "
                f"{unit}, all the nodes' releases composed ({self.accountant.upper()}); the highest node alone is "
                f"{self.highest_node_epsilon:.4f}{tail}.")


def federation_guarantee(histories: Mapping[str, Sequence[Release]], delta: float,
                         accountant: str = "prv") -> FederationGuarantee:
    """Compose the nodes' histories (node name -> its ledger's releases) for a person present in every node."""
    delta = check_delta(delta)
    chosen = get_accountant(accountant)
    nodes, union = [], []
    for name, history in histories.items():
        history = list(history)
        union += history
        tables = tuple(dict.fromkeys(r.table or "(table not named)" for r in history if r.mechanism == GAUSSIAN))
        nodes.append(NodeLine(node=name, releases=len(history), tables=tables,
                              epsilon=chosen.epsilon(history, delta)))
    return FederationGuarantee(
        delta=delta, accountant=chosen.name, nodes=tuple(nodes), releases=len(union),
        tables=tuple(f"{n.node}/{t}" for n in nodes for t in n.tables),
        row_level=any(r.mechanism != GAUSSIAN for r in union),
        epsilon=chosen.epsilon(union, delta),
        highest_node_epsilon=max((n.epsilon for n in nodes), default=0.0),
        opendp_epsilon=opendp_epsilon(union, delta),
        record_tables=tuple(dict.fromkeys(f"{name}/{r.table}" for name, history in histories.items()
                                          for r in history if r.mechanism == GAUSSIAN
                                          and r.unit.startswith(RECORD_UNIT_PREFIX))),
    )
