"""The engine profile records where a message's time went only when asked, and never changes what is returned."""
from __future__ import annotations

from types import SimpleNamespace

from federation import profile
from server.polling import PromptGrid


def test_spans_are_collected_into_one_record_per_unit_of_work(tmp_path, monkeypatch):
    monkeypatch.setenv(profile.ENV, "1")
    path = tmp_path / "profile.jsonl"
    with profile.collect(path, party="node"):
        with profile.span("admission"):
            pass
        with profile.span("push"):
            pass
        with profile.span("push"):
            pass
        profile.note(message_type="train")
    (record,) = profile.read(path)
    assert record["party"] == "node" and record["message_type"] == "train"
    assert set(record["spans"]) == {"admission", "push"} and record["end"] >= record["start"]


def test_nothing_is_written_when_profiling_is_off(tmp_path, monkeypatch):
    monkeypatch.delenv(profile.ENV, raising=False)
    path = tmp_path / "profile.jsonl"
    with profile.collect(path, party="node") as record:
        with profile.span("admission"):
            pass
    assert record is None and not path.exists()


class OneShotGrid:
    def push_messages(self, messages):
        return [f"m{i}" for i, _ in enumerate(messages)]

    def pull_messages(self, ids):
        return [SimpleNamespace(metadata=SimpleNamespace(reply_to_message_id=i)) for i in ids]


def test_the_serverapp_records_each_exchange_with_its_replies(tmp_path, monkeypatch):
    monkeypatch.setenv(profile.ENV, "1")
    path = tmp_path / "profile.jsonl"
    message = SimpleNamespace(metadata=SimpleNamespace(message_type="train"))
    replies = PromptGrid(OneShotGrid(), path).send_and_receive([message, message], timeout=5)
    assert len(replies) == 2
    (record,) = profile.read(path)
    assert record["exchange"] == "train" and record["messages"] == 2 and len(record["replies_at"]) == 2
