"""Direct coordinator-to-node exchanges outside a strategy (describe, privacy reports, PSI, vertical steps)."""
from __future__ import annotations

from flwr.app import ConfigRecord, Message, RecordDict
from flwr.serverapp import Grid

from federation.errors import PulseTwinError


ERROR_CODE_REFUSED = 403  # a node's refusal (a rule of its site policy or approvals), as clients.app replies it


class RunFailed(PulseTwinError):
    """The run cannot go on; the message says which node and why."""


class NodeRefused(RunFailed):
    """A node refused, naming its rule: the run cannot go on without it."""

    def __init__(self, message: str, refusals: list[dict]) -> None:
        super().__init__(message)
        self.refusals = refusals


def is_refusal(reply: Message) -> bool:
    """An error reply is a refusal only when the node said so; a crashed or unreachable node is not one."""
    return reply.has_error() and int(reply.error.code) == ERROR_CODE_REFUSED


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
    """The content of every reply; error replies fail the run: refusals all together, each with the node's own
    reason (every node that refuses says why, not only the first), else the first node that failed."""
    out, refusals = {}, []
    for node_id, reply in replies.items():
        name = names.get(node_id, node_id)
        if is_refusal(reply):
            refusals.append({"round": 0, "node": str(name), "action": action, "reason": reply.error.reason})
        elif reply.has_error():
            raise RunFailed(f"node '{name}' failed to answer '{action}': {reply.error.reason}")
        else:
            out[node_id] = reply.content
    if refusals:
        raise NodeRefused("; ".join(f"node '{r['node']}' refused '{action}': {r['reason']}" for r in refusals),
                          refusals)
    return out


def config_content(**values: object) -> RecordDict:
    return RecordDict({"config": ConfigRecord(dict(values))})
