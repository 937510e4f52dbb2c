"""Direct coordinator-to-node exchanges outside a strategy (describe, privacy reports, PSI, vertical steps)."""
from __future__ import annotations

from flwr.app import ConfigRecord, Message, RecordDict
from flwr.serverapp import Grid

from federation.errors import PulseTwinError


class RunFailed(PulseTwinError):
    """The run cannot go on; the message says which node and why."""


def ask(grid: Grid, node_ids: list[int], action: str, content: dict[int, RecordDict] | RecordDict,
        timeout: float) -> dict[int, Message]:
    """Send `query.<action>` to each node (the same content, or one per node) and collect the replies."""
    messages = [
        Message(content[n] if isinstance(content, dict) else content, dst_node_id=n, message_type=f"query.{action}")
        for n in node_ids
    ]
    replies = {m.metadata.src_node_id: m for m in grid.send_and_receive(messages, timeout=timeout)}
    missing = [n for n in node_ids if n not in replies]
    if missing:
        raise RunFailed(f"no reply to '{action}' from node(s) {missing} within {timeout:.0f} s")
    return replies


def content_or_fail(replies: dict[int, Message], names: dict[int, str], action: str) -> dict[int, RecordDict]:
    """The content of every reply; the first error reply fails the run with the node's own reason."""
    out = {}
    for node_id, reply in replies.items():
        if reply.has_error():
            raise RunFailed(f"node '{names.get(node_id, node_id)}' refused '{action}': {reply.error.reason}")
        out[node_id] = reply.content
    return out


def config_content(**values: object) -> RecordDict:
    return RecordDict({"config": ConfigRecord(dict(values))})
