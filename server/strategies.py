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
# An update the coordinator adds to a round's replies (from the global model the round started from, and the
# metrics of a node's reply to copy the keys of): a small node's released rows, trained on at the coordinator.
ExtraReply = Callable[[int, ArrayRecord, "dict[str, float] | None"], "Message | None"]


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
    extra_reply: ExtraReply | None = None
    _started_from: ArrayRecord | None = None

    def configure_train(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid):
        wait_for_nodes(grid, self.min_available_nodes, self.node_wait_s)  # type: ignore[attr-defined]
        self._started_from = arrays
        return super().configure_train(server_round + self.round_offset, arrays, config, grid)  # type: ignore[misc]

    def aggregate_train(self, server_round: int, replies: Iterable[Message]):
        replies = list(replies)
        rnd = server_round + self.round_offset
        self.observer(rnd, replies)
        if self.extra_reply is not None and self._started_from is not None:
            ok = [r for r in replies if not r.has_error()]
            extra = self.extra_reply(rnd, self._started_from, reply_metrics(ok[0]) if ok else None)
            replies = replies + ([extra] if extra is not None else [])
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



class NodesView(Grid):
    """A grid that shows the strategy only some nodes (those that train with DP-SGD); everything else is the
    wrapped grid's. Nodes joining later are not shown either: a horizontal run trains the nodes it described."""

    def __init__(self, inner: Grid, node_ids: Iterable[int]) -> None:
        self.inner, self.node_ids = inner, list(node_ids)

    def set_run(self, run) -> None:  # type: ignore[no-untyped-def]
        self.inner.set_run(run)

    @property
    def run(self):  # type: ignore[no-untyped-def]
        return self.inner.run

    def create_message(self, content, message_type: str, dst_node_id: int, group_id: str,  # type: ignore[no-untyped-def]
                       ttl: float | None = None) -> Message:
        return self.inner.create_message(content, message_type, dst_node_id, group_id, ttl)

    def get_node_ids(self) -> Iterable[int]:
        online = set(self.inner.get_node_ids())
        return [n for n in self.node_ids if n in online]

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        return self.inner.push_messages(messages)

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        return self.inner.pull_messages(message_ids)

    def send_and_receive(self, messages: Iterable[Message], *, timeout: float | None = None) -> Iterable[Message]:
        return self.inner.send_and_receive(messages, timeout=timeout)
