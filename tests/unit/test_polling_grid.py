"""PromptGrid keeps Flower's send-and-receive contract (every reply collected, partial replies after the
timeout) while pulling on its own schedule, and delegates everything else to Flower's grid."""
from __future__ import annotations

from types import SimpleNamespace

from server.polling import PromptGrid


class SlowGrid:
    """A grid whose node i replies on the (i+1)-th pull after the push; `never` nodes do not reply."""

    def __init__(self, nodes: list[int], never: set[int] = frozenset()) -> None:
        self.nodes, self.never, self.pulls = nodes, never, 0
        self.created: list[tuple] = []

    def push_messages(self, messages):
        return [f"m{m}" for m in messages]

    def pull_messages(self, ids):
        self.pulls += 1
        ready = [i for i in ids if int(i[1:]) not in self.never and self.pulls > self.nodes.index(int(i[1:]))]
        return [SimpleNamespace(metadata=SimpleNamespace(reply_to_message_id=i)) for i in ready]

    def get_node_ids(self):
        return list(self.nodes)

    def create_message(self, content, message_type, dst_node_id, group_id, ttl=None):
        self.created.append((content, message_type, dst_node_id, group_id, ttl))
        return "message"


def test_every_reply_is_collected_once():
    inner = SlowGrid([1, 2, 3])
    replies = PromptGrid(inner).send_and_receive([1, 2, 3], timeout=30)
    assert sorted(r.metadata.reply_to_message_id for r in replies) == ["m1", "m2", "m3"]
    assert inner.pulls == 3


def test_after_the_timeout_the_replies_so_far_are_returned():
    inner = SlowGrid([1, 2], never={2})
    replies = PromptGrid(inner).send_and_receive([1, 2], timeout=0.5)
    assert [r.metadata.reply_to_message_id for r in replies] == ["m1"]
    assert inner.pulls >= 2


def test_other_calls_go_to_flowers_grid():
    inner = SlowGrid([4, 5])
    grid = PromptGrid(inner)
    assert list(grid.get_node_ids()) == [4, 5]
    assert grid.create_message("c", "train", 4, "1", ttl=9.0) == "message"
    assert inner.created == [("c", "train", 4, "1", 9.0)]

