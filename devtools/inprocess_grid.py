"""An in-process stand-in for Flower's deployment Grid: the same ServerApp and ClientApp code, no Ray,
no SuperLink, no polling. Tests and parameter sweeps use it; `pulse-twin federate` uses the real engine.

Each node gets its own `Context` (node config, persistent state) for the whole run, as on a SuperNode,
and replies come back through the ClientApp exactly as it would answer a SuperNode.
"""
from __future__ import annotations

import itertools
from typing import Iterable, Mapping

from flwr.app import Context, Message, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid
from flwr.supercore.run import Run
from flwr.supercore.task_identity import TaskIdentity

SERVER_NODE_ID = 1


class InProcessGrid(Grid):
    def __init__(self, client_app: ClientApp, node_configs: Mapping[int, Mapping[str, object]], run_id: int = 1,
                 run_config: Mapping[str, object] | None = None) -> None:
        self._app = client_app
        self._run = Run.create_empty(run_id)
        self._contexts = {
            node_id: Context(run_id=run_id, node_id=node_id, node_config=dict(cfg), state=RecordDict(),
                             run_config=dict(run_config or {}))
            for node_id, cfg in node_configs.items()
        }
        self._ids = itertools.count(1)
        self._replies: dict[str, Message] = {}
        self.sent_by_nodes: list[Message] = []  # every reply a node sent, for tests that inspect them
        # Messages built outside `flwr-serverapp` need the task identity that process would set.
        TaskIdentity.run_id, TaskIdentity.node_id, TaskIdentity.task_id = run_id, SERVER_NODE_ID, 0

    def set_run(self, run: Run) -> None:
        self._run = run

    @property
    def run(self) -> Run:
        return self._run

    def create_message(self, content: RecordDict, message_type: str, dst_node_id: int, group_id: str,
                       ttl: float | None = None) -> Message:
        return Message(content, dst_node_id=dst_node_id, message_type=message_type, group_id=group_id, ttl=ttl)

    def get_node_ids(self) -> Iterable[int]:
        return list(self._contexts)

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        ids = []
        for msg in messages:
            msg.metadata.__dict__["_message_id"] = f"m{next(self._ids)}"
            reply = self._app(msg, self._contexts[msg.metadata.dst_node_id])
            self._replies[msg.metadata.message_id] = reply
            self.sent_by_nodes.append(reply)
            ids.append(msg.metadata.message_id)
        return ids

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        return [self._replies.pop(i) for i in message_ids if i in self._replies]

    def send_and_receive(self, messages: Iterable[Message], *, timeout: float | None = None) -> Iterable[Message]:
        return self.pull_messages(self.push_messages(messages))
