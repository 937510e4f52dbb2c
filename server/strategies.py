"""Strategies chosen by configuration (FedAvg, FedProx, FedAdam), observed round by round.

`make_strategy` adds what Flower's strategies lack: the coordinator sees every node's reply (its epsilon,
or the rule it refused under) before averaging hides it; waiting for nodes is bounded, so a node that went
away fails the run instead of blocking it forever; the global model is handed over after every round (the
run's checkpoint); and rounds can be numbered from an offset, so a resumed run asks for rounds r+1..N.
"""
from __future__ import annotations

import time
from typing import Callable, Iterable, Mapping

from flwr.app import ArrayRecord, ConfigRecord, Message
from flwr.serverapp import Grid
from flwr.serverapp.strategy import FedAdam, FedAvg, FedProx

from federation.errors import ConfigError, PulseTwinError

STRATEGIES: dict[str, type[FedAvg]] = {"fedavg": FedAvg, "fedprox": FedProx, "fedadam": FedAdam}

ReplyObserver = Callable[[int, list[Message]], None]
RoundDone = Callable[[int, ArrayRecord], None]


class NodesUnavailable(PulseTwinError):
    """Fewer nodes than the run needs are online."""


def wait_for_nodes(grid: Grid, count: int, wait_s: float) -> list[int]:
    """Node ids once `count` nodes are online; NodesUnavailable after `wait_s` seconds."""
    deadline = time.monotonic() + wait_s
    while len(nodes := list(grid.get_node_ids())) < count:
        if time.monotonic() > deadline:
            raise NodesUnavailable(f"only {len(nodes)} of {count} nodes online after {wait_s:.0f} s")
        time.sleep(0.5)
    return nodes


class _Observed:
    """Mixin over a FedAvg-family strategy; see the module docstring."""

    observer: ReplyObserver
    node_wait_s: float
    round_done: RoundDone | None = None
    round_offset: int = 0

    def configure_train(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid):
        wait_for_nodes(grid, self.min_available_nodes, self.node_wait_s)  # type: ignore[attr-defined]
        return super().configure_train(server_round + self.round_offset, arrays, config, grid)  # type: ignore[misc]

    def aggregate_train(self, server_round: int, replies: Iterable[Message]):
        replies = list(replies)
        rnd = server_round + self.round_offset
        self.observer(rnd, replies)
        arrays, metrics = super().aggregate_train(rnd, replies)  # type: ignore[misc]
        if arrays is not None and self.round_done is not None:
            self.round_done(rnd, arrays)
        return arrays, metrics


def make_strategy(name: str, params: Mapping[str, float], n_nodes: int, observer: ReplyObserver,
                  node_wait_s: float) -> FedAvg:
    """The configured strategy over all `n_nodes`, with federated evaluation off (no un-noised
    metric on private rows may leave a node)."""
    if name not in STRATEGIES:
        raise ConfigError(f"strategy '{name}' is not one of: {', '.join(STRATEGIES)}")
    base = STRATEGIES[name]
    cls = type(f"Observed{base.__name__}", (_Observed, base), {})
    try:
        strategy = cls(fraction_train=1.0, fraction_evaluate=0.0, min_train_nodes=n_nodes,
                       min_available_nodes=n_nodes, **dict(params))
    except TypeError as err:
        raise ConfigError(f"strategy '{name}': {err}") from None
    strategy.observer = observer
    strategy.node_wait_s = node_wait_s
    return strategy


def reply_metrics(reply: Message) -> dict[str, float]:
    """The MetricRecord of a successful train reply as a plain dict."""
    return {k: float(v) for k, v in reply.content["metrics"].items()}  # type: ignore[union-attr]

