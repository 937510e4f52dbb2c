"""A grid that collects replies promptly.

Flower's grid in a ServerApp process (`flwr.superlink.grid.http_grid`) pulls replies from the SuperLink
every 3 s, so every exchange waits on average 1.5 s after the last reply arrived, and asks again for a reply's
content that is not there yet after 1, 2, 4 s. `PromptGrid` wraps it and polls at 0.1 s, growing to 0.5 s while
a long DP-SGD round runs, and asks again for missing content within 0.05 to 0.5 s; a pull is one local call to
the SuperLink.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Iterable

import httpx
from flwr.app import Error, Message, Metadata, RecordDict
from flwr.app.message import make_message
from flwr.common.constant import ErrorCode
from flwr.proto.message_pb2 import ConfirmMessageReceivedRequest  # pylint: disable=E0611
from flwr.proto.runtime_pb2 import PullAppMessagesRequest  # pylint: disable=E0611
from flwr.serverapp import Grid
from flwr.supercore.constant import SYSTEM_MESSAGE_TYPE
from flwr.supercore.inflatable.inflatable_object import iterate_object_tree
from flwr.supercore.inflatable.inflatable_protobuf_utils import make_pull_object_fn_protobuf
from flwr.supercore.inflatable.inflatable_utils import ObjectPullError, inflate_object_from_contents, pull_objects

from federation import profile

FIRST_INTERVAL_S = 0.1
MAX_INTERVAL_S = 0.5
PULL_BACKOFF_S, PULL_BACKOFF_CAP_S = 0.05, 0.5   # asking again for a reply's content not there yet


class PromptGrid(Grid):
    """Delegates to Flower's grid; only `send_and_receive` polls on its own schedule."""

    def __init__(self, inner: Grid, profile_path: Path | None = None) -> None:
        self.inner = inner
        self.profile_path = profile_path   # where each exchange's timing goes when profiling is on

    def set_run(self, run) -> None:  # type: ignore[no-untyped-def]
        self.inner.set_run(run)

    @property
    def run(self):  # type: ignore[no-untyped-def]
        return self.inner.run

    def create_message(self, content: RecordDict, message_type: str, dst_node_id: int, group_id: str,
                       ttl: float | None = None) -> Message:
        return self.inner.create_message(content, message_type, dst_node_id, group_id, ttl)

    def get_node_ids(self) -> Iterable[int]:
        return self.inner.get_node_ids()

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        return self.inner.push_messages(messages)

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        """Flower's pull of replies, except that a reply whose content is still on its way is asked for again
        within 0.05 to 0.5 s, not after Flower's 1, 2, 4 s: a SuperNode makes its reply known before it has pushed
        the reply's content, so a prompt pull often finds the content missing at first."""
        client, run, node = (getattr(self.inner, name, None) for name in ("_runtime_client", "_run", "node"))
        if client is None or run is None or node is None:   # not Flower's deployment grid: its own pull
            return self.inner.pull_messages(message_ids)
        ids = list(message_ids)
        try:
            res = client.PullMessages(PullAppMessagesRequest(message_ids=ids))
        except httpx.HTTPStatusError:   # e.g. too large an answer: Flower's own pull says so
            return self.inner.pull_messages(ids)
        replies: list[Message] = []
        for proto, tree in zip(res.messages_list, res.message_object_trees, strict=True):
            msg_id = proto.metadata.message_id
            try:
                contents = pull_objects([t.object_id for t in iterate_object_tree(tree)],
                                        make_pull_object_fn_protobuf(client.PullObject, node, run.run_id),
                                        initial_backoff=PULL_BACKOFF_S, backoff_cap=PULL_BACKOFF_CAP_S)
            except ObjectPullError as err:   # as Flower does: an error reply in its place
                replies.append(_unavailable(run.run_id, node.node_id, proto.metadata.reply_to_message_id, err))
                continue
            client.ConfirmMessageReceived(ConfirmMessageReceivedRequest(node=node, run_id=run.run_id,
                                                                        message_object_id=msg_id))
            message = inflate_object_from_contents(msg_id, contents)
            message.metadata.__dict__["_message_id"] = msg_id   # the deflated reply does not carry its own id
            replies.append(message)
        return replies

    def send_and_receive(self, messages: Iterable[Message], *, timeout: float | None = None) -> Iterable[Message]:
        """Push, then pull until every message has its reply or `timeout` seconds passed (Flower's contract)."""
        messages = list(messages)
        kind = getattr(getattr(messages[0], "metadata", None), "message_type", "") if messages else ""
        with profile.collect(self.profile_path, party="serverapp", exchange=kind, messages=len(messages)) as record:
            with profile.span("push"):
                pending = set(self.push_messages(messages))
            end = time.monotonic() + (timeout if timeout is not None else 0.0)
            replies: list[Message] = []
            interval = FIRST_INTERVAL_S
            while timeout is None or time.monotonic() < end:
                with profile.span("pull"):
                    got = list(self.pull_messages(pending))
                replies.extend(got)
                if record is not None and got:
                    record.setdefault("replies_at", []).extend([time.time()] * len(got))
                pending.difference_update(m.metadata.reply_to_message_id for m in got)
                if not pending:
                    break
                time.sleep(interval)
                interval = FIRST_INTERVAL_S if got else min(MAX_INTERVAL_S, interval * 1.5)
            return replies


def _unavailable(run_id: int, node_id: int, reply_to: str, err: Exception) -> Message:
    """The error reply Flower's grid puts in place of a reply whose content never came."""
    metadata = Metadata(run_id=run_id, message_id="", src_node_id=node_id, dst_node_id=node_id,
                        reply_to_message_id=reply_to, group_id="", created_at=time.time(), ttl=0,
                        message_type=SYSTEM_MESSAGE_TYPE)
    return make_message(metadata=metadata, error=Error(code=ErrorCode.MESSAGE_UNAVAILABLE,
                                                       reason=f"Reply message objects are unavailable: {err}"))
