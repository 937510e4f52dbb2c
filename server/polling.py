"""A grid that collects replies promptly.

Flower's grid in a ServerApp process (`flwr.superlink.grid.http_grid`) pulls replies from the SuperLink
every 3 s, so every exchange waits on average 1.5 s after the last reply arrived. `PromptGrid` wraps it and
polls at 0.1 s, growing to 1 s while a long DP-SGD round runs; a pull is one local call to the SuperLink.
"""
from __future__ import annotations

import time
from typing import Iterable

from flwr.app import Message, RecordDict
from flwr.serverapp import Grid

FIRST_INTERVAL_S = 0.1
MAX_INTERVAL_S = 1.0


class PromptGrid(Grid):
    """Delegates to Flower's grid; only `send_and_receive` polls on its own schedule."""

    def __init__(self, inner: Grid) -> None:
        self.inner = inner

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
        return self.inner.pull_messages(message_ids)

    def send_and_receive(self, messages: Iterable[Message], *, timeout: float | None = None) -> Iterable[Message]:
        """Push, then pull until every message has its reply or `timeout` seconds passed (Flower's contract)."""
        pending = set(self.push_messages(messages))
        end = time.monotonic() + (timeout if timeout is not None else 0.0)
        replies: list[Message] = []
        interval = FIRST_INTERVAL_S
        while timeout is None or time.monotonic() < end:
            got = list(self.pull_messages(pending))
            replies.extend(got)
            pending.difference_update(m.metadata.reply_to_message_id for m in got)
            if not pending:
                break
            time.sleep(interval)
            interval = FIRST_INTERVAL_S if got else min(MAX_INTERVAL_S, interval * 1.5)
        return replies
